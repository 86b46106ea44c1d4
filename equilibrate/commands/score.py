"""``equilibrate score``: add AMA scores (character spans) to a preference mix.

Reads a JSONL mix (one pair per line: ``prompt``, ``chosen``, ``rejected`` as strings or trl
conversational message lists, plus any other fields), scores both responses of every pair and
writes the same rows with ``chosen_spans`` and ``rejected_spans`` added. Scores are cached, so a
second call with the same scorer costs nothing.

    equilibrate score --scorer segment --in mix.jsonl --out mix.scored.jsonl
    equilibrate score --scorer implicit --adapter RUN/adapter --beta 0.1 --in ... --out ...
    equilibrate score --scorer reward-model --reward-model FOLDER --in ... --out ...
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

from equilibrate.commands._jsonl import read_jsonl_rows, write_rows_atomically
from equilibrate.errors import ConfigError, DataFormatError

logger = logging.getLogger(__name__)


def _check_pair(path: Path, number: int, row: dict) -> None:
    for name in ("prompt", "chosen", "rejected"):
        if name not in row:
            raise DataFormatError(
                path, number, name, "missing; a pair needs prompt, chosen and rejected"
            )


def read_mix(path: Path) -> list[dict]:
    """Rows of a JSONL mix; each must have prompt, chosen and rejected."""
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such mix file")
    return read_jsonl_rows(path, _check_pair)


def build_scorer(args: argparse.Namespace):
    """The scorer the arguments describe (loads models for implicit and reward-model)."""
    from equilibrate.ama.scorers import ImplicitScorer, RewardModelScorer, SegmentScorer

    if args.scorer == "segment":
        return SegmentScorer()
    if args.scorer == "implicit":
        if args.adapter is None:
            raise ConfigError(
                "--adapter",
                "the implicit scorer needs the adapter of a short "
                "plain-DPO warm-up run (a folder with adapter_config.json)",
            )
        from equilibrate.profiles import get_profile, load_model, load_tokenizer

        profile = get_profile(args.profile)
        policy = load_model(profile, adapter=args.adapter)
        return ImplicitScorer(
            policy,
            load_tokenizer(profile),
            beta=args.beta,
            key=f"{profile.name}:{Path(args.adapter).resolve()}",
        )
    if args.reward_model is None:
        raise ConfigError(
            "--reward-model",
            "the reward-model scorer needs a local folder with a "
            "sequence-classification model and its tokenizer",
        )
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(args.reward_model)
    if not tokenizer.chat_template:
        raise ConfigError(
            "--reward-model",
            f"{args.reward_model}: the tokenizer has no chat "
            "template, so conversations cannot be rendered for it",
        )
    model = AutoModelForSequenceClassification.from_pretrained(args.reward_model).eval()
    return RewardModelScorer(
        model, tokenizer, mode=args.mode, key=str(Path(args.reward_model).resolve())
    )


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``equilibrate score``."""
    parser = subparsers.add_parser(
        "score",
        help="add AMA safety scores (character spans) to a preference mix",
        description="Score every chosen and rejected response of a JSONL mix for AMA and write "
        "the rows with chosen_spans/rejected_spans added.",
    )
    parser.add_argument(
        "--scorer",
        choices=("segment", "implicit", "reward-model"),
        default="segment",
        help="how to score (default: segment)",
    )
    parser.add_argument(
        "--in", dest="input", type=Path, required=True, metavar="MIX", help="input JSONL mix"
    )
    parser.add_argument(
        "--out",
        type=Path,
        required=True,
        metavar="MIX",
        help="output JSONL mix (may not be the input file)",
    )
    parser.add_argument(
        "--profile",
        default="cpu",
        help="model profile of the implicit scorer's policy (default: cpu)",
    )
    parser.add_argument("--adapter", type=Path, help="implicit: the DPO warm-up adapter folder")
    parser.add_argument(
        "--beta", type=float, default=0.1, help="implicit: the warm-up's DPO beta (default 0.1)"
    )
    parser.add_argument("--reward-model", type=Path, help="reward-model: a local model folder")
    parser.add_argument(
        "--mode",
        choices=("delta", "prefix"),
        default="delta",
        help="reward-model: per-token reward change or prefix reward",
    )
    parser.add_argument("--no-cache", action="store_true", help="do not read or write the cache")
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """Score the mix and write it."""
    from equilibrate.ama.scorers import score_dataset

    if args.out.resolve() == args.input.resolve():
        raise ConfigError("--out", "must differ from --in (the input is read while writing)")
    rows = read_mix(args.input)
    scorer = build_scorer(args)
    start = time.perf_counter()
    scored = score_dataset(rows, scorer, cache=not args.no_cache)
    seconds = time.perf_counter() - start
    write_rows_atomically(args.out, scored)
    print(f"scored {len(scored)} pairs with {scorer.name} in {seconds:.1f} s -> {args.out}")
    return 0
