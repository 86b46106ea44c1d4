"""``equilibrate experiment``: run the equilibrium experiment and export its scores.

Trains and evaluates the five arms (base, naive-small, naive-large, fdc, fdc-ama) with the book's
settings, or the ones given, reusing every finished run and evaluation, and writes all scores with
the settings and a description of the machine to ``--export``. Chapter 5 reads such files, for
other seeds, from the repository's ``results/`` folder and shows the spread across seeds.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

logger = logging.getLogger(__name__)


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``equilibrate experiment``."""
    from equilibrate.experiment import ARMS, ExperimentSettings

    defaults = ExperimentSettings()
    parser = subparsers.add_parser(
        "experiment",
        help="train and evaluate the experiment's five arms; export the scores",
        description="Run the equilibrium experiment (chapter 5) with the book's settings unless "
        "changed here, reusing finished runs, and export every score to a JSON file.",
    )
    parser.add_argument("--seed", type=int, default=defaults.seed, help="one seed for mixes, "
                        f"training and evaluation samples ({defaults.seed})")
    parser.add_argument("--safety-small", type=int, default=defaults.safety_small,
                        help=f"safety pairs of the small budget ({defaults.safety_small})")
    parser.add_argument("--scale", type=int, default=defaults.scale,
                        help=f"the large naive budget as a multiple ({defaults.scale})")
    parser.add_argument("--recipe", default=defaults.recipe,
                        help=f"recipe name or YAML path ({defaults.recipe})")
    parser.add_argument("--arms", nargs="+", choices=ARMS, default=list(ARMS),
                        help="arms to run (all)")
    parser.add_argument("--export", type=Path, required=True, metavar="FILE",
                        help="JSON file for the scores, settings and machine description")
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """Run the arms, export, print the headline table."""
    import time
    from dataclasses import replace

    from equilibrate.evaluate import scores_frame
    from equilibrate.experiment import (
        ExperimentSettings,
        export_results,
        headline,
        run_experiment,
    )

    if args.export.suffix != ".json":
        raise ValueError(f"--export: expected a .json file, got {args.export}")
    settings = replace(ExperimentSettings(), seed=args.seed, safety_small=args.safety_small,
                       scale=args.scale, recipe=args.recipe)
    start = time.perf_counter()
    results = run_experiment(settings, arms=tuple(args.arms))
    seconds = time.perf_counter() - start
    path = export_results(results, settings, args.export, seconds=seconds)
    scores = scores_frame([s for r in results.values() for s in r.evaluation.scores])
    print(headline(scores)[["safety", "over_refusal_compliance", "helpfulness"]].round(3))
    print(f"{len(results)} arms in {seconds:.0f} s; scores written to {path}")
    return 0
