"""Batched generation: padding, stop tokens, order, the JSONL cache and its recovery."""

from __future__ import annotations

import json
import logging

import pytest
from helpers import GenerateCounter, llama3_tokenizer, tiny_llama, tiny_profile

from equilibrate.errors import ConfigError
from equilibrate.generate import (
    CompletionCache,
    GenerationSettings,
    adapter_hash,
    cache_key,
    cut_at_stop,
    generate,
    generate_token_ids,
    model_key,
)
from equilibrate.profiles import encode_chat, get_profile

# Prompts of clearly different lengths, so a batch of them needs left padding.
PROMPTS = [
    "Hi",
    "How do I kill a Python process that hangs?",
    "Name a colour.",
    "Explain, in two sentences, why the sky looks blue during the day but red at sunset.",
    "What is 2 + 2?",
    "Tell me about tea.",
]


@pytest.fixture(scope="module")
def tokenizer():
    return llama3_tokenizer()


@pytest.fixture(scope="module")
def model(tokenizer):
    return tiny_llama(tokenizer)


# --- Settings and keys --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"max_new_tokens": 0}, "max_new_tokens"),
        ({"batch_size": -1}, "batch_size"),
        ({"batch_size": True}, "batch_size"),
        ({"do_sample": 1}, "do_sample"),
        ({"temperature": 0.0}, "temperature"),
        ({"top_p": 1.5}, "top_p"),
        ({"seed": -3}, "seed"),
        ({"system_prompt": 7}, "system_prompt"),
    ],
)
def test_settings_reject_bad_values(changes, field):
    with pytest.raises(ConfigError) as info:
        GenerationSettings(**changes)
    assert info.value.field == field


def test_cache_key_ignores_what_does_not_change_answers():
    greedy = GenerationSettings(max_new_tokens=32)
    key = cache_key("m", "hi", greedy)
    assert len(key) == 64
    assert key == cache_key("m", "hi", GenerationSettings(max_new_tokens=32, batch_size=1))
    assert key == cache_key("m", "hi", GenerationSettings(max_new_tokens=32, temperature=0.5))
    assert key != cache_key("m", "hi", GenerationSettings(max_new_tokens=33))
    assert key != cache_key("m2", "hi", greedy)
    assert key != cache_key("m", "hi ", greedy)
    assert key != cache_key("m", "hi", GenerationSettings(max_new_tokens=32, system_prompt=""))
    sampled = GenerationSettings(max_new_tokens=32, do_sample=True)
    assert cache_key("m", "hi", sampled) != cache_key(
        "m", "hi", GenerationSettings(max_new_tokens=32, do_sample=True, seed=1)
    )


def test_model_key_tracks_the_adapter_content(tmp_path):
    profile = get_profile("cpu")
    base = model_key(profile)
    assert base.startswith("cpu:") and len(base) == len("cpu:") + 16
    assert base == model_key(profile)
    (tmp_path / "adapter_config.json").write_text('{"r": 8}')
    (tmp_path / "adapter_model.safetensors").write_bytes(b"\x00" * 64)
    first = model_key(profile, tmp_path)
    assert first.startswith(base + "+adapter:")
    (tmp_path / "README.md").write_text("notes")  # not part of the model
    assert model_key(profile, tmp_path) == first
    (tmp_path / "adapter_model.safetensors").write_bytes(b"\x01" + b"\x00" * 63)
    assert model_key(profile, tmp_path) != first
    assert model_key(get_profile("llama3-8b")).startswith("llama3-8b:")


def test_adapter_hash_needs_adapter_files(tmp_path):
    with pytest.raises(ConfigError, match="no adapter_"):
        adapter_hash(tmp_path)


def test_cut_at_stop():
    assert cut_at_stop([5, 6, 7], [9]) == ([5, 6, 7], False)
    assert cut_at_stop([5, 9, 7, 9], [9]) == ([5], True)
    assert cut_at_stop([8, 5, 9], [9, 8]) == ([], True)
    assert cut_at_stop([], [9]) == ([], False)


# --- Generation on a tiny model -----------------------------------------------------------------


def test_batched_greedy_equals_unbatched_token_for_token(model, tokenizer):
    lengths = {len(encode_chat(tokenizer, p)) for p in PROMPTS}
    assert len(lengths) == len(PROMPTS)  # every batch really is left-padded
    profile = tiny_profile()
    one = generate_token_ids(
        model,
        tokenizer,
        PROMPTS,
        GenerationSettings(max_new_tokens=8, batch_size=1),
        profile=profile,
    )
    many = generate_token_ids(
        model,
        tokenizer,
        PROMPTS,
        GenerationSettings(max_new_tokens=8, batch_size=4),
        profile=profile,
    )
    assert many == one
    assert all(len(ids) == 8 for ids in one)  # the random model never emits a stop token here
    assert len({tuple(ids) for ids in one}) > 1  # the answers depend on the prompt


