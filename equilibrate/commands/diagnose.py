"""``equilibrate diagnose``: the over-safety diagnosis of chapter 1, written to a run directory."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "diagnose",
        help="refusal rates on harmful prompts and on XSTest's harmless look-alikes",
        description="Generate answers to all XSTest prompts and a harmful evaluation set, judge "
        "them, and write answers.jsonl, summary.json, per-type tables and quadrants.png.",
    )
    p.add_argument("--profile", default="cpu", help="model profile (default: cpu)")
    p.add_argument("--adapter", type=Path, default=None, help="a LoRA adapter folder to load")
    p.add_argument("--out", type=Path, default=None,
                   help="run directory (default: runs/diagnose-PROFILE)")
    p.add_argument("--n-harmful", type=int, default=200, help="harmful prompts beyond XSTest")
    p.add_argument("--max-new-tokens", type=int, default=64)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from equilibrate import diagnose, profiles
    from equilibrate.generate import model_key

    settings = diagnose.DiagnosisSettings(
        n_harmful=args.n_harmful, max_new_tokens=args.max_new_tokens,
        batch_size=args.batch_size, seed=args.seed)
    profile = profiles.get_profile(args.profile)
    tokenizer = profiles.load_tokenizer(profile)
    model = profiles.load_model(profile, adapter=args.adapter)
    key = model_key(profile, adapter=args.adapter)
    frame = diagnose.run_diagnosis(model, tokenizer, profile, settings, model_key=key)
    out = args.out or Path("runs") / f"diagnose-{profile.name}"
    summary = diagnose.save_diagnosis(frame, out, name=key, threshold=settings.threshold)
    print(
        f"{key}: refuses {summary['harmful_refusal']:.1%} of {summary['harmful_n']} harmful "
        f"prompts, fully answers {summary['harmless_compliance']:.1%} of "
        f"{summary['harmless_n']} harmless ones -> {summary['region']}; wrote {out}"
    )
    return 0
