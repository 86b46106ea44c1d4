"""Training recipes: one YAML file is the whole truth about a run.

A recipe has seven sections. Five describe *what* is trained and do not depend on the machine:

- ``model``: which weights (a profile name or a local folder), their shape for the planner and how
  they are stored (``quantization: nf4`` with ``double_quant``, or plain ``weight_dtype``);
- ``method``: ``dpo`` or ``ama-dpo``, ``beta`` and the AMA settings;
- ``data``: which preference pairs (a dataset name, a JSONL file or a mix YAML) and how many;
- ``lora``: rank, scaling, dropout and which projections carry adapters;
- ``hyperparameters``: learning rate, effective batch size, sequence length, steps, seed.

Two describe *how* this machine runs it, and may change without changing the result:

- ``hardware``: device, compute precision, micro-batch (the planner's lever), processes,
  gradient checkpointing, optimizer;
- ``run``: checkpoint schedule, logging, whether to merge the adapter at the end.

A recipe may start from another one with ``extends: other.yaml`` (a path relative to the file);
its sections are merged key by key. Variants are made in code with :meth:`Recipe.replace`::

    recipe = Recipe.load("recipes/cpu.yaml").replace({"method.name": "ama-dpo", "data.limit": 16})

Every error names the field (``hyperparameters.batch_size``) and the file it came from.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from equilibrate.errors import ConfigError

METHODS = ("dpo", "ama-dpo")
QUANTIZATIONS = ("none", "nf4")
DTYPES = ("fp32", "fp16", "bf16")
#: ``auto``: bf16 where the hardware computes it natively, else fp16 (CUDA) or fp32 (CPU); it is
#: resolved when a run starts (:func:`equilibrate.train.trainer.resolve_compute_dtype`), so run
#: directories and their ``recipe.yaml`` record the dtype actually used.
COMPUTE_DTYPES = (*DTYPES, "auto")
DEVICES = ("auto", "cpu", "cuda")
OPTIMIZERS = ("auto", "adamw_torch", "paged_adamw_8bit", "adamw_8bit", "paged_adamw_32bit")
SCHEDULERS = ("constant", "linear", "cosine", "constant_with_warmup")
PROJECTIONS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


def _check(condition: bool, name: str, problem: str) -> None:
    if not condition:
        raise ConfigError(name, problem)


def _positive_int(value: Any, name: str) -> None:
    _check(
        isinstance(value, int) and not isinstance(value, bool) and value > 0,
        name,
        f"expected a positive integer, got {value!r}",
    )


def _number(value: Any, name: str, low: float = float("-inf"), high: float = float("inf")) -> None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and low <= value <= high
    _check(ok, name, f"expected a number in [{low}, {high}], got {value!r}")


def _choice(value: Any, name: str, options: tuple[str, ...]) -> None:
    _check(value in options, name, f"expected one of {list(options)}, got {value!r}")


@dataclass(frozen=True)
class ModelSection:
    """Which weights to train and how they are stored.

    ``profile`` names an :mod:`equilibrate.profiles` profile (weights and tokenizer); ``path``
    a local folder with ``config.json`` and a tokenizer, which wins over the profile. ``shape``
    names a shape in :data:`equilibrate.train.shapes.SHAPES` for the planner (read from ``path``
    when omitted).
    """

    profile: str | None = None
    path: str | None = None
    shape: str | None = None
    quantization: str = "none"
    double_quant: bool = True
    weight_dtype: str = "fp32"

    def __post_init__(self) -> None:
        _check(
            self.profile is not None or self.path is not None,
            "model.profile",
            "set model.profile (e.g. 'cpu') or model.path (a local model folder)",
        )
        _choice(self.quantization, "model.quantization", QUANTIZATIONS)
        _check(isinstance(self.double_quant, bool), "model.double_quant", "expected true or false")
        _choice(self.weight_dtype, "model.weight_dtype", DTYPES)


@dataclass(frozen=True)
class MethodSection:
    """The preference-optimisation method: plain DPO or DPO with adaptive message-wise masks.

    ``ama`` holds the AMA settings without their prefix (``scorer: segment`` becomes
    ``AMADPOConfig(ama_scorer="segment")``); it must be empty for ``dpo``.
    ``sft_weight`` > 0 adds trl's ``sft`` loss (the mean negative log-likelihood of the chosen
    response's tokens) with that weight to the DPO loss; under AMA the same token weights apply.
    """

    name: str = "dpo"
    beta: float = 0.1
    sft_weight: float = 0.0
    ama: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _choice(self.name, "method.name", METHODS)
        _number(self.beta, "method.beta", 1e-6, 100.0)
        _number(self.sft_weight, "method.sft_weight", 0.0, 100.0)
        _check(isinstance(self.ama, dict), "method.ama", "expected a mapping of AMA settings")
        if self.name == "dpo" and self.ama:
            raise ConfigError("method.ama", "AMA settings given but method.name is 'dpo'")


@dataclass(frozen=True)
class DataSection:
    """Which preference pairs to train on.

    ``source`` is a dataset name from :mod:`equilibrate.data` with prompt/chosen/rejected fields
    (``hh_rlhf_harmless``, ``hh_rlhf_helpful``), a ``.jsonl`` file of preference rows in trl's
    conversational format, a folder written by ``equilibrate build-mix`` (its ``mix.jsonl``), a
    ``.yaml`` of :class:`equilibrate.fdc.MixConfig` settings (built with ``build_mix``), or
    ``synthetic`` (random words, for tests and the GPU check). ``limit`` keeps the first rows after
    a shuffle with ``seed``.
    """

    source: str = "hh_rlhf_harmless"
    limit: int | None = None
    seed: int = 0
    prompt_words: int = 16
    response_words: int = 16

    def __post_init__(self) -> None:
        _check(isinstance(self.source, str) and bool(self.source), "data.source", "expected a name")
        if self.limit is not None:
            _positive_int(self.limit, "data.limit")
        _check(isinstance(self.seed, int), "data.seed", f"expected an integer, got {self.seed!r}")
        _positive_int(self.prompt_words, "data.prompt_words")
        _positive_int(self.response_words, "data.response_words")


@dataclass(frozen=True)
class LoraSection:
    """Low-rank adapters: ``r``, ``alpha`` (scaling ``alpha / r``), dropout and target projections.

    ``target_modules: all-linear`` puts an adapter on every projection of every block (the QLoRA
    recipe); a list picks some of :data:`PROJECTIONS`.
    """

    r: int = 16
    alpha: int = 32
    dropout: float = 0.05
    target_modules: str | tuple[str, ...] = "all-linear"

    def __post_init__(self) -> None:
        _positive_int(self.r, "lora.r")
        _positive_int(self.alpha, "lora.alpha")
        _number(self.dropout, "lora.dropout", 0.0, 0.9)
        targets = self.target_modules
        if isinstance(targets, list):
            object.__setattr__(self, "target_modules", tuple(targets))
            targets = self.target_modules
        if isinstance(targets, str):
            _check(
                targets == "all-linear",
                "lora.target_modules",
                f"expected 'all-linear' or a list of {list(PROJECTIONS)}, got {targets!r}",
            )
        else:
            bad = [t for t in targets if t not in PROJECTIONS]
            _check(
                bool(targets) and not bad,
                "lora.target_modules",
                f"unknown projections {bad}; expected a non-empty list of {list(PROJECTIONS)}",
            )

    def projections(self) -> tuple[str, ...]:
        """The targeted projection names."""
        return PROJECTIONS if self.target_modules == "all-linear" else tuple(self.target_modules)


@dataclass(frozen=True)
class HyperparameterSection:
    """Settings that change what is learned. ``batch_size`` is the effective batch (pairs per
    optimizer step, over all processes and accumulation); ``max_length`` counts prompt plus
    response tokens. Give ``max_steps`` or ``num_epochs`` (``max_steps`` wins when both are set).
    """

    learning_rate: float = 2e-4
    batch_size: int = 8
    max_length: int = 192
    max_steps: int | None = None
    num_epochs: float = 1.0
    warmup_ratio: float = 0.0
    lr_scheduler: str = "linear"
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    seed: int = 0

    def __post_init__(self) -> None:
        _number(self.learning_rate, "hyperparameters.learning_rate", 1e-9, 1.0)
        _positive_int(self.batch_size, "hyperparameters.batch_size")
        _positive_int(self.max_length, "hyperparameters.max_length")
        if self.max_steps is not None:
            _positive_int(self.max_steps, "hyperparameters.max_steps")
        _number(self.num_epochs, "hyperparameters.num_epochs", 1e-6, 1e6)
        _number(self.warmup_ratio, "hyperparameters.warmup_ratio", 0.0, 1.0)
        _choice(self.lr_scheduler, "hyperparameters.lr_scheduler", SCHEDULERS)
        _number(self.weight_decay, "hyperparameters.weight_decay", 0.0, 1.0)
        _number(self.max_grad_norm, "hyperparameters.max_grad_norm", 0.0, 1e6)
        _check(isinstance(self.seed, int), "hyperparameters.seed", "expected an integer")


@dataclass(frozen=True)
class HardwareSection:
    """How this machine runs the recipe.

    ``micro_batch_size`` pairs go through the model at once on each of ``num_processes``
    processes; the rest of the effective batch is gradient accumulation. ``optimizer: auto`` is
    paged 8-bit AdamW on CUDA and plain AdamW on CPU. ``quant_storage: bf16`` stores nf4 weights
    in bf16 containers, which FSDP needs to shard a quantized model. ``fp32_lm_head`` runs the
    output projection in fp32 (trl already reduces the log-softmax in fp32; this also keeps the
    logits themselves out of fp16).
    """

    device: str = "auto"
    compute_dtype: str = "fp32"
    micro_batch_size: int = 8
    num_processes: int = 1
    gradient_checkpointing: bool = True
    optimizer: str = "auto"
    gpu_memory_gib: float | None = None
    quant_storage: str | None = None
    attention: str = "sdpa"
    fp32_lm_head: bool = False

    def __post_init__(self) -> None:
        _choice(self.device, "hardware.device", DEVICES)
        _choice(self.compute_dtype, "hardware.compute_dtype", COMPUTE_DTYPES)
        _positive_int(self.micro_batch_size, "hardware.micro_batch_size")
        _positive_int(self.num_processes, "hardware.num_processes")
        _check(
            isinstance(self.gradient_checkpointing, bool),
            "hardware.gradient_checkpointing",
            "expected true or false",
        )
        _choice(self.optimizer, "hardware.optimizer", OPTIMIZERS)
        if self.gpu_memory_gib is not None:
            _number(self.gpu_memory_gib, "hardware.gpu_memory_gib", 0.5, 10_000.0)
        if self.quant_storage is not None:
            _choice(self.quant_storage, "hardware.quant_storage", DTYPES)
        _choice(self.attention, "hardware.attention", ("sdpa", "eager", "flash_attention_2"))
        _check(
            isinstance(self.fp32_lm_head, bool), "hardware.fp32_lm_head", "expected true or false"
        )


@dataclass(frozen=True)
class RunSection:
    """Book-keeping: checkpoint every ``checkpoint_every`` optimizer steps (keeping the last
    ``keep_checkpoints``), log every ``logging_every`` steps, and optionally merge the adapter into
    a standalone model at the end."""

    checkpoint_every: int = 50
    keep_checkpoints: int = 2
    logging_every: int = 1
    merge_adapter: bool = False

    def __post_init__(self) -> None:
        _positive_int(self.checkpoint_every, "run.checkpoint_every")
        _positive_int(self.keep_checkpoints, "run.keep_checkpoints")
        _positive_int(self.logging_every, "run.logging_every")
        _check(isinstance(self.merge_adapter, bool), "run.merge_adapter", "expected true or false")


_SECTIONS: dict[str, type] = {
    "model": ModelSection,
    "method": MethodSection,
    "data": DataSection,
    "lora": LoraSection,
    "hyperparameters": HyperparameterSection,
    "hardware": HardwareSection,
    "run": RunSection,
}
# Sections that do not change what is learned: left out of the run's content hash.
_BOOKKEEPING = ("run",)
_TOP_LEVEL = ("name", "description", "extends", *_SECTIONS)


@dataclass(frozen=True)
class Recipe:
    """A validated training recipe (see the module docstring for the sections)."""

    name: str
    model: ModelSection
    method: MethodSection = field(default_factory=MethodSection)
    data: DataSection = field(default_factory=DataSection)
    lora: LoraSection = field(default_factory=LoraSection)
    hyperparameters: HyperparameterSection = field(default_factory=HyperparameterSection)
    hardware: HardwareSection = field(default_factory=HardwareSection)
    run: RunSection = field(default_factory=RunSection)
    description: str = ""
    source: str | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        hp, hw = self.hyperparameters, self.hardware
        per_step = hw.micro_batch_size * hw.num_processes
        if hp.batch_size % per_step:
            raise ConfigError(
                "hardware.micro_batch_size",
                f"batch_size {hp.batch_size} is not a multiple of micro_batch_size "
                f"{hw.micro_batch_size} x num_processes {hw.num_processes}",
                source=self.source,
            )
        if self.model.quantization == "nf4" and hw.compute_dtype == "fp32" and hw.device == "cuda":
            raise ConfigError(
                "hardware.compute_dtype",
                "nf4 on CUDA should compute in fp16 or bf16 (fp32 compute is for CPU checks)",
                source=self.source,
            )

    # ----------------------------------------------------------------------------- derived values
    @property
    def gradient_accumulation_steps(self) -> int:
        """Micro-batches accumulated per optimizer step on each process."""
        hw = self.hardware
        return self.hyperparameters.batch_size // (hw.micro_batch_size * hw.num_processes)

    # ------------------------------------------------------------------------------- conversions
    def to_dict(self) -> dict[str, Any]:
        """The recipe as plain data (tuples become lists), without ``source``."""
        out: dict[str, Any] = {"name": self.name, "description": self.description}
        for section in _SECTIONS:
            values = dataclasses.asdict(getattr(self, section))
            out[section] = {k: list(v) if isinstance(v, tuple) else v for k, v in values.items()}
        return out

    def to_yaml(self) -> str:
        """The resolved recipe as YAML (what a run directory stores)."""
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    def content_hash(self) -> str:
        """SHA-256 of everything that changes the trained adapter (all but ``name``,
        ``description`` and the ``run`` section)."""
        data = self.to_dict()
        for key in ("name", "description", *_BOOKKEEPING):
            data.pop(key, None)
        blob = json.dumps(data, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str | Path | None = None) -> Recipe:
        """Build and validate a recipe; errors name the field and ``source``."""
        src = None if source is None else str(source)
        if not isinstance(data, Mapping):
            raise ConfigError(
                "recipe", f"expected a mapping of sections, got {type(data).__name__}", src
            )
        unknown = [k for k in data if k not in _TOP_LEVEL]
        if unknown:
            raise ConfigError(
                str(unknown[0]), f"unknown section; expected some of {list(_TOP_LEVEL)}", src
            )
        if "model" not in data:
            raise ConfigError("model", "missing section (which weights to train)", src)
        name = data.get("name") or (Path(src).stem if src else "recipe")
        sections: dict[str, Any] = {}
        try:
            for section, klass in _SECTIONS.items():
                values = data.get(section) or {}
                if not isinstance(values, Mapping):
                    raise ConfigError(section, f"expected a mapping, got {values!r}")
                known = {f.name for f in dataclasses.fields(klass)}
                extra = [k for k in values if k not in known]
                if extra:
                    raise ConfigError(
                        f"{section}.{extra[0]}",
                        f"unknown setting; expected some of {sorted(known)}",
                    )
                sections[section] = klass(**values)
            return cls(
                name=str(name),
                description=str(data.get("description") or ""),
                source=src,
                **sections,
            )
        except ConfigError as err:
            raise ConfigError(err.field, err.problem, source=src) from None
        except TypeError as err:  # e.g. a value of a type no check anticipated
            raise ConfigError("recipe", str(err), source=src) from None

    @classmethod
    def load(cls, path: str | Path) -> Recipe:
        """Read a recipe YAML file (following ``extends:``) and validate it."""
        path = Path(path)
        return cls.from_dict(_read_with_extends(path, seen=()), source=path)

    def replace(self, overrides: Mapping[str, Any] | None = None, **kwargs: Any) -> Recipe:
        """A copy with some settings changed, validated again.

        Keys are dotted (``{"method.name": "ama-dpo"}``) or, as keyword arguments, joined with
        a double underscore (``method__name="ama-dpo"``). ``name`` and ``description`` may be
        replaced too.
        """
        data = self.to_dict()
        changes = dict(overrides or {})
        changes.update({k.replace("__", "."): v for k, v in kwargs.items()})
        for key, value in changes.items():
            parts = key.split(".")
            if len(parts) == 1:
                if parts[0] in _SECTIONS and isinstance(value, Mapping):
                    data[parts[0]] = _merge(data[parts[0]], value)
                    continue
                if parts[0] not in ("name", "description"):
                    raise ConfigError(key, "expected 'section.setting', 'name' or 'description'")
                data[parts[0]] = value
            elif len(parts) == 2 and parts[0] in _SECTIONS:
                data[parts[0]][parts[1]] = value
            elif len(parts) == 3 and parts[:2] == ["method", "ama"]:
                data["method"]["ama"][parts[2]] = value
            else:
                raise ConfigError(key, f"unknown setting; sections are {list(_SECTIONS)}")
        return Recipe.from_dict(data, source=self.source)


def _merge(base: Mapping[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    """Deep merge: mappings merge key by key, anything else in ``update`` replaces."""
    out = copy.deepcopy(dict(base))
    for key, value in update.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _read_with_extends(path: Path, seen: tuple[Path, ...]) -> dict[str, Any]:
    if not path.is_file():
        raise FileNotFoundError(f"recipe file not found: {path}")
    resolved = path.resolve()
    if resolved in seen:
        raise ConfigError("extends", f"recipes extend each other in a loop: {list(seen)}", path)
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise ConfigError("recipe", f"not valid YAML: {err}", path) from None
    if not isinstance(data, dict):
        raise ConfigError("recipe", "expected a mapping of sections at the top level", path)
    parent = data.pop("extends", None)
    if parent is None:
        return data
    if not isinstance(parent, str):
        raise ConfigError("extends", f"expected a relative file name, got {parent!r}", path)
    base = _read_with_extends(path.parent / parent, seen=(*seen, resolved))
    base.pop("name", None)
    base.pop("description", None)
    return _merge(base, data)


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """``["a.b=1", "c.d=x"]`` -> ``{"a.b": 1, "c.d": "x"}``; values are read as YAML scalars."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError("--set", f"expected KEY=VALUE, got {item!r}")
        out[key.strip()] = yaml.safe_load(value)
    return out


def repository_recipes(root: str | Path | None = None) -> list[Path]:
    """The recipe files shipped in the repository's ``recipes/`` folder."""
    folder = Path(root) if root else Path(__file__).resolve().parents[2] / "recipes"
    return sorted(folder.glob("*.yaml"))
