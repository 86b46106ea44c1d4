"""``equilibrate categorize``: add a safety category and a confidence to prompts in a JSONL file.

Each input line is a JSON object with a string field ``prompt``; every other field is kept. Each
output line is the same object plus ``category`` (EHD / IHD / MHD / OTHER / NONE) and
``confidence`` (0-1). ``--method embedding`` uses the book's trained embedding categorizer (trained
once on the authors' BeaverTails labels, then cached); ``--method judge`` asks the profile's chat
model two yes/no questions per prompt. The input is read and checked before anything is written,
and the output replaces ``--out`` only when complete.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

from equilibrate.commands._jsonl import read_jsonl_rows, write_rows_atomically
from equilibrate.errors import DataFormatError

logger = logging.getLogger(__name__)


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``equilibrate categorize``."""
    parser = subparsers.add_parser(
        "categorize",
        help="label prompts EHD / IHD / MHD / OTHER / NONE",
        description="Add 'category' and 'confidence' to every line of a JSONL file of prompts.",
    )
    parser.add_argument(
        "--method",
        choices=("embedding", "judge"),
        default="embedding",
        help="embedding classifier (default) or the chat model as judge",
    )
    parser.add_argument(
        "--in",
        dest="in_path",
        required=True,
        type=Path,
        metavar="FILE.jsonl",
        help="input JSONL, one object per line with a string 'prompt'",
    )
    parser.add_argument(
        "--out",
        dest="out_path",
        required=True,
        type=Path,
        metavar="FILE.jsonl",
        help="output JSONL",
    )
    parser.add_argument("--profile", default="cpu", help="chat model profile for --method judge")
    parser.set_defaults(func=run)
    return parser


def _check_prompt(path: Path, number: int, row: dict[str, Any]) -> None:
    if not isinstance(row.get("prompt"), str):
        raise DataFormatError(path, number, "prompt", "missing or not a string")


def read_prompts(path: Path) -> list[dict[str, Any]]:
    """Read a JSONL file whose objects carry a string ``prompt``; errors name file, line, field."""
    return read_jsonl_rows(path, _check_prompt)


def categorizer_for(method: str, profile_name: str = "cpu") -> Any:
    """The categorizer behind ``--method``."""
    if method == "embedding":
        from equilibrate.fdc.categorize import trained_categorizer

        return trained_categorizer()[0]
    from equilibrate.fdc.categorize import LLMJudgeCategorizer
    from equilibrate.generate import model_key
    from equilibrate.paths import cache_dir
    from equilibrate.profiles import get_profile, load_model, load_tokenizer

    profile = get_profile(profile_name)
    return LLMJudgeCategorizer(
        load_model(profile),
        load_tokenizer(profile),
        profile,
        cache=cache_dir("generations") / f"{profile.name}.jsonl",
        model_key=model_key(profile),
    )


def run(args: argparse.Namespace) -> int:
    """Categorize ``--in`` into ``--out``."""
    rows = read_prompts(args.in_path)
    categorizer = categorizer_for(args.method, args.profile)
    verdicts = categorizer.categorize([r["prompt"] for r in rows])
    write_rows_atomically(
        args.out_path,
        [
            {**row, "category": verdict.category, "confidence": round(verdict.confidence, 4)}
            for row, verdict in zip(rows, verdicts, strict=True)
        ],
    )
    extra = ""
    if args.method == "judge":
        extra = f", {categorizer.unparseable} unparseable answers"
    print(f"categorized {len(rows)} prompts with the {args.method} method{extra}: {args.out_path}")
    return 0
