"""How much accelerator memory a recipe needs, worked out from the model's shape alone.

:func:`plan_memory` adds up, in bytes, what sits on the GPU at the peak of a DPO step:

``weights``
    nf4: half a byte per weight of the block projections, plus the per-block quantization
    constants (one fp32 absmax per 64 weights; with double quantization one byte per 64 weights
    plus one fp32 per 256 of those bytes and an fp32 offset per tensor). Embeddings, output head
    and norms stay in ``model.weight_dtype``. Unquantized: every parameter in ``weight_dtype``.
``lora``
    the adapters, ``r * (in + out)`` per targeted projection and block, kept in fp32.
``gradients``
    one fp32 gradient per adapter parameter (the base weights are frozen).
``optimizer``
    AdamW's two moments: 8 bytes per adapter parameter, or 2 with an 8-bit optimizer.
``activations``
    what the policy's forward keeps for the backward pass. DPO runs chosen and rejected together,
    so ``T = 2 * micro_batch_size * max_length`` tokens. With gradient checkpointing each block
    keeps only its input (``T * hidden`` values); without it each block keeps every intermediate
    (see :func:`block_activation_values`).
``working layer``
    one block's full set of intermediates, rebuilt during the backward pass (checkpointing) or
    built by the reference pass, plus one dequantized projection weight (nf4).
``logits``
    trl 1.16 scores tokens through a fused head that never builds the ``T x vocab`` logits; it
    needs one ``min(T, 4096) x 32768`` tile (and, with ``fp32_lm_head``, an fp32 copy of a
    32768-row slice of the head) plus fp32 per-token statistics and the fp32 gradient of the
    final hidden states. ``MemoryPlan.unfused_logits_bytes`` records what full fp32 logits of the
    policy and the reference pass would have cost, for comparison.
``cuda overhead``
    the CUDA context and kernels (0.5 GiB) and 5 % of the rest for allocator fragmentation.

All figures are estimates of the peak on a CUDA GPU with memory-efficient attention; the GPU
check (``benchmarks/gpu_check.py``) measures the real one and records both. On a CPU the estimate
is low: trl's torch fallback for the fused head makes several tile-sized temporaries, and CPU
attention may keep its score matrices.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from equilibrate.errors import ConfigError
from equilibrate.train.recipes import Recipe
from equilibrate.train.shapes import ModelShape, get_shape, shape_from_config

GIB = 1024**3
# ``auto`` compute is planned as fp32, the larger of what it can resolve to.
DTYPE_BYTES = {"fp32": 4, "fp16": 2, "bf16": 2, "auto": 4}
NF4_BLOCK = 64  # weights per absmax constant (bitsandbytes default)
DOUBLE_QUANT_BLOCK = 256  # absmax constants per second-level fp32 constant
CUDA_CONTEXT_BYTES = GIB // 2
FRAGMENTATION = 0.05
FUSED_TOKEN_CHUNK = 4096  # trl.kernels.chunked_logprob.TOKEN_CHUNK_SIZE
FUSED_VOCAB_CHUNK = 32768  # trl.trainer.utils._CHUNKED_LOGPROB_CHUNK_SIZE
FUSED_STATS = 8  # fp32 per-token statistics kept by the fused head (max, sums, target, ...)

COMPONENTS = (
    "weights",
    "lora",
    "gradients",
    "optimizer",
    "activations",
    "working layer",
    "logits",
    "cuda overhead",
)


def nf4_bytes(numel: int, double_quant: bool) -> int:
    """Bytes of one weight tensor of ``numel`` values stored as nf4 with its constants.

    Packed values: ``ceil(numel / 2)``. Constants: ``blocks = ceil(numel / 64)`` fp32 absmax
    values (4 bytes each), or with double quantization ``blocks`` uint8 values plus
    ``ceil(blocks / 256)`` fp32 second-level constants and one fp32 offset.
    """
    packed = math.ceil(numel / 2)
    blocks = math.ceil(numel / NF4_BLOCK)
    if double_quant:
        return packed + blocks + 4 * math.ceil(blocks / DOUBLE_QUANT_BLOCK) + 4
    return packed + 4 * blocks


def weight_bytes(
    shape: ModelShape, quantization: str, weight_dtype: str, double_quant: bool
) -> int:
    """Bytes of the base model's weights."""
    dtype = DTYPE_BYTES[weight_dtype]
    if quantization == "none":
        return shape.total_params() * dtype
    per_layer = sum(nf4_bytes(i * o, double_quant) for i, o in shape.linear_shapes().values())
    rest = shape.embedding_params() + shape.norm_params()
    return shape.layers * per_layer + rest * dtype


