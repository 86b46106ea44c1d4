"""Does AMA-DPO cost what DPO costs? Step time of both on the same data, in one process.

Scores the pairs once with the segment scorer (its cost per pair is printed), then builds a DPO
and an AMA-DPO trainer on the same pairs and model initialisation and times optimizer steps
(collate + forward + backward + update) of the two in alternation, on the same batches, so that
both see the same machine load. Prints the median step time of each and the ratio (target:
AMA / DPO <= 1.05). One warm-up step of each is not counted.

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
        rows.append(
            {
                "prompt": [{"role": "user", "content": rec["prompt"]}],
                "chosen": [{"role": "assistant", "content": rec["chosen"]}],
                "rejected": [{"role": "assistant", "content": rec["rejected"]}],
            }
        )
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
            vocab_size=len(tokenizer),
            hidden_size=64,
            intermediate_size=128,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            max_position_embeddings=512,
            tie_word_embeddings=True,
        )
        return LlamaForCausalLM(config), tokenizer, None
    from peft import LoraConfig

    profile = get_profile(kind)
    lora = LoraConfig(r=16, lora_alpha=32, target_modules="all-linear", task_type="CAUSAL_LM")
    return load_model(profile, trainable=True), load_tokenizer(profile), lora


def build_trainer(method: str, rows, args, out: str):
    """A fresh trainer of ``method`` (``dpo`` or ``ama-dpo``) with its optimizer, same seed."""
    from datasets import Dataset
    from trl import DPOConfig, DPOTrainer

    from equilibrate.ama import AMADPOConfig, AMADPOTrainer

    model, tokenizer, lora = model_and_tokenizer(args.model, seed=0)
    ref = None if lora is not None else model_and_tokenizer(args.model, seed=1)[0]
    common = dict(
        output_dir=out,
        bf16=False,
        use_cpu=True,
        per_device_train_batch_size=args.batch_size,
        max_length=args.max_length,
        report_to=[],
        save_strategy="no",
        learning_rate=1e-4,
        gradient_checkpointing=False,
        disable_tqdm=True,
        seed=0,
    )
    data = Dataset.from_list(rows)
    if method == "dpo":
        data = data.remove_columns(["chosen_spans", "rejected_spans"])
        trainer_cls, config = DPOTrainer, DPOConfig(**common)
    else:
        trainer_cls, config = AMADPOTrainer, AMADPOConfig(**common)
    trainer = trainer_cls(
        model=model,
        ref_model=ref,
        args=config,
        train_dataset=data,
        processing_class=tokenizer,
        peft_config=lora,
    )
    trainer.create_optimizer()
    trainer.current_gradient_accumulation_steps = 1  # set by Trainer.train otherwise
    trainer.model.train()
    return trainer


def timed_step(trainer, indices: list[int]) -> float:
    """Seconds for collate + forward + backward + optimizer step on the given pairs."""
    start = time.perf_counter()
    batch = trainer.data_collator([trainer.train_dataset[i] for i in indices])
    trainer.training_step(trainer.model, batch)
    trainer.optimizer.step()
    trainer.optimizer.zero_grad()
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="tiny", help="'tiny' or a profile name such as 'cpu'")
    parser.add_argument("--pairs", type=int, default=16, help="pairs to score and train on")
    parser.add_argument("--steps", type=int, default=8, help="timed steps of each method")
    parser.add_argument("--batch-size", type=int, default=2)
    parser.add_argument("--max-length", type=int, default=128)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

    from equilibrate.ama import SegmentScorer, score_dataset

    rows = pairs(args.pairs)
    from equilibrate.fdc.embed import SentenceEncoder

    scorer = SegmentScorer()
    scorer.classifier._encoder = SentenceEncoder(cache=False)  # measure real embedding cost
    start = time.perf_counter()
    rows = score_dataset(rows, scorer, cache=False)
    per_pair = (time.perf_counter() - start) / len(rows)

    with tempfile.TemporaryDirectory() as out:
        trainers = {m: build_trainer(m, rows, args, out) for m in ("dpo", "ama-dpo")}
        usable = min(len(t.train_dataset) for t in trainers.values())
        times: dict[str, list[float]] = {"dpo": [], "ama-dpo": []}
        for step in range(args.steps + 1):
            first = step * args.batch_size % max(usable - args.batch_size + 1, 1)
            indices = list(range(first, first + args.batch_size))
            order = ("dpo", "ama-dpo") if step % 2 == 0 else ("ama-dpo", "dpo")
            for method in order:  # alternate who goes first; same pairs for both
                seconds = timed_step(trainers[method], indices)
                if step > 0:  # step 0 warms up
                    times[method].append(seconds)
    ratios = [a / d for a, d in zip(times["ama-dpo"], times["dpo"], strict=True)]
    dpo, ama = statistics.median(times["dpo"]), statistics.median(times["ama-dpo"])
    print(
        f"model={args.model} pairs={len(rows)} batch={args.batch_size} "
        f"max_length={args.max_length} steps={args.steps} (+1 warm-up, alternating)"
    )
    print(
        f"segment scorer: {per_pair * 1000:.0f} ms per pair (both responses, embeddings "
        "included, once per dataset)"
    )
    print(f"median step: DPO {dpo * 1000:.0f} ms, AMA-DPO {ama * 1000:.0f} ms")
    for method, values in times.items():
        print(f"  {method} steps (ms): " + " ".join(f"{v * 1000:.0f}" for v in values))
    print(
        f"step-time ratio AMA/DPO: {statistics.median(ratios):.3f} median of paired steps, "
        f"{ama / dpo:.3f} ratio of medians (target <= 1.05)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
