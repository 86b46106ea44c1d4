"""``equilibrate report``: the results table and the balance plot for any set of evaluated runs.

Reads ``<RUN>/evaluation/results.json`` of each run (no model is loaded) and writes to ``--out``:
``table.md`` (scores with 95% intervals), ``table.csv`` (numbers), ``scores.csv`` (every stored
score), ``balance.png`` (safety against helpfulness, coloured by over-refusal) and
``paper_comparison.csv`` (our numbers beside the paper's, unless ``--no-paper``).
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

logger = logging.getLogger(__name__)


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``equilibrate report``."""
    parser = subparsers.add_parser(
        "report",
        help="render the results table and the balance plot for evaluated runs",
        description="Render the table (paper's shape, 95% intervals) and the helpfulness-safety "
        "plot from the stored results of one or more runs, without loading a model.",
    )
    parser.add_argument("runs", nargs="+", type=Path, metavar="RUN", help="evaluated run dirs")
    parser.add_argument(
        "--out", type=Path, default=Path("report"), metavar="DIR", help="output folder (./report)"
    )
    parser.add_argument(
        "--no-paper", action="store_true", help="leave out the comparison with the paper's table"
    )
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """Write the report files and print the table."""
    from equilibrate.evaluate.report import load_runs, results_table, to_text, write_report

    written = write_report(args.runs, args.out, paper=not args.no_paper)
    print(to_text(results_table(load_runs(args.runs))))
    for label, path in written.items():
        print(f"{label}: {path}")
    return 0
