"""``equilibrate judge``: label responses in a JSONL file as compliance / refusal / partial refusal.

Each input line is a JSON object with string fields ``prompt`` and ``response``; every other
field is kept. Each output line is the same object plus ``label``, ``judge_score`` and
``judge_reason``.

The whole input is read and checked before anything is written; the output goes to a temporary
file in the same folder that replaces ``--out`` only when complete, so a bad line or an interruption
never leaves a half-written or truncated output (an existing ``--out`` stays as it was). Errors name
the file, the 1-based line (reported as ``row``) and the field.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

from equilibrate.commands._jsonl import read_jsonl_rows, write_rows_atomically
from equilibrate.errors import DataFormatError
from equilibrate.judge import LABELS, judge_response

logger = logging.getLogger(__name__)


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``equilibrate judge``."""
    parser = subparsers.add_parser(
        "judge",
        help="label responses as full_compliance / full_refusal / partial_refusal",
        description="Label each response in a JSONL file with the rule-based refusal judge "
        f"({', '.join(LABELS)}). Input lines need string fields 'prompt' and 'response'; output "
        "lines keep every field and add 'label', 'judge_score' (0-1) and 'judge_reason'.",
    )
    parser.add_argument(
        "--in",
        dest="in_path",
        required=True,
        type=Path,
        metavar="FILE.jsonl",
        help="input JSONL, one object per line with 'prompt' and 'response'",
    )
    parser.add_argument(
        "--out",
        dest="out_path",
        required=True,
        type=Path,
        metavar="FILE.jsonl",
        help="output JSONL (written atomically; may equal --in)",
    )
    parser.set_defaults(func=run)
    return parser


def _check_prompt_response(path: Path, number: int, row: dict[str, Any]) -> None:
    for name in ("prompt", "response"):
        if name not in row:
            raise DataFormatError(path, number, name, "missing; every line needs it")
        if not isinstance(row[name], str):
            raise DataFormatError(
                path, number, name, f"expected a string, found {type(row[name]).__name__}"
            )


def read_rows(path: Path) -> list[dict[str, Any]]:
    """Read and check a JSONL file of ``prompt``/``response`` rows.

    Raises:
        FileNotFoundError: when ``path`` does not exist.
        DataFormatError: naming the file, the 1-based line and the field at fault.
    """
    return read_jsonl_rows(path, _check_prompt_response)


def run(args: argparse.Namespace) -> int:
    """Judge every row of ``--in`` and write ``--out``; returns 0."""
    rows = read_rows(args.in_path)
    counts = dict.fromkeys(LABELS, 0)
    for row in rows:
        verdict = judge_response(row["prompt"], row["response"])
        row["label"] = verdict.label
        row["judge_score"] = verdict.score
        row["judge_reason"] = verdict.reason
        counts[verdict.label] += 1
    write_rows_atomically(args.out_path, rows)
    summary = ", ".join(f"{label} {n}" for label, n in counts.items())
    logger.info("judged %d rows -> %s (%s)", len(rows), args.out_path, summary)
    return 0