def test_stop_token_ends_the_answer_and_is_removed(model, tokenizer):
    settings = GenerationSettings(max_new_tokens=8, batch_size=3)
    free = generate_token_ids(model, tokenizer, PROMPTS[:3], settings, profile=tiny_profile())
    # Declare the third token of the second answer a stop token (one that appears in neither
    # earlier position of that answer), then generate again.
    target = free[1]
    stop = next(t for t in target[2:] if t not in target[:2])
    cut = target.index(stop)
    profile = tiny_profile(stop_tokens=(tokenizer.convert_ids_to_tokens(stop),))
    stopped = generate_token_ids(model, tokenizer, PROMPTS[:3], settings, profile=profile)
    assert stopped[1] == target[:cut]
    for before, after in zip(free, stopped, strict=True):
        expected, _ = cut_at_stop(before, [stop])
        assert after == expected
    texts = generate(model, tokenizer, PROMPTS[:3], settings, profile=profile)
    assert texts[1] == tokenizer.decode(target[:cut], skip_special_tokens=True).strip()


def test_generate_returns_answers_in_input_order(model, tokenizer):
    settings = GenerationSettings(max_new_tokens=5, batch_size=4)
    profile = tiny_profile()
    together = generate(model, tokenizer, PROMPTS, settings, profile=profile)
    alone = [generate(model, tokenizer, [p], settings, profile=profile)[0] for p in PROMPTS]
    assert together == alone


def test_identical_prompts_are_generated_once(model, tokenizer):
    counter = GenerateCounter(model)
    try:
        answers = generate(
            model,
            tokenizer,
            ["Hi", "Hi", "Yo", "Hi"],
            GenerationSettings(max_new_tokens=3),
            profile=tiny_profile(),
        )
    finally:
        counter.restore()
    assert counter.rows == 2
    assert answers[0] == answers[1] == answers[3]


# --- Cache ----------------------------------------------------------------------------------


def test_cache_resumes_and_never_regenerates(model, tokenizer, tmp_path):
    cache = tmp_path / "answers.jsonl"
    settings = GenerationSettings(max_new_tokens=6, batch_size=2)
    profile = tiny_profile()
    kwargs = {"profile": profile, "cache": cache, "model_key": "tiny"}
    reference = generate(model, tokenizer, PROMPTS, settings, profile=profile)

    counter = GenerateCounter(model)
    try:
        # First run, "interrupted" after half of the prompts.
        half = generate(model, tokenizer, PROMPTS[:3], settings, **kwargs)
        assert counter.rows == 3 and half == reference[:3]
        assert len(cache.read_text().splitlines()) == 3
        # Resumed run over everything: only the three missing prompts reach the model.
        full = generate(model, tokenizer, PROMPTS, settings, **kwargs)
        assert counter.rows == 6 and full == reference
        # A third run is served from the file alone.
        again = generate(model, tokenizer, list(reversed(PROMPTS)), settings, **kwargs)
        assert counter.rows == 6 and again == list(reversed(reference))
    finally:
        counter.restore()

    records = [json.loads(line) for line in cache.read_text().splitlines()]
    assert len(records) == 6
    first = records[0]
    assert set(first) == {
        "key",
        "model_key",
        "prompt",
        "response",
        "settings",
        "stopped",
        "new_tokens",
    }
    assert first["key"] == cache_key("tiny", first["prompt"], settings)
    assert first["settings"]["max_new_tokens"] == 6 and first["model_key"] == "tiny"
    assert first["stopped"] is False and first["new_tokens"] == 6


def test_also_read_borrows_answers_from_another_cache(model, tokenizer, tmp_path):
    settings = GenerationSettings(max_new_tokens=6, batch_size=2)
    profile = tiny_profile()
    other, mine = tmp_path / "chapter1.jsonl", tmp_path / "eval.jsonl"
    first = generate(model, tokenizer, PROMPTS[:4], settings, profile=profile, cache=other,
                     model_key="tiny")
    before = other.read_text()
    counter = GenerateCounter(model)
    try:
        out = generate(model, tokenizer, PROMPTS, settings, profile=profile, cache=mine,
                       model_key="tiny", also_read=[other, tmp_path / "missing.jsonl"])
        assert counter.rows == 2  # only the two prompts the other cache lacks
        assert out[:4] == first
        # Another model key borrows nothing.
        generate(model, tokenizer, PROMPTS[:4], settings, profile=profile,
                 cache=tmp_path / "b.jsonl", model_key="tiny-2", also_read=[other])
        assert counter.rows == 6
    finally:
        counter.restore()
    assert other.read_text() == before  # only read
    assert len(mine.read_text().splitlines()) == len(PROMPTS)  # borrowed answers copied in


