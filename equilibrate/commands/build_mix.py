"""``equilibrate build-mix``: build a training mix (FDC quotas or naive) and write it with its
manifest.

Writes ``mix.jsonl`` (trl conversational preference rows plus ``id``, ``category``, ``source``)
and ``manifest.json`` (counts, drops, settings) into ``--out`` (default: the cache folder keyed by
the settings) and prints the manifest's counts.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

from equilibrate.errors import ConfigError
from equilibrate.fdc.mix import MODES, MixConfig, build_mix, mix_folder
from equilibrate.fdc.pairs import PAIR_SOURCES


def _ratio(text: str) -> tuple[float, float, float]:
    parts = text.replace(",", ":").split(":")
    try:
        values = tuple(float(p) for p in parts)
    except ValueError:
        raise ConfigError("--ratio", f"expected three numbers like 10:3:1, got {text!r}") from None
    if len(values) != 3:
        raise ConfigError("--ratio", f"expected three numbers like 10:3:1, got {text!r}")
    return values  # type: ignore[return-value]


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``equilibrate build-mix``."""
    defaults = MixConfig()
    parser = subparsers.add_parser(
        "build-mix",
        help="build an FDC (or naive) preference mix and its manifest",
        description="Draw safety pairs by category quota (EHD:IHD:MHD), general helpful pairs and "
        "counter-examples; verify every safety pair with the refusal judge; write mix.jsonl and "
        "manifest.json.",
    )
    parser.add_argument(
        "--safety-total",
        type=int,
        default=defaults.safety_total,
        help=f"safety pairs (default {defaults.safety_total})",
    )
    parser.add_argument(
        "--ratio", type=_ratio, default=defaults.ratio, help="EHD:IHD:MHD shares (default 10:3:1)"
    )
    parser.add_argument(
        "--helpful-share",
        type=float,
        default=defaults.helpful_share,
        help="helpful pairs as a share of the safety total (default 0.5)",
    )
    parser.add_argument(
        "--counter-share",
        type=float,
        default=defaults.counter_share,
        help="counter-examples as a share of the safety total (default 0.125)",
    )
    parser.add_argument("--mode", choices=MODES, default=defaults.mode)
    parser.add_argument("--pair-source", choices=PAIR_SOURCES, default=defaults.pair_source)
    parser.add_argument("--profile", default=defaults.profile, help="policy model profile")
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        metavar="FOLDER",
        help="copy mix.jsonl and manifest.json here as well",
    )
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """Build the mix described by the arguments."""
    config = MixConfig(
        safety_total=args.safety_total,
        ratio=tuple(args.ratio),
        helpful_share=args.helpful_share,
        counter_share=args.counter_share,
        mode=args.mode,
        pair_source=args.pair_source,
        profile=args.profile,
        seed=args.seed,
    )
    _, manifest = build_mix(config)
    folder = mix_folder(config)
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        for name in ("mix.jsonl", "manifest.json"):
            shutil.copyfile(folder / name, args.out / name)
        folder = args.out
    counts = {k: manifest[k] for k in ("total", "by_category", "pairs_dropped")}
    print(json.dumps(counts, indent=2))
    print(f"mix written to {folder}")
    return 0