def block_activation_values(shape: ModelShape, lora_dropout: bool) -> int:
    """Values one decoder block keeps per token for its backward pass (no checkpointing).

    Attention: the norm's input and output (2d), q (d), k and v (2 kv), q and k after the rotary
    embedding (d + kv), the attention output (d): ``5d + 3kv``. MLP: the norm's input and output
    (2d), gate, up, SiLU(gate) and the product (4f): ``2d + 4f``. With LoRA dropout each of the
    seven adapters keeps its own dropped-out input: ``6d + f`` more. (The RMSNorms' fp32 copies are
    counted separately by :func:`block_activation_bytes`.)
    """
    d, kv, f = shape.hidden, shape.kv_dim, shape.intermediate
    values = 7 * d + 3 * kv + 4 * f
    if lora_dropout:
        values += 6 * d + f
    return values


def block_activation_bytes(shape: ModelShape, compute_bytes: int, lora_dropout: bool) -> int:
    """Bytes one block keeps per token: :func:`block_activation_values` in the compute dtype plus
    the two RMSNorms' fp32 copies of their input (``2 * 4d``)."""
    return block_activation_values(shape, lora_dropout) * compute_bytes + 2 * 4 * shape.hidden


@dataclass
class MemoryPlan:
    """The estimated peak memory of one training step, by component (bytes).

    ``fits`` compares ``total_bytes`` with ``gpu_memory_gib``; when it does not fit,
    ``suggestion`` says what to change.
    """

    recipe_name: str
    shape: ModelShape
    gpu_memory_gib: float | None
    components: dict[str, int]
    tokens_per_micro_batch: int
    trainable_params: int
    unfused_logits_bytes: int
    suggestion: str = ""
    notes: list[str] = field(default_factory=list)

    @property
    def total_bytes(self) -> int:
        """Sum of all components."""
        return sum(self.components.values())

    @property
    def total_gib(self) -> float:
        """Sum of all components in GiB."""
        return self.total_bytes / GIB

    @property
    def fits(self) -> bool:
        """Whether the estimate is within the GPU's memory (True when no GPU size is given)."""
        return self.gpu_memory_gib is None or self.total_gib <= self.gpu_memory_gib

    def gib(self) -> dict[str, float]:
        """The components in GiB."""
        return {k: v / GIB for k, v in self.components.items()}

    def summary(self) -> str:
        """A printable breakdown, one component a line, then the verdict."""
        lines = [
            f"memory plan for {self.recipe_name} ({self.shape.name}, "
            f"{self.tokens_per_micro_batch} tokens per micro-batch incl. chosen+rejected)"
        ]
        for name, value in self.components.items():
            lines.append(f"  {name:<14} {value / GIB:9.3f} GiB")
        lines.append(f"  {'total':<14} {self.total_gib:9.3f} GiB")
        lines.append(
            f"  (full fp32 logits, policy + reference, would add "
            f"{self.unfused_logits_bytes / GIB:.3f} GiB; trl's fused head avoids them)"
        )
        if self.gpu_memory_gib is not None:
            verdict = "fits" if self.fits else "does NOT fit"
            lines.append(f"  {verdict} in {self.gpu_memory_gib:g} GiB")
        if self.suggestion:
            lines.append(f"  suggestion: {self.suggestion}")
        lines.extend(f"  note: {n}" for n in self.notes)
        return "\n".join(lines)


def recipe_shape(recipe: Recipe) -> ModelShape:
    """The model shape a recipe names (``model.shape``), or the one read from ``model.path``."""
    if recipe.model.shape:
        return get_shape(recipe.model.shape)
    if recipe.model.path:
        return shape_from_config(recipe.model.path, name=recipe.model.path)
    raise ConfigError(
        "model.shape",
        "set model.shape so the planner knows the model's sizes",
        source=recipe.source,
    )


def _components(
    recipe: Recipe, shape: ModelShape, micro_batch: int, max_length: int, checkpointing: bool
) -> tuple[dict[str, int], int, int]:
    model, hw, lora = recipe.model, recipe.hardware, recipe.lora
    compute = DTYPE_BYTES[hw.compute_dtype]
    on_gpu = hw.device != "cpu"
    trainable = shape.lora_params(lora.r, lora.projections())
    eight_bit = hw.optimizer in ("paged_adamw_8bit", "adamw_8bit") or (
        hw.optimizer == "auto" and on_gpu
    )
    tokens = 2 * micro_batch * max_length  # chosen and rejected in one forward
    per_token_block = block_activation_bytes(shape, compute, lora.dropout > 0)
    if checkpointing:
        activations = shape.layers * tokens * shape.hidden * compute
    else:
        activations = shape.layers * tokens * per_token_block
    working = tokens * per_token_block
    if model.quantization == "nf4":
        working += max(i * o for i, o in shape.linear_shapes().values()) * compute
    if hw.attention == "eager":  # scores and probabilities, per sequence and head
        eager = 2 * micro_batch * shape.heads * max_length**2 * compute * 2
        working += eager
        if not checkpointing:
            activations += shape.layers * eager
    tile_rows = min(tokens, FUSED_TOKEN_CHUNK)
    head_bytes = 4 if hw.fp32_lm_head else compute
    logits = tile_rows * FUSED_VOCAB_CHUNK * head_bytes
    if hw.fp32_lm_head and compute != 4:
        logits += FUSED_VOCAB_CHUNK * shape.hidden * 4  # fp32 slice of the head's weight
    logits += tokens * FUSED_STATS * 4 + tokens * shape.hidden * 4  # stats, fp32 grad of hidden
    components = {
        "weights": weight_bytes(shape, model.quantization, model.weight_dtype, model.double_quant),
        "lora": trainable * 4,
        "gradients": trainable * 4,
        "optimizer": trainable * (2 if eight_bit else 8),
        "activations": activations,
        "working layer": working,
        "logits": logits,
    }
    subtotal = sum(components.values())
    components["cuda overhead"] = (
        CUDA_CONTEXT_BYTES + int(FRAGMENTATION * subtotal) if on_gpu else 0
    )
    return components, tokens, trainable


