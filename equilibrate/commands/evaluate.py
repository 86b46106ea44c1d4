"""``equilibrate evaluate``: safety, over-refusal and helpfulness of a run or of the base model.

``--run DIR`` evaluates the LoRA adapter in ``DIR/adapter`` (a training run directory) on top of
its profile's model; ``--base`` evaluates the profile's model itself and stores the results in
``--out`` (default ``<cache>/runs/base-<profile>``). Every score with its 95% interval and the
judge's error rate goes to ``<DIR>/evaluation/results.json`` and ``results.csv``; per-benchmark
parts make a second call resume (finished benchmarks are not recomputed).
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from equilibrate.errors import ConfigError

logger = logging.getLogger(__name__)


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``equilibrate evaluate``."""
    parser = subparsers.add_parser(
        "evaluate",
        help="score a run (or the base model) on safety, over-refusal and helpfulness",
        description="Evaluate a trained adapter (--run DIR) or the base model (--base) on harmful "
        "prompts, XSTest safe prompts and helpfulness benchmarks. Writes every score with its 95% "
        "interval and the judge's error rate to DIR/evaluation/ as JSON and CSV; resumable.",
    )
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--run", type=Path, metavar="DIR", help="a training run directory")
    which.add_argument("--base", action="store_true", help="evaluate the profile's base model")
    parser.add_argument("--out", type=Path, metavar="DIR", help="results folder for --base")
    parser.add_argument("--profile", help="profile name (default: the run's recipe, else auto)")
    parser.add_argument("--name", help="model name in tables (default: run folder name / 'base')")
    parser.add_argument("--seed", type=int, default=0, help="seed of the samples (default 0)")
    parser.add_argument("--n-safety", type=int, help="prompts per safety set")
    parser.add_argument("--n-overrefusal", type=int, help="XSTest safe prompts (default all)")
    parser.add_argument("--n-mc", type=int, help="questions per multiple-choice benchmark")
    parser.add_argument("--n-gen", type=int, help="questions for GSM8K and for BBH")
    parser.add_argument("--n-code", type=int, help="HumanEval tasks")
    parser.add_argument(
        "--safety-sets", nargs="*", metavar="SET", help="harmful prompt sets (none: skip safety)"
    )
    parser.add_argument(
        "--benchmarks", nargs="*", metavar="NAME", help="helpfulness benchmarks (none: skip)"
    )
    parser.add_argument(
        "--no-overrefusal", action="store_true", help="skip the XSTest safe prompts"
    )
    parser.add_argument(
        "--run-code",
        action="store_true",
        help="run HumanEval: executes model-written code in the sandbox (off by default)",
    )
    parser.add_argument(
        "--second-opinion",
        choices=("on", "off"),
        help="LLM second opinion where the rule judge is unsure (default: on for GPU profiles)",
    )
    parser.set_defaults(func=run)
    return parser


def _recipe_profile(run_dir: Path) -> str | None:
    """The profile named in ``<run>/recipe.yaml`` (``model.profile``), if any."""
    path = run_dir / "recipe.yaml"
    if not path.is_file():
        return None
    import yaml

    data = yaml.safe_load(path.read_text()) or {}
    model = data.get("model") if isinstance(data, dict) else None
    return model.get("profile") if isinstance(model, dict) else None


def find_adapter(run_dir: Path) -> Path:
    """The PEFT adapter folder of a training run (``DIR/adapter``, or DIR itself)."""
    for candidate in (run_dir / "adapter", run_dir):
        if (candidate / "adapter_config.json").is_file():
            return candidate
    raise ConfigError(
        "run", f"{run_dir} holds no adapter (no adapter/adapter_config.json); is training finished?"
    )


def settings_from_args(args: argparse.Namespace, profile: object):
    """EvalSettings for the profile with the command-line overrides applied."""
    from equilibrate.evaluate import EvalSettings

    overrides: dict = {"seed": args.seed, "run_code": args.run_code}
    for flag, field in (
        ("n_safety", "n_safety"),
        ("n_overrefusal", "n_overrefusal"),
        ("n_mc", "n_multiple_choice"),
        ("n_gen", "n_generation"),
        ("n_code", "n_code"),
    ):
        if getattr(args, flag) is not None:
            overrides[field] = getattr(args, flag)
    if args.safety_sets is not None:
        overrides["safety_sets"] = tuple(args.safety_sets)
    if args.benchmarks is not None:
        overrides["helpfulness_benchmarks"] = tuple(args.benchmarks)
    if args.no_overrefusal:
        overrides["overrefusal"] = False
    if args.second_opinion:
        overrides["second_opinion"] = args.second_opinion == "on"
    return EvalSettings.for_profile(profile, **overrides)


def run(args: argparse.Namespace) -> int:
    """Load the model, evaluate it, print the scores table."""
    from equilibrate.evaluate import evaluate_model, results_table
    from equilibrate.evaluate.report import to_text
    from equilibrate.generate import model_key
    from equilibrate.paths import cache_dir
    from equilibrate.profiles import auto_profile, get_profile, load_model, load_tokenizer

    adapter = None
    if args.run is not None:
        if not args.run.is_dir():
            raise FileNotFoundError(f"{args.run}: no such run directory")
        adapter = find_adapter(args.run)
    name = args.profile or (_recipe_profile(args.run) if args.run else None)
    profile = get_profile(name) if name else auto_profile()
    settings = settings_from_args(args, profile)
    if args.run is not None:
        out_dir, model_name = args.run, args.name or args.run.name
    else:
        out_dir = args.out or cache_dir("runs", f"base-{profile.name}")
        model_name = args.name or f"{profile.name} base"
    tokenizer = load_tokenizer(profile)
    model = load_model(profile, adapter=adapter)
    results = evaluate_model(
        model,
        tokenizer,
        profile,
        settings,
        out_dir,
        model_key(profile, adapter),
        model_name=model_name,
    )
    print(to_text(results_table(results.scores)))
    print(f"\nresults: {Path(out_dir) / 'evaluation'}")
    return 0
