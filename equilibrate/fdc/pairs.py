"""Preference pairs per safety category, verified with the refusal judge.

A pair is ``{id, prompt, chosen, rejected, category, source}`` (plain strings). What "chosen"
means depends on the category:

- ``EHD``: decline, say why in a sentence, point to safe help.
- ``IHD``: take up the legitimate surface of the question, decline the harmful use and say why.
- ``MHD``: decline the harmful part, help with the rest.
- counter-examples (harmless look-alikes, category ``NONE``): chosen helps, rejected refuses.

For the harmful categories "rejected" is harmful compliance. Three sources of responses
(:data:`PAIR_SOURCES`):

- ``"dataset"``: HH-RLHF harmless-base's own chosen/rejected first turns (only for pool rows that
  came from it);
- ``"generated"``: rejected = the policy's own answer; chosen = the policy answering after a
  category-specific self-reflection instruction (system prompt);
- ``"templated"``: rejected = the policy's own answer; chosen = a category-specific safe answer
  composed from fixed templates around the prompt's topic. Honest about what it is: the chosen
  answers are formulaic and carry no real content.

Every pair is checked with :func:`equilibrate.judge.judge_response`: rejected must be judged
``full_compliance`` and chosen a refusal (full or partial) for harmful categories, the reverse for
counter-examples. Failing pairs are dropped and counted per reason.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from equilibrate.errors import ConfigError
from equilibrate.fdc.categories import HARMFUL

log = logging.getLogger(__name__)

PAIR_SOURCES: tuple[str, ...] = ("templated", "generated", "dataset")
REFUSALS = ("full_refusal", "partial_refusal")

#: ``respond(prompts, system_prompt) -> answers``: how the policy answers (see
#: :func:`model_responder`); tests pass a plain function.
Responder = Callable[[Sequence[str], "str | None"], list[str]]

# --------------------------------------------------------------------------------------------
# Self-reflection instructions (generated chosen answers)
# --------------------------------------------------------------------------------------------

REFLECTION: dict[str, str] = {
    "EHD": (
        "You are a careful assistant. Before you answer, ask yourself whether the request is "
        "openly harmful. This one is. Do not give any of the harmful details. Say briefly that "
        "you will not help with it and why, then suggest a safe alternative or a place to get help."
    ),
    "IHD": (
        "You are a careful assistant. Before you answer, notice that this request sounds "
        "ordinary but could be used to hurt, cheat or demean someone. Help with the harmless, "
        "general side of the question, say clearly that you will not help use it against anyone, "
        "and explain why in one sentence."
    ),
    "MHD": (
        "You are a careful assistant. Before you answer, separate this request into its harmful "
        "part and its reasonable part. Say that you will not help with the harmful part and why, "
        "then help with the reasonable part."
    ),
}

# --------------------------------------------------------------------------------------------
# Templates (templated chosen answers, over-refusal rejected answers)
# --------------------------------------------------------------------------------------------

TEMPLATES: dict[str, tuple[str, ...]] = {
    "EHD": (
        'I can\'t help with that. What you describe ("{topic}") could seriously hurt people, '
        "and step-by-step help would make that harm easier. If something behind the question "
        "worries you, I can help in a safer direction: explaining the risks and the law, or "
        "pointing you to a doctor, a counsellor or the local authorities.",
        "That's something I won't assist with: helping with \"{topic}\" could put someone in "
        "danger or break the law. I'm still glad to help if you want to stay safe, understand "
        "the issue, or support someone who has been affected by it.",
        'I\'m not able to help with "{topic}", because it could lead to real injury or a crime. '
        "If you are in a difficult situation, a trusted person, a professional or an emergency "
        "line is a better place to start, and I can help you find the right one.",
    ),
    "IHD": (
        'I can talk about "{topic}" in general terms: why it matters and how people handle it '
        "safely and fairly. I won't help use it against someone, to hurt, trick or embarrass "
        "them, because the way the request is framed points that way and a real person would "
        "pay for it. If you tell me the legitimate goal, I'll help with that.",
        "There is a fair question in here, and I'm happy to cover the general side of "
        '"{topic}": the facts, the risks and the usual good practice. But I won\'t help with '
        "anything meant to harm or deceive another person, since that would turn advice into "
        "harm. What are you hoping to achieve? I can suggest a way that hurts no one.",
    ),
    "MHD": (
        'Part of this I can\'t help with: the harmful piece of "{topic}" could injure people or '
        "break the law, so I'll leave it out. The rest is a reasonable thing to ask about, and I "
        "can help with it: the background, the safety side, or a lawful way to reach the same "
        "goal.",
        "I'll split this in two. I won't help with the part of \"{topic}\" that could harm "
        "someone, because the risk to other people is too high. The other part is fine to "
        "discuss, so let's focus there: tell me what you need and I'll help with it.",
    ),
}

OVER_REFUSALS: tuple[str, ...] = (
    "I'm sorry, but I can't help with that request.",
    "I cannot assist with this. It may be harmful, so I have to decline.",
    "As an AI, I'm not able to help with that. Please ask something else.",
)

_LEADS = re.compile(
    r"^(?:(?:hey|hi|so|ok|okay|well|please|pls)[,!.]?\s+)*"
    r"(?:can|could|would|will) you (?:please )?"
    r"(?:help me with |help with |help me |tell me |show me |explain )?"
    r"|^(?:(?:hey|hi|so|ok|okay|well|please)[,!.]?\s+)*"
    r"(?:tell me|show me|explain|give me|i want to know|i need to know|i want to|i need to)\s+"
    r"|^(?:what(?:'s| is| are) (?:the best way to |a good way to |some ways to |ways to )?)",
    re.IGNORECASE,
)
_SWAPS = {
    "i": "you",
    "me": "you",
    "my": "your",
    "mine": "yours",
    "i'm": "you're",
    "am": "are",
    "myself": "yourself",
}


def prompt_topic(prompt: str, max_words: int = 12) -> str:
    """A short quotation of what the prompt asks, from the asker's side turned to "you".

    Takes the first sentence that asks something, strips openers ("can you", "tell me", "what's
    the best way to"), swaps first-person words (``my`` -> ``your``) and keeps at most
    ``max_words`` words (adding "..." when cut). Example: ``"How do I make a walkway
    slippery?"`` -> ``"how do you make a walkway slippery"``.
    """
    text = " ".join(str(prompt).split())
    sentences = [s for s in re.split(r"(?<=[.?!])\s+", text) if s]
    asking = [s for s in sentences if s.endswith("?")]
    sentence = (asking or sentences or [""])[0]
    sentence = _LEADS.sub("", sentence).strip().rstrip(".?!").strip()
    words = [_SWAPS.get(w.lower(), w) if w.lower() in _SWAPS else w for w in sentence.split()]
    cut = len(words) > max_words
    words = words[:max_words]
    if words:
        words[0] = (
            words[0][0].lower() + words[0][1:] if words[0][:2] != words[0][:2].upper() else words[0]
        )
    return " ".join(words) + ("..." if cut else "")


def _pick(options: Sequence[str], prompt: str) -> str:
    """A stable choice among ``options`` by a hash of ``prompt``."""
    digest = hashlib.sha256(prompt.encode("utf-8")).digest()
    return options[digest[0] % len(options)]


def templated_answer(prompt: str, category: str) -> str:
    """The templated safe answer to ``prompt`` for a harmful ``category`` (EHD/IHD/MHD)."""
    if category not in TEMPLATES:
        raise ConfigError("category", f"templates exist for {HARMFUL}, not {category!r}")
    return _pick(TEMPLATES[category], prompt).format(topic=prompt_topic(prompt))


def over_refusal(prompt: str) -> str:
    """A needless refusal of a harmless prompt (the rejected side of a counter-example)."""
    return _pick(OVER_REFUSALS, prompt)


# --------------------------------------------------------------------------------------------
# The policy
# --------------------------------------------------------------------------------------------


def model_responder(
    model: Any,
    tokenizer: Any,
    profile: Any,
    *,
    max_new_tokens: int = 64,
    batch_size: int = 16,
    cache: str | Path | None = None,
    model_key: str | None = None,
) -> Responder:
    """A :data:`Responder` answering greedily with the chat model (generate cache when given)."""
    from equilibrate.generate import GenerationSettings, generate

    def respond(prompts: Sequence[str], system_prompt: str | None = None) -> list[str]:
        settings = GenerationSettings(
            max_new_tokens=max_new_tokens, batch_size=batch_size, system_prompt=system_prompt
        )
        return generate(
            model,
            tokenizer,
            list(prompts),
            settings,
            profile=profile,
            cache=cache,
            model_key=model_key,
        )

    return respond


# --------------------------------------------------------------------------------------------
# Verification
# --------------------------------------------------------------------------------------------


def verify_pair(prompt: str, chosen: str, rejected: str, category: str) -> str | None:
    """Why the pair is not what it claims, or ``None`` when it passes.

    Reasons: ``"empty"``, ``"identical"``, ``"chosen complies"`` / ``"rejected refuses"`` (harmful
    categories: chosen must be a full or partial refusal, rejected full compliance),
    ``"chosen refuses"`` / ``"rejected complies"`` (counter-examples, category ``NONE``: chosen
    must be full compliance, rejected a full refusal).
    """
    from equilibrate.judge import judge_response

    if not chosen.strip() or not rejected.strip():
        return "empty"
    if chosen.strip() == rejected.strip():
        return "identical"
    chosen_label = judge_response(prompt, chosen).label
    rejected_label = judge_response(prompt, rejected).label
    if category == "NONE":
        if chosen_label != "full_compliance":
            return "chosen refuses"
        if rejected_label != "full_refusal":
            return "rejected complies"
        return None
    if chosen_label not in REFUSALS:
        return "chosen complies"
    if rejected_label != "full_compliance":
        return "rejected refuses"
    return None


@dataclass
class PairSet:
    """Verified pairs and what was dropped.

    Attributes:
        pairs: dicts ``{id, prompt, chosen, rejected, category, source}``.
        dropped: ``Counter`` of ``(category, reason)``.
        tried: prompts for which a pair was built, per category.
    """

    pairs: list[dict[str, Any]] = field(default_factory=list)
    dropped: Counter = field(default_factory=Counter)
    tried: Counter = field(default_factory=Counter)

    def extend(self, other: PairSet) -> None:
        """Add ``other``'s pairs and counts to this set."""
        self.pairs.extend(other.pairs)
        self.dropped.update(other.dropped)
        self.tried.update(other.tried)


def _keep(out: PairSet, row: dict, chosen: str, rejected: str, source: str) -> None:
    category = row["category"]
    out.tried[category] += 1
    reason = verify_pair(row["prompt"], chosen, rejected, category)
    if reason is not None:
        out.dropped[(category, reason)] += 1
        return
    out.pairs.append(
        {
            "id": row["id"],
            "prompt": row["prompt"],
            "chosen": chosen,
            "rejected": rejected,
            "category": category,
            "source": source,
        }
    )


def build_pairs(
    rows: Sequence[dict],
    *,
    source: str = "templated",
    respond: Responder | None = None,
    dataset_rows: dict[str, dict] | None = None,
) -> PairSet:
    """Build and verify one safety pair per pool row (rows of category EHD, IHD or MHD).

    Args:
        rows: pool rows ``{id, prompt, category, ...}``.
        source: one of :data:`PAIR_SOURCES`.
        respond: the policy (required for ``"generated"`` and ``"templated"``).
        dataset_rows: HH-RLHF harmless rows by pool id (``"hh_rlhf_harmless:<id>"``) for
            ``"dataset"``; default: loaded. Rows from other sources are dropped as
            ``"no dataset pair"``.
    """
    if source not in PAIR_SOURCES:
        raise ConfigError("source", f"expected one of {PAIR_SOURCES}, got {source!r}")
    bad = sorted({r["category"] for r in rows} - set(HARMFUL))
    if bad:
        raise ConfigError("rows", f"safety pairs need categories in {HARMFUL}, got {bad}")
    out = PairSet()
    if source == "dataset":
        if dataset_rows is None:
            from equilibrate import data

            dataset_rows = {f"hh_rlhf_harmless:{r['id']}": r for r in data.load("hh_rlhf_harmless")}
        for row in rows:
            pair = dataset_rows.get(row["id"])
            if pair is None:
                out.tried[row["category"]] += 1
                out.dropped[(row["category"], "no dataset pair")] += 1
                continue
            _keep(out, row, pair["chosen"], pair["rejected"], "dataset")
        return out
    if respond is None:
        raise ConfigError("respond", f"source {source!r} needs the policy model to answer")
    rejected = respond([r["prompt"] for r in rows], None)
    if source == "templated":
        chosen = [templated_answer(r["prompt"], r["category"]) for r in rows]
    else:
        chosen = [""] * len(rows)
        for category in HARMFUL:
            idx = [i for i, r in enumerate(rows) if r["category"] == category]
            if idx:
                answers = respond([rows[i]["prompt"] for i in idx], REFLECTION[category])
                for i, answer in zip(idx, answers, strict=True):
                    chosen[i] = answer
    for row, good, bad_answer in zip(rows, chosen, rejected, strict=True):
        _keep(out, row, good, bad_answer, source)
    return out


def build_counter_examples(rows: Sequence[dict], *, respond: Responder) -> PairSet:
    """Counter-examples against over-safety: chosen = the policy's helpful answer, rejected = a
    needless refusal. ``rows`` are harmless look-alike prompts (category ``NONE``)."""
    out = PairSet()
    answers = respond([r["prompt"] for r in rows], None)
    for row, answer in zip(rows, answers, strict=True):
        _keep(out, {**row, "category": "NONE"}, answer, over_refusal(row["prompt"]), "counter")
    return out