def plan_memory(recipe: Recipe, gpu_memory_gib: float | None = None) -> MemoryPlan:
    """Estimate the peak memory of ``recipe``'s training step and say whether it fits.

    Args:
        recipe: the recipe (its model shape, quantization, LoRA, micro-batch, length, precision).
        gpu_memory_gib: the accelerator's memory; defaults to ``recipe.hardware.gpu_memory_gib``.
            ``None`` plans without a verdict.

    Returns:
        A :class:`MemoryPlan`; when the step does not fit, ``suggestion`` names the largest
        micro-batch (more accumulation, same effective batch), else the longest ``max_length``,
        that would fit.
    """
    shape = recipe_shape(recipe)
    gpu = recipe.hardware.gpu_memory_gib if gpu_memory_gib is None else gpu_memory_gib
    hp, hw = recipe.hyperparameters, recipe.hardware
    micro = hw.micro_batch_size
    components, tokens, trainable = _components(
        recipe, shape, micro, hp.max_length, hw.gradient_checkpointing
    )
    compute = DTYPE_BYTES[hw.compute_dtype]
    unfused = 2 * tokens * shape.vocab * (4 + compute)  # policy and reference: logits + fp32 copy
    plan = MemoryPlan(
        recipe_name=recipe.name,
        shape=shape,
        gpu_memory_gib=gpu,
        components=components,
        tokens_per_micro_batch=tokens,
        trainable_params=trainable,
        unfused_logits_bytes=unfused,
    )
    if hw.num_processes > 1:
        plan.notes.append("per process; FSDP/ZeRO-3 shard the weights, so this overstates them")
    if hw.device == "cpu":
        plan.notes.append(
            "a GPU estimate: on CPU trl's head (no Triton) makes several tile-sized temporaries "
            "and attention keeps its score matrices, so resident memory is higher"
        )
    if not plan.fits:
        plan.suggestion = _suggest(recipe, shape, gpu)
    return plan


def _fits(
    recipe: Recipe, shape: ModelShape, micro: int, length: int, ckpt: bool, gpu: float
) -> bool:
    components, _, _ = _components(recipe, shape, micro, length, ckpt)
    return sum(components.values()) / GIB <= gpu


def _suggest(recipe: Recipe, shape: ModelShape, gpu: float) -> str:
    """The smallest change that makes the step fit, as a sentence."""
    hp, hw = recipe.hyperparameters, recipe.hardware
    ckpt = hw.gradient_checkpointing
    per_process = hp.batch_size // hw.num_processes
    if not ckpt and _fits(recipe, shape, hw.micro_batch_size, hp.max_length, True, gpu):
        return "turn on hardware.gradient_checkpointing: true"
    ckpt = True
    prefix = "" if hw.gradient_checkpointing else "turn on hardware.gradient_checkpointing and "
    divisors = [m for m in range(hw.micro_batch_size - 1, 0, -1) if per_process % m == 0]
    for micro in divisors:
        if _fits(recipe, shape, micro, hp.max_length, ckpt, gpu):
            accumulation = per_process // micro
            return (
                f"{prefix}set hardware.micro_batch_size: {micro} (gradient accumulation "
                f"{accumulation}; the effective batch stays {hp.batch_size})"
            )
    length = (hp.max_length // 64) * 64
    while length >= 64:
        if length < hp.max_length and _fits(recipe, shape, 1, length, ckpt, gpu):
            return (
                f"{prefix}set hardware.micro_batch_size: 1 and hyperparameters.max_length: "
                f"{length} (shorter sequences truncate long answers and change the experiment)"
            )
        length -= 64
    if recipe.model.quantization == "none":
        return "load the model in 4 bits (model.quantization: nf4) or use a larger GPU"
    return "even one 64-token pair does not fit: use a larger GPU"
