"""From a recipe to a ready trl trainer: the model, the adapters and the training arguments.

QLoRA, done the way the memory planner assumes:

- the base weights load in nf4 (double quantization optional) with the recipe's compute dtype,
  or unquantized in ``model.weight_dtype``; they stay frozen;
- LoRA adapters go on every linear projection of every block (``target_modules: all-linear``);
- the reference model is the policy with its adapters switched off: trl does this whenever the
  policy is a PEFT model and no ``ref_model`` is passed, so no second copy of the weights exists;
- gradient checkpointing is non-reentrant, and trl turns on input gradients for PEFT models so
  that the checkpointed blocks pass gradients to the adapters;
- the optimizer is paged 8-bit AdamW on CUDA, plain AdamW on CPU;
- adapters stay in fp32: trl casts the adapters of a quantized model to bf16, which a T4 cannot
  compute in and whose rounding swallows small updates; :class:`QLoRAMixin` casts them back;
- log-probabilities: trl 1.16 scores tokens with a fused head whose log-softmax statistics are
  fp32, but whose logit tiles are in the autocast dtype. With ``hardware.fp32_lm_head`` the
  projection itself runs in fp32 too (:class:`QLoRAMixin` re-installs the head with
  ``cast_lm_head_to_fp32=True``), so an fp16 run keeps full-precision logits.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from equilibrate.errors import ConfigError
from equilibrate.progress import progress_enabled
from equilibrate.train.recipes import Recipe

logger = logging.getLogger(__name__)

#: Where :func:`cpu_has_native_bf16` reads the CPU's flags (Linux).
CPUINFO = Path("/proc/cpuinfo")

AMA_SCORING_KEYS = ("scorer",)  # method.ama keys used to score data, not AMADPOConfig fields


def torch_dtype(name: str):
    """``fp32``/``fp16``/``bf16`` as a torch dtype."""
    import torch

    return {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[name]


def resolve_device(recipe: Recipe) -> str:
    """``cpu`` or ``cuda`` for this machine; :class:`ConfigError` when the recipe needs CUDA."""
    import torch

    hw = recipe.hardware
    device = hw.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise ConfigError(
            "hardware.device",
            f"recipe {recipe.name!r} needs a CUDA GPU and none is visible; use recipes/cpu.yaml",
            source=recipe.source,
        )
    if device == "cpu" and hw.compute_dtype == "fp16":
        raise ConfigError(
            "hardware.compute_dtype",
            "fp16 compute runs on CUDA only; on CPU use fp32, bf16 or auto",
            source=recipe.source,
        )
    if device == "cpu" and hw.compute_dtype == "bf16" and not cpu_has_native_bf16():
        raise ConfigError(
            "hardware.compute_dtype",
            "bf16 compute on this CPU would be emulated (slower than fp32): it lacks the "
            "AVX512-BF16 and AMX-BF16 instructions; use fp32 or auto",
            source=recipe.source,
        )
    return device


def cpu_has_native_bf16() -> bool:
    """Whether this CPU multiplies bf16 matrices natively (AVX512-BF16 or AMX-BF16, read from
    ``/proc/cpuinfo``; ``False`` where that file does not exist)."""
    try:
        text = CPUINFO.read_text(errors="replace")
    except OSError:
        return False
    for line in text.splitlines():
        if line.startswith("flags"):
            flags = set(line.split(":", 1)[-1].split())
            return bool(flags & {"avx512_bf16", "amx_bf16"})
    return False


def resolve_compute_dtype(recipe: Recipe) -> Recipe:
    """``recipe`` with ``hardware.compute_dtype: auto`` replaced by what this machine runs: bf16
    where native (on CPU: AVX512-BF16/AMX; ``benchmarks/cpu_compute_dtype.py`` measures the gain
    over fp32), otherwise fp16 on CUDA and fp32 on CPU. Other recipes come back as
    they are."""
    if recipe.hardware.compute_dtype != "auto":
        return recipe
    device = resolve_device(recipe)
    if device == "cuda":
        import torch

        dtype = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    else:
        dtype = "bf16" if cpu_has_native_bf16() else "fp32"
    return recipe.replace({"hardware.compute_dtype": dtype})


def local_rank() -> int:
    """This process's rank on its machine (0 without a launcher)."""
    return int(os.environ.get("LOCAL_RANK", "0"))


