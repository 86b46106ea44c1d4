"""Does AMA-DPO cost what DPO costs? Step time of both on the same data, in one process.

Scores the pairs once with the segment scorer (its cost per pair is printed), then trains DPO and
AMA-DPO for the same number of steps, alternating the two methods over several rounds so that
both see the same machine load, and prints the median step time of each and their ratio
(target: AMA / DPO <= 1.05). The first step of every round (warm-up) is not counted.

    python benchmarks/ama_step_time.py                 # tiny random Llama, SmolLM2 tokenizer
    python benchmarks/ama_step_time.py --model cpu     # SmolLM2-135M-Instruct with LoRA

Runs offline on CPU; the tiny setting takes about a minute on two cores.
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
import tempfile
import time

os.environ.setdefault("EQUILIBRATE_PROGRESS", "0")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

logger = logging.getLogger("ama_step_time")


def pairs(count: int) -> list[dict]:
    """The first ``count`` HH-RLHF harmless pairs in trl's conversational format."""
    from equilibrate.data import load

    rows = []
    for rec in load("hh_rlhf_harmless")[:count]:
        rows.append({
            "prompt": [{"role": "user", "content": rec["prompt"]}],
            "chosen": [{"role": "assistant", "content": rec["chosen"]}],
            "rejected": [{"role": "assistant", "content": rec["rejected"]}],
        })
    return rows


def model_and_tokenizer(kind: str, seed: int):
    """(model, tokenizer, peft_config) for ``tiny`` or ``cpu``."""
    import torch

    from equilibrate.profiles import get_profile, load_model, load_tokenizer, tokenizer_for_tests

    if kind == "tiny":
        from transformers import LlamaConfig, LlamaForCausalLM

        tokenizer = tokenizer_for_tests("smollm2")
        torch.manual_seed(seed)
        config = LlamaConfig(
            vocab_size=len(tokenizer), hidden_size=128, intermediate_size=256,
            num_hidden_layers=4, num_attention_heads=4, num_key_value_heads=2,
            max_position_embeddings=512, tie_word_embeddings=True,
        )
        return LlamaForCausalLM(config), tokenizer, None
    from peft import LoraConfig

    profile = get_profile(kind)
    lora = LoraConfig(r=16, lora_alpha=32, target_modules="all-linear", task_type="CAUSAL_LM")
    return load_model(profile, trainable=True), load_tokenizer(profile), lora


class StepTimer:
    """A trainer callback recording wall time per optimizer step (seconds)."""

    def __init__(self) -> None:
        from transformers import TrainerCallback

        timer = self

        class _Callback(TrainerCallback):
            def on_step_begin(self, args, state, control, **kwargs):
                timer._start = time.perf_counter()

            def on_step_end(self, args, state, control, **kwargs):
                timer.times.append(time.perf_counter() - timer._start)

        self.times: list[float] = []
        self._start = 0.0
        self.callback = _Callback()


def train_steps(method: str, rows, args, out: str) -> list[float]:
    """Step times of one fresh run of ``method`` (``dpo`` or ``ama-dpo``)."""
    from datasets import Dataset
    from trl import DPOConfig, DPOTrainer

    from equilibrate.ama import AMADPOConfig, AMADPOTrainer

    model, tokenizer, lora = model_and_tokenizer(args.model, seed=0)
    ref = None
    if lora is None:
        ref, _, _ = model_and_tokenizer(args.model, seed=0)
    common = dict(
        output_dir=out, bf16=False, use_cpu=True, per_device_train_batch_size=args.batch_size,
        max_steps=args.steps, max_length=args.max_length, report_to=[], save_strategy="no",
        logging_steps=args.steps, learning_rate=1e-4, gradient_checkpointing=False,
        disable_tqdm=True, seed=0,
    )
    data = Dataset.from_list(rows)
    if method == "dpo":
        data = data.remove_columns(["chosen_spans", "rejected_spans"])
        trainer_cls, config = DPOTrainer, DPOConfig(**common)
    else:
        trainer_cls, config = AMADPOTrainer, AMADPOConfig(**common)
    timer = StepTimer()
    trainer = trainer_cls(model=model, ref_model=ref, args=config, train_dataset=data,
                          processing_class=tokenizer, peft_config=lora,
                          callbacks=[timer.callback])
    trainer.train()
    return timer.times[1:]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="tiny", help="'tiny' or a profile name such as 'cpu'")
    parser.add_argument("--pairs", type=int, default=32, help="pairs to score and train on")
    parser.add_argument("--steps", type=int, default=6, help="optimizer steps per run")
    parser.add_argument("--rounds", type=int, default=2, help="DPO/AMA alternations")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--max-length", type=int, default=256)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

    from equilibrate.ama import SegmentScorer, score_dataset

    rows = pairs(args.pairs)
    scorer = SegmentScorer()
    start = time.perf_counter()
    rows = score_dataset(rows, scorer, cache=False)
    per_pair = (time.perf_counter() - start) / len(rows)

    times: dict[str, list[float]] = {"dpo": [], "ama-dpo": []}
    with tempfile.TemporaryDirectory() as out:
        for _ in range(args.rounds):
            for method in ("dpo", "ama-dpo"):
                times[method].extend(train_steps(method, rows, args, out))
    dpo, ama = statistics.median(times["dpo"]), statistics.median(times["ama-dpo"])
    print(f"model={args.model} pairs={len(rows)} batch={args.batch_size} steps={args.steps} "
          f"rounds={args.rounds} (first step of each run not counted)")
    print(f"segment scorer: {per_pair * 1000:.0f} ms per pair (both responses, embeddings "
          "included, once per dataset)")
    print(f"median step: DPO {dpo * 1000:.0f} ms, AMA-DPO {ama * 1000:.0f} ms "
          f"(n={len(times['dpo'])}/{len(times['ama-dpo'])})")
    print(f"step-time ratio AMA/DPO: {ama / dpo:.3f} (target <= 1.05)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
