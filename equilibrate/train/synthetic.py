"""Models, tokenizers and preference pairs made from nothing, for tests and the GPU check.

- :func:`word_tokenizer`: a word-level tokenizer over ``w0 ... wN`` with a small chat template;
- :func:`save_random_model`: a randomly initialised Llama of any :class:`ModelShape` saved with
  that tokenizer, so that it loads like any local model folder (no download);
- :func:`synthetic_pairs`: conversational preference rows of random words with a fixed length.

Nothing here learns anything meaningful; it exercises the training machinery at a chosen size.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from equilibrate.train.shapes import ModelShape, llama_config

SPECIAL = ("<pad>", "<s>", "</s>", "<unk>", "<|user|>", "<|assistant|>", "<|end|>")
CHAT_TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}"
    "{% if m['role'] == 'user' %}<|user|> {{ m['content'] }} <|end|> "
    "{% else %}<|assistant|> {{ m['content'] }} <|end|> {% endif %}{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|> {% endif %}"
)


def word_tokenizer(num_words: int = 256):
    """A fast word-level tokenizer: ids 0-6 are special tokens, then ``w0`` ... ``w{num_words-1}``.

    ``<pad>`` is id 0, ``<s>`` (bos) 1, ``</s>`` (eos) 2, matching :func:`llama_config`. The chat
    template renders ``<s><|user|> ... <|end|> <|assistant|> ... <|end|>``.
    """
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {tok: i for i, tok in enumerate(SPECIAL)}
    for i in range(num_words):
        vocab[f"w{i}"] = len(vocab)
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=core,
        bos_token="<s>",
        eos_token="</s>",
        pad_token="<pad>",
        unk_token="<unk>",
        additional_special_tokens=["<|user|>", "<|assistant|>", "<|end|>"],
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def random_model(
    shape: ModelShape,
    dtype: Any = None,
    seed: int = 0,
    device: str = "cpu",
    **config_overrides: Any,
):
    """A ``LlamaForCausalLM`` with ``shape``'s exact sizes and random weights (``seed``).

    The weights are created directly on ``device`` in ``dtype`` (default fp32): an 8B model built
    on a GPU in bf16 takes seconds, on a CPU in fp32 minutes and 32 GB.
    """
    import torch
    from transformers import LlamaForCausalLM

    torch.manual_seed(seed)
    config = llama_config(shape, **config_overrides)
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype or torch.float32)
    try:
        with torch.device(device):
            model = LlamaForCausalLM(config)
    finally:
        torch.set_default_dtype(previous)
    return model


def save_random_model(
    shape: ModelShape,
    folder: str | Path,
    *,
    num_words: int | None = None,
    seed: int = 0,
    dtype: Any = None,
    device: str = "cpu",
) -> Path:
    """Save a random model of ``shape`` and a word tokenizer into ``folder``; returns the folder.

    ``num_words`` defaults to filling the vocabulary (``shape.vocab - 7``), capped at 4096.
    Reuses the folder when it already holds a model.
    """
    folder = Path(folder)
    if (folder / "config.json").is_file() and (folder / "tokenizer.json").is_file():
        return folder
    words = num_words if num_words is not None else min(shape.vocab - len(SPECIAL), 4096)
    if words + len(SPECIAL) > shape.vocab:
        raise ValueError(
            f"{words} words + {len(SPECIAL)} special tokens exceed vocab {shape.vocab}"
        )
    folder.mkdir(parents=True, exist_ok=True)
    model = random_model(shape, dtype=dtype, seed=seed, device=device)
    model.save_pretrained(folder)
    del model
    word_tokenizer(words).save_pretrained(folder)
    return folder


def synthetic_pairs(
    n: int,
    *,
    prompt_words: int = 16,
    response_words: int = 16,
    num_words: int = 256,
    seed: int = 0,
    spans: bool = False,
) -> list[dict[str, Any]]:
    """``n`` conversational preference rows of random words (trl's format).

    Each row: ``prompt`` = one user message of ``prompt_words`` words; ``chosen`` and
    ``rejected`` = one assistant message of ``response_words`` words each. With ``spans`` each
    response also gets AMA character spans (``chosen_spans``/``rejected_spans``): its first half
    scores +1 and its second half -1, so AMA keeps half of every response.
    """
    rng = random.Random(seed)

    def words(k: int) -> str:
        return " ".join(f"w{rng.randrange(num_words)}" for _ in range(k))

    def halves(text: str) -> list[tuple[int, int, float]]:
        cut = text.rfind(" ", 0, len(text) // 2 + 1)
        cut = len(text) // 2 if cut <= 0 else cut
        return [(0, cut, 1.0), (cut, len(text), -1.0)]

    rows = []
    for i in range(n):
        chosen, rejected = words(response_words), words(response_words)
        row: dict[str, Any] = {
            "id": f"synthetic/{i}",
            "prompt": [{"role": "user", "content": words(prompt_words)}],
            "chosen": [{"role": "assistant", "content": chosen}],
            "rejected": [{"role": "assistant", "content": rejected}],
        }
        if spans:
            row["chosen_spans"] = halves(chosen)
            row["rejected_spans"] = halves(rejected)
        rows.append(row)
    return rows