def world_size() -> int:
    """Processes in this launch (1 without a launcher)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def uses_fsdp() -> bool:
    """Whether ``accelerate launch`` started this process with FSDP."""
    return os.environ.get("ACCELERATE_USE_FSDP", "false").lower() == "true"


def weights_folder(recipe: Recipe) -> str:
    """Where the recipe's weights are: ``model.path``, else the profile's local folder or Hub id."""
    if recipe.model.path:
        return str(Path(recipe.model.path).expanduser())
    from equilibrate.profiles import get_profile, model_path

    return str(model_path(get_profile(recipe.model.profile)))


def load_tokenizer(recipe: Recipe):
    """The tokenizer: the profile's (template and padding set) or the one in ``model.path``."""
    if recipe.model.path or not recipe.model.profile:
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(weights_folder(recipe))
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        return tokenizer
    from equilibrate.profiles import get_profile
    from equilibrate.profiles import load_tokenizer as profile_tokenizer

    return profile_tokenizer(get_profile(recipe.model.profile))


def load_base_model(recipe: Recipe, device: str):
    """The frozen base model: nf4 with the recipe's constants and compute dtype, or plain."""
    from transformers import AutoModelForCausalLM

    model_s, hw = recipe.model, recipe.hardware
    kwargs: dict[str, Any] = {
        "dtype": torch_dtype(model_s.weight_dtype),
        "attn_implementation": hw.attention,
    }
    if model_s.quantization == "nf4":
        import torch
        from transformers import BitsAndBytesConfig

        storage = torch_dtype(hw.quant_storage) if hw.quant_storage else torch.uint8
        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_use_double_quant=model_s.double_quant,
            bnb_4bit_compute_dtype=torch_dtype(hw.compute_dtype),
            bnb_4bit_quant_storage=storage,
        )
        if device == "cuda" and not uses_fsdp():
            kwargs["device_map"] = {"": local_rank()}
        elif device == "cpu":
            kwargs["device_map"] = {"": "cpu"}
    model = AutoModelForCausalLM.from_pretrained(weights_folder(recipe), **kwargs)
    model.config.use_cache = False
    return model


def lora_config(recipe: Recipe):
    """``peft.LoraConfig`` for the recipe's ``lora`` section."""
    from peft import LoraConfig

    lora = recipe.lora
    targets = lora.target_modules
    return LoraConfig(
        r=lora.r,
        lora_alpha=lora.alpha,
        lora_dropout=lora.dropout,
        target_modules="all-linear" if targets == "all-linear" else list(targets),
        bias="none",
        task_type="CAUSAL_LM",
    )


def optimizer_name(recipe: Recipe, device: str) -> str:
    """The ``transformers`` optimizer name; ``auto`` is paged 8-bit AdamW on CUDA."""
    name = recipe.hardware.optimizer
    if name == "auto":
        return "paged_adamw_8bit" if device == "cuda" else "adamw_torch"
    if device == "cpu" and ("8bit" in name or "paged" in name):
        raise ConfigError(
            "hardware.optimizer", f"{name} needs CUDA; use adamw_torch on CPU", source=recipe.source
        )
    return name


def _report_to() -> list[str]:
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        return []
    return ["tensorboard"]


def training_arguments(recipe: Recipe, output_dir: Path, device: str):
    """A ``DPOConfig`` (or ``AMADPOConfig`` for ``ama-dpo``) for the recipe."""
    hp, hw, run, method = recipe.hyperparameters, recipe.hardware, recipe.run, recipe.method
    warmup: float | int = hp.warmup_ratio
    if hp.max_steps is not None:
        warmup = round(hp.warmup_ratio * hp.max_steps)
    kwargs: dict[str, Any] = dict(
        output_dir=str(output_dir),
        per_device_train_batch_size=hw.micro_batch_size,
        gradient_accumulation_steps=recipe.gradient_accumulation_steps,
        learning_rate=hp.learning_rate,
        lr_scheduler_type=hp.lr_scheduler,
        warmup_steps=warmup,
        weight_decay=hp.weight_decay,
        max_grad_norm=hp.max_grad_norm,
        max_steps=hp.max_steps if hp.max_steps is not None else -1,
        num_train_epochs=hp.num_epochs,
        seed=hp.seed,
        data_seed=hp.seed,
        beta=method.beta,
        max_length=hp.max_length,
        bf16=hw.compute_dtype == "bf16",  # on CPU: bf16 autocast over fp32 weights
        fp16=device == "cuda" and hw.compute_dtype == "fp16",
        use_cpu=device == "cpu",
        # transformers 5 names gradient checkpointing "activation checkpointing"
        activation_checkpointing=hw.gradient_checkpointing,
        activation_checkpointing_kwargs={"use_reentrant": False},
        optim=optimizer_name(recipe, device),
        save_strategy="steps",
        save_steps=run.checkpoint_every,
        save_total_limit=run.keep_checkpoints,
        logging_steps=run.logging_every,
        report_to=_report_to(),
        disable_tqdm=not progress_enabled(),
        dataloader_num_workers=0,
    )
    if method.sft_weight > 0:
        kwargs.update(loss_type=["sigmoid", "sft"], loss_weights=[1.0, float(method.sft_weight)])
    if method.name == "ama-dpo":
        from equilibrate.ama import AMADPOConfig

        ama = {f"ama_{k}": v for k, v in method.ama.items() if k not in AMA_SCORING_KEYS}
        try:
            return AMADPOConfig(**kwargs, **ama)
        except TypeError as err:
            raise ConfigError("method.ama", f"{err}", source=recipe.source) from None
        except ConfigError as err:
            raise ConfigError(
                f"method.ama.{err.field.removeprefix('ama_')}", err.problem, source=recipe.source
            ) from None
    from trl import DPOConfig

    return DPOConfig(**kwargs)


