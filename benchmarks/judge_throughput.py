"""Throughput of the rule-based refusal judge against the opening-phrase rule.

Judges the 900 human-labelled XSTest completions (needs the data folder) with both and prints
responses per second for each and their ratio, all measured in this one run.

Usage::

    python benchmarks/judge_throughput.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import time

from equilibrate.judge import judge_many, load_labelled_completions, opening_phrase_label


def responses() -> list[tuple[str, str]]:
    rows = load_labelled_completions()
    return [(r["prompt"], r["completion"]) for r in rows]


def best_rate(fn, items, repeat: int) -> float:
    """Items per second of the fastest of ``repeat`` passes."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn(items)
        best = min(best, time.perf_counter() - start)
    return len(items) / best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    items = responses()
    judge_rate = best_rate(judge_many, items, args.repeat)
    rule_rate = best_rate(lambda xs: [opening_phrase_label(r) for _, r in xs], items, args.repeat)
    print(f"responses: {len(items)}")
    print(f"rule judge:          {judge_rate:10.0f} responses/s")
    print(f"opening-phrase rule: {rule_rate:10.0f} responses/s")
    print(f"ratio (judge / opening-phrase): {judge_rate / rule_rate:.3f}")


if __name__ == "__main__":
    main()
