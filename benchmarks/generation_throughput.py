"""Generation throughput of the ``cpu`` profile: batch 1 against batch 16 on real XSTest prompts.

Answers the same N prompts (default 32, spread evenly over XSTest's 450) twice, once one prompt at a
time and once in batches, without the cache, and prints new tokens per second for each and their
ratio. "New tokens" counts the answer tokens kept (up to the first stop token), so the work a batch
spends on rows that have already stopped counts as overhead, as it should.

Usage::

    python benchmarks/generation_throughput.py [--n 32] [--batch-size 16] [--max-new-tokens 64]
                                               [--threads T]

On a shared machine pass ``--threads 1``: when other processes hold the cores, torch's worker
threads wait on each other and two threads ran ten times slower than one (measured here).
"""

from __future__ import annotations

import argparse
import csv
import logging
import time
from pathlib import Path

import torch

from equilibrate.generate import GenerationSettings, generate_token_ids
from equilibrate.paths import data_dir
from equilibrate.profiles import get_profile, load_model, load_tokenizer

logger = logging.getLogger("generation_throughput")


def xstest_prompts(n: int) -> list[str]:
    """``n`` XSTest prompts spread evenly over the file (safe and unsafe, every type)."""
    try:
        from equilibrate.data import load

        rows = load("xstest")
    except (ImportError, AttributeError):
        folder = data_dir() or Path("../shared/data")
        with open(folder / "xstest" / "xstest_prompts.csv", newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
    step = max(1, len(rows) // n)
    return [row["prompt"] for row in rows[::step][:n]]


def measure(model, tokenizer, prompts, settings, profile) -> tuple[float, int]:
    """Seconds taken and new tokens produced for one pass over ``prompts``."""
    started = time.perf_counter()
    ids = generate_token_ids(model, tokenizer, prompts, settings, profile=profile)
    return time.perf_counter() - started, sum(len(x) for x in ids)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=32, help="number of XSTest prompts")
    parser.add_argument("--batch-size", type=int, default=16, help="the batched run's batch size")
    parser.add_argument("--max-new-tokens", type=int, default=64, help="longest answer (tokens)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    profile = get_profile("cpu")
    tokenizer = load_tokenizer(profile)
    model = load_model(profile)
    prompts = xstest_prompts(args.n)
    # Warm-up, so one-time costs do not land on the first measurement.
    generate_token_ids(
        model, tokenizer, prompts[:2], GenerationSettings(max_new_tokens=4), profile=profile
    )

    results = {}
    for batch_size in (1, args.batch_size):
        settings = GenerationSettings(max_new_tokens=args.max_new_tokens, batch_size=batch_size)
        seconds, tokens = measure(model, tokenizer, prompts, settings, profile)
        results[batch_size] = (seconds, tokens)
        logger.info(
            "batch %2d: %d prompts, %d new tokens in %.1f s = %.1f tokens/s",
            batch_size,
            len(prompts),
            tokens,
            seconds,
            tokens / seconds,
        )
    (s1, t1), (sb, tb) = results[1], results[args.batch_size]
    logger.info(
        "batch %d / batch 1 throughput: %.2fx (torch threads: %d, %s, max_new_tokens %d)",
        args.batch_size,
        (tb / sb) / (t1 / s1),
        torch.get_num_threads(),
        profile.model_id,
        args.max_new_tokens,
    )


if __name__ == "__main__":
    main()