class QLoRAMixin:
    """Put in front of a trl DPO trainer class: fp32 adapters and, optionally, an fp32 LM head.

    Takes one extra keyword, ``fp32_lm_head``. Everything else goes to the trainer.
    """

    def __init__(self, *args: Any, fp32_lm_head: bool = False, **kwargs: Any) -> None:
        import torch

        super().__init__(*args, **kwargs)
        recast = 0
        for param in self.model.parameters():
            if param.requires_grad and param.dtype != torch.float32:
                param.data = param.data.float()
                recast += 1
        if recast:
            logger.info("kept %d adapter tensors in fp32 (trl had cast them to bf16)", recast)
        if fp32_lm_head:
            self._install_fp32_lm_head()

    def _install_fp32_lm_head(self) -> None:
        from peft import PeftModel
        from trl.trainer.utils import add_fused_lm_head

        model = self.model
        base = model.get_base_model() if isinstance(model, PeftModel) else model
        outputs = ("log_probs", "entropy", "mean_logits", "is_top1")
        if getattr(self, "use_weighting", False):
            outputs += ("log_sum_sq_probs",)
        add_fused_lm_head(base, cast_lm_head_to_fp32=True, outputs=outputs)
        logger.info("output projection runs in fp32")


def trainer_class(method: str) -> type:
    """The trainer class for ``dpo`` or ``ama-dpo``, with :class:`QLoRAMixin` in front."""
    if method == "ama-dpo":
        from equilibrate.ama import AMADPOTrainer as Base
    else:
        from trl import DPOTrainer as Base
    return type(f"QLoRA{Base.__name__}", (QLoRAMixin, Base), {})


def build_trainer(
    recipe: Recipe, train_dataset, output_dir: Path, *, callbacks: list | None = None
):
    """Load the model and tokenizer and return the configured trainer (not yet trained)."""
    from transformers import set_seed

    if not progress_enabled():  # also the loading and tokenizing bars of transformers/datasets
        import datasets
        import transformers

        datasets.disable_progress_bars()
        transformers.utils.logging.disable_progress_bar()
    recipe = resolve_compute_dtype(recipe)
    device = resolve_device(recipe)
    world = world_size()
    if world != recipe.hardware.num_processes:
        raise ConfigError(
            "hardware.num_processes",
            f"the recipe plans for {recipe.hardware.num_processes} process(es) but this launch "
            f"started {world}; set --set hardware.num_processes={world} (the effective batch "
            "must stay divisible by micro_batch_size x num_processes)",
            source=recipe.source,
        )
    args = training_arguments(recipe, output_dir, device)
    tokenizer = load_tokenizer(recipe)
    set_seed(recipe.hyperparameters.seed)  # trl wraps the model in LoRA before Trainer seeds
    model = load_base_model(recipe, device)
    klass = trainer_class(recipe.method.name)
    trainer = klass(
        model=model,
        args=args,
        train_dataset=train_dataset,
        processing_class=tokenizer,
        peft_config=lora_config(recipe),
        callbacks=callbacks or [],
        fp32_lm_head=recipe.hardware.fp32_lm_head,
    )
    if not progress_enabled():  # the printer echoes every log dict; metrics.csv keeps them
        from transformers.trainer_callback import PrinterCallback

        trainer.remove_callback(PrinterCallback)
    return trainer
