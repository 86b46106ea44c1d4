"""``equilibrate train``: train a recipe (resumes an interrupted run, reuses a finished one).

Works under ``accelerate launch`` / ``torchrun`` for several processes; see ``accelerate/``.
"""

from __future__ import annotations

import argparse

from equilibrate.commands.plan import add_recipe_arguments, recipe_from_args


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train a recipe (DPO or AMA-DPO with LoRA/QLoRA)",
        description="Train the recipe's adapter. The run folder is named from the recipe and "
        "data; a second call returns the finished run, an interrupted one resumes.",
    )
    add_recipe_arguments(parser)
    parser.add_argument("--method", choices=("dpo", "ama-dpo"), help="override method.name")
    parser.add_argument(
        "--data", metavar="MIX", help="override data.source: a dataset name, .jsonl or mix .yaml"
    )
    parser.add_argument(
        "--out", metavar="DIR", help="parent folder of run folders (default: the cache's runs/)"
    )
    parser.add_argument(
        "--no-memory-check",
        action="store_true",
        help="start even when the planner says the step will not fit",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from equilibrate.train.runs import train_run

    extra: dict[str, object] = {}
    if args.method:
        extra["method.name"] = args.method
    if args.data:
        extra["data.source"] = args.data
    recipe = recipe_from_args(args, extra)
    result = train_run(recipe, runs_root=args.out, check_memory=not args.no_memory_check)
    print(result.summary_line())
    return 0
