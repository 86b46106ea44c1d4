"""The ``equilibrate`` command. Each subcommand lives in ``equilibrate/commands/<name>.py``.

A command module exposes ``add_parser(subparsers)`` (registering its parser and setting
``func=run`` as default) and ``run(args) -> int``. Commands call the same library functions as
the chapters; they hold no logic of their own beyond argument handling.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

# Order is the order shown by --help.
COMMANDS = (
    "diagnose",
    "judge",
    "categorize",
    "build_mix",
    "score",
    "train",
    "plan",
    "evaluate",
    "report",
    "experiment",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="equilibrate",
        description="Diagnose over-safety, build fine-grained safety data (FDC), train with "
        "adaptive message-wise alignment (AMA) and evaluate the helpfulness-safety balance.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log at DEBUG level")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"equilibrate.commands.{name}")
        except ModuleNotFoundError as err:
            if err.name == f"equilibrate.commands.{name}":
                continue  # command not present in this build
            raise
        module.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
    )
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        return int(args.func(args) or 0)
    except (ValueError, FileNotFoundError) as err:
        print(f"equilibrate {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
