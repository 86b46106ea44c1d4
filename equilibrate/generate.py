"""Batched generation of chat answers, with a JSONL cache that survives interruptions.

:func:`generate` renders each prompt with the chat template, sorts the prompts by length (less
padding), runs left-padded batches through ``model.generate``, cuts every answer at the profile's
first stop token and returns the answers in input order. With ``cache=`` every finished batch is
appended to a JSONL file at once; a second call with the same model, prompts and settings reads the
answers back and generates only what is missing.

One cache line (one JSON object)::

    {"key": "<sha256>", "model_key": "...", "prompt": "..." or [messages], "response": "...",
     "settings": {...}, "stopped": true, "new_tokens": 17}

``key`` is the sha256 of (model key, prompt, the settings that change the output). ``stopped`` says
whether the answer ended with a stop token (``False``: it hit ``max_new_tokens``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from equilibrate.errors import ConfigError
from equilibrate.profiles import Profile, encode_chat, stop_token_ids, weights_source
from equilibrate.progress import progress

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

logger = logging.getLogger(__name__)

Prompt = str | list[dict]


@dataclass(frozen=True)
class GenerationSettings:
    """How answers are generated.

    Attributes:
        max_new_tokens: longest answer, in tokens.
        batch_size: prompts per ``model.generate`` call. It does not enter the cache key: greedy
            answers agree across batch sizes (up to float round-off, see the tests).
        do_sample: sample (``True``) or decode greedily (``False``).
        temperature: softmax temperature when sampling (> 0).
        top_p: nucleus mass when sampling, in (0, 1]. No top-k cut is applied.
        seed: seeds torch's generator at the start of each call. Sampled answers also depend on
            which prompts share a batch, so a resumed sampled run is not identical to an
            uninterrupted one.
        system_prompt: a system message put before every prompt (``None``: the template's default;
            SmolLM2's template then adds its own default system prompt).
    """

    max_new_tokens: int = 64
    batch_size: int = 16
    do_sample: bool = False
    temperature: float = 1.0
    top_p: float = 1.0
    seed: int = 0
    system_prompt: str | None = None

    def __post_init__(self) -> None:
        for name in ("max_new_tokens", "batch_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(name, f"expected a positive integer, got {value!r}")
        if not isinstance(self.do_sample, bool):
            raise ConfigError("do_sample", f"expected True or False, got {self.do_sample!r}")
        if not isinstance(self.temperature, (int, float)) or not self.temperature > 0:
            raise ConfigError("temperature", f"expected a number > 0, got {self.temperature!r}")
        if not isinstance(self.top_p, (int, float)) or not 0 < self.top_p <= 1:
            raise ConfigError("top_p", f"expected a number in (0, 1], got {self.top_p!r}")
        if not isinstance(self.seed, int) or isinstance(self.seed, bool) or self.seed < 0:
            raise ConfigError("seed", f"expected a non-negative integer, got {self.seed!r}")
        if self.system_prompt is not None and not isinstance(self.system_prompt, str):
            raise ConfigError("system_prompt", "expected a string or None")

    def output_fields(self) -> dict:
        """The settings that change the answers (the cache key's part of the settings).

        ``batch_size`` never does; temperature, top_p and seed only matter when sampling.
        """
        fields = asdict(self)
        del fields["batch_size"]
        if not self.do_sample:
            for name in ("temperature", "top_p", "seed"):
                del fields[name]
        return fields


# --------------------------------------------------------------------------------------------
# Keys
# --------------------------------------------------------------------------------------------


def adapter_hash(adapter: str | Path) -> str:
    """sha256 over a PEFT adapter folder's ``adapter_*`` files (names and contents).

    Other files (a README, a training log) do not change the model and are left out.
    """
    folder = Path(adapter)
    files = sorted(p for p in folder.glob("adapter_*") if p.is_file())
    if not files:
        raise ConfigError("adapter", f"{folder} holds no adapter_* files; is it a PEFT adapter?")
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.name.encode() + b"\0")
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        digest.update(b"\0")
    return digest.hexdigest()


def model_key(profile: Profile, adapter: str | Path | None = None) -> str:
    """A short string that changes whenever the model's answers could change.

    It hashes the profile's model id, precision, quantization, chat template, stop tokens and the
    weights' source (:func:`equilibrate.profiles.weights_source`), plus the adapter's content hash.
    Example: ``"cpu:3f2a9c0d1e4b5a6f"`` or ``"cpu:3f2a9c0d1e4b5a6f+adapter:9b1c2d3e4f5a6b7c"``.
    """
    parts = {
        "model_id": profile.model_id,
        "precision": profile.precision,
        "quantization": profile.quantization,
        "chat_template": profile.chat_template,
        "stop_tokens": list(profile.stop_tokens),
        "weights": weights_source(profile),
    }
    base = hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:16]
    key = f"{profile.name}:{base}"
    if adapter is not None:
        key += f"+adapter:{adapter_hash(adapter)[:16]}"
    return key


def cache_key(model_key: str, prompt: Prompt, settings: GenerationSettings) -> str:
    """sha256 (hex) of the model key, the prompt and the output-changing settings."""
    payload = {"model_key": model_key, "prompt": prompt, "settings": settings.output_fields()}
    text = json.dumps(payload, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


# --------------------------------------------------------------------------------------------
# The cache file
# --------------------------------------------------------------------------------------------


class CompletionCache:
    """An append-only JSONL file of generated answers, keyed by :func:`cache_key`.

    Reading skips (and logs, with file and line number) lines that are not valid JSON objects with
    a string ``key`` and ``response``, such as the half-written last line of a killed run; every
    other line is kept. Later lines win over earlier lines with the same key.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.skipped_lines: list[int] = []

    def load(self) -> dict[str, dict]:
        """All valid records by key (an empty dict when the file does not exist yet)."""
        records: dict[str, dict] = {}
        self.skipped_lines = []
        if not self.path.exists():
            return records
        with open(self.path, "rb") as handle:
            for number, raw in enumerate(handle, start=1):
                if not raw.strip():
                    continue
                problem = None
                try:
                    record = json.loads(raw.decode("utf-8"))
                except UnicodeDecodeError:
                    problem = "not UTF-8 text"
                except json.JSONDecodeError as exc:
                    problem = f"not valid JSON ({exc.msg} at column {exc.colno})"
                else:
                    if not isinstance(record, dict):
                        problem = "not a JSON object"
                    elif not isinstance(record.get("key"), str):
                        problem = "no string field 'key'"
                    elif not isinstance(record.get("response"), str):
                        problem = "no string field 'response'"
                if problem is not None:
                    self.skipped_lines.append(number)
                    logger.warning(
                        "%s, line %d: %s; line skipped, it will be regenerated if needed",
                        self.path,
                        number,
                        problem,
                    )
                    continue
                records[record["key"]] = record
        return records

    def append(self, records: Sequence[dict]) -> None:
        """Append records as lines and force them to disk (one call per finished batch)."""
        if not records:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # A killed run can leave a last line without its newline: start on a fresh line.
        needs_newline = False
        if self.path.exists() and self.path.stat().st_size > 0:
            with open(self.path, "rb") as handle:
                handle.seek(-1, os.SEEK_END)
                needs_newline = handle.read(1) != b"\n"
        lines = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
        with open(self.path, "a", encoding="utf-8") as handle:
            if needs_newline:
                handle.write("\n")
            handle.write(lines)
            handle.flush()
            os.fsync(handle.fileno())


# --------------------------------------------------------------------------------------------
# Generation
# --------------------------------------------------------------------------------------------


def cut_at_stop(ids: Sequence[int], stop_ids: Sequence[int]) -> tuple[list[int], bool]:
    """The tokens before the first stop token, and whether a stop token was found."""
    stops = set(stop_ids)
    for position, token in enumerate(ids):
        if token in stops:
            return list(ids[:position]), True
    return list(ids), False


def _pad_id(tokenizer: PreTrainedTokenizerBase) -> int:
    if tokenizer.pad_token_id is None:
        raise ConfigError(
            "tokenizer",
            "the tokenizer has no padding token; load it with equilibrate.profiles.load_tokenizer",
        )
    return tokenizer.pad_token_id


def _generate_batch(
    model: PreTrainedModel,
    batch: Sequence[Sequence[int]],
    settings: GenerationSettings,
    stop_ids: Sequence[int],
    pad_id: int,
) -> list[tuple[list[int], bool]]:
    """Generate for one batch of encoded prompts.

    The prompts are left-padded to the longest, ``input_ids`` and ``attention_mask`` are
    ``(B, T)`` long tensors (mask 0 on padding). Returns per prompt the new tokens before the
    first stop token and whether a stop token ended it.
    """
    import torch
    from transformers import GenerationConfig

    width = max(len(ids) for ids in batch)
    input_ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    attention_mask = torch.zeros((len(batch), width), dtype=torch.long)
    for row, ids in enumerate(batch):
        input_ids[row, width - len(ids) :] = torch.tensor(ids, dtype=torch.long)
        attention_mask[row, width - len(ids) :] = 1
    # Every decoding option is set here so the model's own generation_config cannot add to it.
    options: dict = {
        "max_new_tokens": settings.max_new_tokens,
        "do_sample": settings.do_sample,
        "num_beams": 1,
        "eos_token_id": list(stop_ids),
        "pad_token_id": pad_id,
        "repetition_penalty": 1.0,
    }
    if settings.do_sample:
        options.update(temperature=float(settings.temperature), top_p=float(settings.top_p))
        options["top_k"] = 0
    config = GenerationConfig(**options)
    device = model.device
    with torch.inference_mode():
        output = model.generate(
            input_ids=input_ids.to(device),
            attention_mask=attention_mask.to(device),
            generation_config=config,
        )
    new_tokens = output[:, width:].tolist()
    return [cut_at_stop(ids, stop_ids) for ids in new_tokens]


def _length_order(encoded: Sequence[Sequence[int]]) -> list[int]:
    """Indices sorted longest first (stable), so each batch holds prompts of similar length."""
    return sorted(range(len(encoded)), key=lambda i: -len(encoded[i]))


def _batches(
    model: PreTrainedModel,
    encoded: Sequence[Sequence[int]],
    settings: GenerationSettings,
    stop_ids: Sequence[int],
    pad_id: int,
) -> Iterator[list[tuple[int, list[int], bool]]]:
    """Yield, batch by batch, ``(index into encoded, new tokens, stopped)`` triples."""
    import torch

    torch.manual_seed(settings.seed)
    order = _length_order(encoded)
    chunks = [order[i : i + settings.batch_size] for i in range(0, len(order), settings.batch_size)]
    for chunk in progress(chunks, desc="generate", unit="batch"):
        results = _generate_batch(model, [encoded[i] for i in chunk], settings, stop_ids, pad_id)
        yield [(i, ids, stopped) for i, (ids, stopped) in zip(chunk, results, strict=True)]


def generate_token_ids(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    prompts: Sequence[Prompt],
    settings: GenerationSettings | None = None,
    *,
    profile: Profile,
) -> list[list[int]]:
    """New token ids for each prompt, cut before the first stop token, in input order (no cache).

    Returns ``len(prompts)`` lists, each of at most ``settings.max_new_tokens`` ids.
    """
    settings = settings or GenerationSettings()
    pad_id = _pad_id(tokenizer)
    stop_ids = stop_token_ids(profile, tokenizer)
    encoded = [encode_chat(tokenizer, p, system_prompt=settings.system_prompt) for p in prompts]
    out: list[list[int]] = [[] for _ in prompts]
    for batch in _batches(model, encoded, settings, stop_ids, pad_id):
        for index, ids, _ in batch:
            out[index] = ids
    return out


def generate(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    prompts: Sequence[Prompt],
    settings: GenerationSettings | None = None,
    *,
    profile: Profile,
    cache: str | Path | None = None,
    model_key: str | None = None,
    also_read: Sequence[str | Path] = (),
) -> list[str]:
    """Answer every prompt; return the answers (stop tokens and what follows removed) in order.

    Args:
        model: a causal LM (any device; inputs are moved to ``model.device``).
        tokenizer: its tokenizer, prepared by :func:`equilibrate.profiles.load_tokenizer`.
        prompts: user prompts, or conversations as ``[{"role": ..., "content": ...}]`` lists.
        settings: decoding settings (default :class:`GenerationSettings()`).
        profile: gives the stop tokens.
        cache: a JSONL file; answers found there are returned without generating, new ones are
            appended batch by batch. ``None``: no cache.
        model_key: names the model in the cache key; required with ``cache``. Use
            :func:`model_key` (``equilibrate.generate.model_key(profile, adapter)``).
        also_read: further cache files, only read: answers found there (same key: same model,
            prompt and settings) are used and copied into ``cache``. Lets one chapter's answers
            serve another's without generating them twice.

    Identical prompts are generated once. The answers are decoded without special tokens and
    stripped of surrounding whitespace.
    """
    settings = settings or GenerationSettings()
    if cache is not None and not model_key:
        raise ConfigError(
            "model_key",
            "a cache needs a model_key naming the model; "
            "pass model_key=equilibrate.generate.model_key(profile, adapter)",
        )
    pad_id = _pad_id(tokenizer)
    stop_ids = stop_token_ids(profile, tokenizer)
    prompts = list(prompts)
    key_text = model_key or ""
    keys = [cache_key(key_text, p, settings) for p in prompts]
    responses: dict[str, str] = {}
    store = CompletionCache(cache) if cache is not None else None
    if store is not None:
        wanted = set(keys)
        responses = {k: r["response"] for k, r in store.load().items() if k in wanted}
        borrowed = []
        for path in also_read:
            for k, record in CompletionCache(path).load().items():
                if k in wanted and k not in responses:
                    responses[k] = record["response"]
                    borrowed.append(record)
        store.append(borrowed)

    todo: dict[str, Prompt] = {}
    for key, prompt in zip(keys, prompts, strict=True):
        if key not in responses and key not in todo:
            todo[key] = prompt
    started = time.perf_counter()
    new_tokens = 0
    if todo:
        todo_keys = list(todo)
        encoded = [
            encode_chat(tokenizer, todo[k], system_prompt=settings.system_prompt) for k in todo_keys
        ]
        for batch in _batches(model, encoded, settings, stop_ids, pad_id):
            records = []
            for index, ids, stopped in batch:
                key = todo_keys[index]
                text = tokenizer.decode(ids, skip_special_tokens=True).strip()
                responses[key] = text
                new_tokens += len(ids)
                records.append(
                    {
                        "key": key,
                        "model_key": key_text,
                        "prompt": todo[key],
                        "response": text,
                        "settings": asdict(settings),
                        "stopped": stopped,
                        "new_tokens": len(ids),
                    }
                )
            if store is not None:
                store.append(records)
    elapsed = time.perf_counter() - started
    logger.info(
        "generate: %d answers, %d from cache, %d generated (%d new tokens in %.1f s)%s",
        len(prompts),
        len(prompts) - sum(1 for k in keys if k in todo),
        len(todo),
        new_tokens,
        elapsed,
        f" -> {store.path}" if store is not None else "",
    )
    return [responses[k] for k in keys]
