"""The shapes of the models this library trains, as data: enough to plan memory without weights.

A :class:`ModelShape` holds the handful of numbers that fix every tensor size of a Llama-style
decoder (hidden size, layers, attention and key-value heads, MLP width, vocabulary). The memory
planner works from these alone, and :func:`llama_config` turns a shape into a
``transformers.LlamaConfig`` so that a randomly initialised model of exactly that shape can be
built without downloading anything (the GPU check does this for Llama-3-8B).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from equilibrate.errors import ConfigError


@dataclass(frozen=True)
class ModelShape:
    """The sizes of a Llama-style decoder-only transformer.

    Attributes:
        name: short key, e.g. ``"llama-3-8b"``.
        hidden: width of the residual stream ``d``.
        layers: number of decoder blocks.
        heads: attention (query) heads; head size is ``hidden // heads``.
        kv_heads: key-value heads (grouped-query attention when fewer than ``heads``).
        intermediate: width of the gated MLP.
        vocab: vocabulary size (rows of the embedding and of the output head).
        tied_embeddings: whether the output head shares the embedding matrix.
        rope_theta: rotary base (only used to build a config).
        max_positions: longest sequence the model was trained for.
    """

    name: str
    hidden: int
    layers: int
    heads: int
    kv_heads: int
    intermediate: int
    vocab: int
    tied_embeddings: bool = False
    rope_theta: float = 10000.0
    max_positions: int = 8192

    def __post_init__(self) -> None:
        for field in ("hidden", "layers", "heads", "kv_heads", "intermediate", "vocab"):
            value = getattr(self, field)
            if not isinstance(value, int) or value <= 0:
                raise ConfigError(field, f"expected a positive integer, got {value!r}")
        if self.hidden % self.heads:
            raise ConfigError(
                "heads", f"hidden size {self.hidden} is not divisible by {self.heads}"
            )
        if self.heads % self.kv_heads:
            raise ConfigError(
                "kv_heads", f"{self.heads} heads are not a multiple of {self.kv_heads}"
            )

    @property
    def head_dim(self) -> int:
        """Size of one attention head."""
        return self.hidden // self.heads

    @property
    def kv_dim(self) -> int:
        """Width of the key (and of the value) projection output."""
        return self.kv_heads * self.head_dim

    def linear_shapes(self) -> dict[str, tuple[int, int]]:
        """``(in_features, out_features)`` of each linear projection in one decoder block."""
        d, kv, f = self.hidden, self.kv_dim, self.intermediate
        return {
            "q_proj": (d, d),
            "k_proj": (d, kv),
            "v_proj": (d, kv),
            "o_proj": (d, d),
            "gate_proj": (d, f),
            "up_proj": (d, f),
            "down_proj": (f, d),
        }

    def linear_params_per_layer(self) -> int:
        """Weights in the seven projections of one block (no biases in Llama)."""
        return sum(i * o for i, o in self.linear_shapes().values())

    def linear_params(self) -> int:
        """Weights in all block projections: the part 4-bit quantization shrinks."""
        return self.layers * self.linear_params_per_layer()

    def embedding_params(self) -> int:
        """Input embedding plus output head (counted once when tied); kept in 16/32-bit."""
        return self.vocab * self.hidden * (1 if self.tied_embeddings else 2)

    def norm_params(self) -> int:
        """RMSNorm weights: two per block plus the final norm."""
        return (2 * self.layers + 1) * self.hidden

    def total_params(self) -> int:
        """All parameters."""
        return self.linear_params() + self.embedding_params() + self.norm_params()

    def lora_params(self, rank: int, targets: tuple[str, ...] | None = None) -> int:
        """Trainable LoRA parameters: ``rank * (in + out)`` per targeted projection and block."""
        shapes = self.linear_shapes()
        names = tuple(shapes) if targets is None else targets
        unknown = [n for n in names if n not in shapes]
        if unknown:
            raise ConfigError(
                "lora.target_modules", f"unknown projections {unknown}; known: {list(shapes)}"
            )
        return self.layers * sum(rank * (shapes[n][0] + shapes[n][1]) for n in names)


# Published shapes (from each model's config.json on the Hugging Face Hub).
SHAPES: dict[str, ModelShape] = {
    "llama-3-8b": ModelShape(
        name="llama-3-8b",
        hidden=4096,
        layers=32,
        heads=32,
        kv_heads=8,
        intermediate=14336,
        vocab=128256,
        tied_embeddings=False,
        rope_theta=500000.0,
        max_positions=8192,
    ),
    "smollm2-135m": ModelShape(
        name="smollm2-135m",
        hidden=576,
        layers=30,
        heads=9,
        kv_heads=3,
        intermediate=1536,
        vocab=49152,
        tied_embeddings=True,
        rope_theta=100000.0,
        max_positions=8192,
    ),
    # A toy shape for tests and the CPU dry run of the GPU check.
    "tiny-llama": ModelShape(
        name="tiny-llama",
        hidden=32,
        layers=2,
        heads=4,
        kv_heads=2,
        intermediate=64,
        vocab=512,
        tied_embeddings=False,
        rope_theta=10000.0,
        max_positions=512,
    ),
}


def get_shape(name: str) -> ModelShape:
    """The shipped shape called ``name``; :class:`ConfigError` listing the known names otherwise."""
    try:
        return SHAPES[name]
    except KeyError:
        raise ConfigError(
            "model.shape", f"unknown shape {name!r}; known: {sorted(SHAPES)}"
        ) from None


def shape_from_config(config: dict[str, Any] | str | Path, name: str = "custom") -> ModelShape:
    """Read a shape from a Hugging Face ``config.json`` (a dict, or the file, or its folder)."""
    if not isinstance(config, dict):
        path = Path(config)
        if path.is_dir():
            path = path / "config.json"
        config = json.loads(path.read_text())
    heads = int(config["num_attention_heads"])
    return ModelShape(
        name=name,
        hidden=int(config["hidden_size"]),
        layers=int(config["num_hidden_layers"]),
        heads=heads,
        kv_heads=int(config.get("num_key_value_heads") or heads),
        intermediate=int(config["intermediate_size"]),
        vocab=int(config["vocab_size"]),
        tied_embeddings=bool(config.get("tie_word_embeddings", False)),
        rope_theta=float(config.get("rope_theta", 10000.0) or 10000.0),
        max_positions=int(config.get("max_position_embeddings", 2048)),
    )


def llama_config(shape: ModelShape, **overrides: Any):
    """A ``transformers.LlamaConfig`` with exactly ``shape``'s sizes (for random initialisation)."""
    from transformers import LlamaConfig

    kwargs: dict[str, Any] = dict(
        hidden_size=shape.hidden,
        num_hidden_layers=shape.layers,
        num_attention_heads=shape.heads,
        num_key_value_heads=shape.kv_heads,
        intermediate_size=shape.intermediate,
        vocab_size=shape.vocab,
        tie_word_embeddings=shape.tied_embeddings,
        max_position_embeddings=shape.max_positions,
        rope_theta=shape.rope_theta,
        bos_token_id=1,
        eos_token_id=2,
        pad_token_id=0,
    )
    kwargs.update(overrides)
    return LlamaConfig(**kwargs)


def shape_dict(shape: ModelShape) -> dict[str, Any]:
    """The shape as a plain dict (for JSON reports)."""
    return asdict(shape)