def test_cache_distinguishes_models_and_settings(model, tokenizer, tmp_path):
    cache = tmp_path / "answers.jsonl"
    profile = tiny_profile()
    counter = GenerateCounter(model)
    try:
        generate(
            model,
            tokenizer,
            ["Hi"],
            GenerationSettings(max_new_tokens=3),
            profile=profile,
            cache=cache,
            model_key="a",
        )
        generate(
            model,
            tokenizer,
            ["Hi"],
            GenerationSettings(max_new_tokens=3),
            profile=profile,
            cache=cache,
            model_key="b",
        )
        generate(
            model,
            tokenizer,
            ["Hi"],
            GenerationSettings(max_new_tokens=4),
            profile=profile,
            cache=cache,
            model_key="a",
        )
    finally:
        counter.restore()
    assert counter.rows == 3


def test_corrupt_cache_lines_are_reported_and_skipped(model, tokenizer, tmp_path, caplog):
    cache = tmp_path / "answers.jsonl"
    settings = GenerationSettings(max_new_tokens=4, batch_size=8)
    kwargs = {"profile": tiny_profile(), "cache": cache, "model_key": "tiny"}
    reference = generate(model, tokenizer, PROMPTS[:4], settings, **kwargs)
    lines = cache.read_text().splitlines()
    broken_prompt = json.loads(lines[1])["prompt"]
    # Line 2 is damaged, a line without a response is added, and a killed run left half a line.
    lines[1] = lines[1][:20]
    lines.append('{"key": "abc"}')
    cache.write_text("\n".join(lines) + "\n" + '{"key": "half-writ')

    caplog.set_level(logging.WARNING, logger="equilibrate.generate")
    counter = GenerateCounter(model)
    try:
        answers = generate(model, tokenizer, PROMPTS[:4], settings, **kwargs)
    finally:
        counter.restore()
    assert answers == reference
    assert counter.rows == 1  # only the prompt whose line was damaged
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any(f"{cache}, line 2: not valid JSON" in w for w in warnings)
    assert any(f"{cache}, line 5: no string field 'response'" in w for w in warnings)
    assert any(f"{cache}, line 6: not valid JSON" in w for w in warnings)
    assert len(warnings) == 3

    store = CompletionCache(cache)
    records = store.load()
    assert store.skipped_lines == [2, 5, 6]
    assert len(records) == 4
    # The regenerated answer went onto its own line, after the half-written one.
    last = cache.read_text().splitlines()[-1]
    assert json.loads(last)["prompt"] == broken_prompt


def test_cache_without_model_key_is_refused(model, tokenizer, tmp_path):
    with pytest.raises(ConfigError) as info:
        generate(model, tokenizer, ["Hi"], profile=tiny_profile(), cache=tmp_path / "c.jsonl")
    assert info.value.field == "model_key"


def test_tokenizer_without_padding_is_refused(model, tokenizer):
    pad = tokenizer.pad_token
    counter = GenerateCounter(model)
    tokenizer.pad_token = None
    try:
        with pytest.raises(ConfigError, match="no padding token"):
            generate(
                model,
                tokenizer,
                ["Hi"],
                GenerationSettings(max_new_tokens=2),
                profile=tiny_profile(),
            )
    finally:
        tokenizer.pad_token = pad  # the tokenizer is shared by the other tests
        counter.restore()
    assert counter.calls == 0  # refused before any work
    assert tokenizer.pad_token_id is not None


def test_sampling_is_seeded(model, tokenizer):
    profile = tiny_profile()
    settings = GenerationSettings(max_new_tokens=6, do_sample=True, temperature=1.5, seed=3)
    first = generate_token_ids(model, tokenizer, PROMPTS[:2], settings, profile=profile)
    second = generate_token_ids(model, tokenizer, PROMPTS[:2], settings, profile=profile)
    other = generate_token_ids(
        model,
        tokenizer,
        PROMPTS[:2],
        GenerationSettings(max_new_tokens=6, do_sample=True, temperature=1.5, seed=4),
        profile=profile,
    )
    assert first == second
    assert first != other
