"""``equilibrate plan``: will a recipe's training step fit in this much GPU memory?

Prints the planner's breakdown; exits 1 (with a suggestion) when it does not fit. Also holds the
``--recipe``/``--set`` arguments that ``equilibrate train`` shares.
"""

from __future__ import annotations

import argparse

from equilibrate.train.recipes import Recipe, parse_overrides


def add_recipe_arguments(parser: argparse.ArgumentParser) -> None:
    """``--recipe FILE`` and repeatable ``--set section.key=value`` overrides."""
    parser.add_argument("--recipe", required=True, metavar="FILE", help="recipe YAML file")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a setting, e.g. --set hyperparameters.max_steps=2 (value read as YAML)",
    )


def recipe_from_args(args: argparse.Namespace, extra: dict[str, object] | None = None) -> Recipe:
    """The recipe named on the command line with its ``--set`` overrides and ``extra`` applied."""
    recipe = Recipe.load(args.recipe)
    overrides = parse_overrides(args.overrides)
    overrides.update(extra or {})
    return recipe.replace(overrides) if overrides else recipe


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "plan",
        help="estimate a recipe's peak GPU memory from the model's shape",
        description="Estimate the peak memory of one training step (weights, adapters, "
        "optimizer, activations, logits, CUDA overhead) and say whether it fits.",
    )
    add_recipe_arguments(parser)
    parser.add_argument(
        "--gpu-memory",
        type=float,
        default=None,
        metavar="GIB",
        help="GPU memory in GiB (default: the recipe's hardware.gpu_memory_gib)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from equilibrate.train.memory import plan_memory

    plan = plan_memory(recipe_from_args(args), args.gpu_memory)
    print(plan.summary())
    return 0 if plan.fits else 1
