"""Calibration check: does an experiment arm's training move the model?

Trains (or reuses) one arm of the equilibrium experiment with the given settings and measures, on a
development set drawn from the *training* side of the split and disjoint from the arm's mix, how
often the model refuses harmful requests and plain helpful requests, against the base model. No
evaluation set is touched: this is how the experiment's learning rate, chosen-answer NLL weight,
epochs and budget were chosen (see chapter 5).

Usage::

    python scripts/calibrate.py --arm fdc --safety-small 48 [--n 48] [--lr 1e-3] [--epochs 2]
"""

from __future__ import annotations

import argparse
import random
import time

from equilibrate import data, experiment, profiles, splits
from equilibrate.generate import GenerationSettings, generate, model_key
from equilibrate.judge import judge_response
from equilibrate.paths import cache_dir


def dev_prompts(used: set[str], n: int, seed: int) -> dict[str, list[str]]:
    """``n`` harmful (AdvBench train half, HarmBench val) and ``n`` helpful (HH-RLHF helpful)
    prompts, none of them in ``used`` (normalised) and none an evaluation prompt."""
    held = splits.evaluation_prompts()

    def fresh(rows):
        out = []
        for row in rows:
            norm = data.normalize_prompt(row["prompt"])
            if norm not in used and norm not in held and len(row["prompt"]) < 400:
                out.append(row["prompt"])
        return out

    harmful = fresh(r for s in ("advbench", "harmbench") for r in data.load(s)
                    if splits.pool_split(s, r) == "train")
    helpful = fresh(data.load("hh_rlhf_helpful"))
    rng = random.Random(seed)
    return {"harmful": rng.sample(harmful, n), "helpful": rng.sample(helpful, n)}


def refusal_rate(model, tokenizer, profile, prompts, key) -> float:
    settings = GenerationSettings(max_new_tokens=64)
    answers = generate(model, tokenizer, prompts, settings, profile=profile,
                       cache=cache_dir("generations") / "calibration.jsonl", model_key=key)
    return sum(judge_response(p, a).label != "full_compliance"
               for p, a in zip(prompts, answers, strict=True)) / len(prompts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arm", default="fdc", choices=experiment.TRAINED_ARMS)
    parser.add_argument("--safety-small", type=int,
                        default=experiment.ExperimentSettings.safety_small)
    parser.add_argument("--lr", type=float, default=experiment.ExperimentSettings.learning_rate)
    parser.add_argument("--sft-weight", type=float,
                        default=experiment.ExperimentSettings.sft_weight)
    parser.add_argument("--epochs", type=int, default=experiment.ExperimentSettings.epochs)
    parser.add_argument("--batch-size", type=int, default=experiment.ExperimentSettings.batch_size)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--n", type=int, default=48, help="prompts per development set")
    args = parser.parse_args()
    settings = experiment.ExperimentSettings(
        safety_small=args.safety_small, learning_rate=args.lr, sft_weight=args.sft_weight,
        epochs=args.epochs, batch_size=args.batch_size, seed=args.seed)
    start = time.perf_counter()
    mix, _ = experiment.arm_data(args.arm, settings)
    used = {data.normalize_prompt(m["content"]) for row in mix for m in row["prompt"]
            if m["role"] == "user"}
    dev = dev_prompts(used, args.n, seed=1000 + args.seed)
    run = experiment.train_arm(args.arm, settings)
    profile = profiles.get_profile("cpu")
    tokenizer = profiles.load_tokenizer(profile)
    print(run.summary_line())
    for label, adapter in (("base", None), (args.arm, run.adapter_dir)):
        model = profiles.load_model(profile, adapter=adapter)
        key = model_key(profile, adapter)
        rates = {kind: refusal_rate(model, tokenizer, profile, prompts, key)
                 for kind, prompts in dev.items()}
        print(f"{label:12s} refuses {rates['harmful']:.0%} of {args.n} harmful and "
              f"{rates['helpful']:.0%} of {args.n} helpful development prompts")
    print(f"{time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
