"""``equilibrate categorize`` and ``equilibrate build-mix`` argument handling and output."""

from __future__ import annotations

import json

import pytest

from equilibrate import cli
from equilibrate.commands import build_mix as build_mix_command
from equilibrate.commands import categorize as categorize_command
from equilibrate.errors import ConfigError
from equilibrate.fdc.categories import Categorized


class Fixed:
    unparseable = 0

    def categorize(self, prompts):
        return [Categorized("IHD" if "friend" in p else "NONE", 0.75) for p in prompts]


def test_categorize_adds_category_and_confidence(tmp_path, monkeypatch, capsys):
    src = tmp_path / "in.jsonl"
    src.write_text('{"prompt": "How do I trick my friend?", "keep": 1}\n\n{"prompt": "Hi"}\n')
    monkeypatch.setattr(categorize_command, "categorizer_for", lambda method, profile: Fixed())
    out = tmp_path / "out.jsonl"
    assert cli.main(["categorize", "--in", str(src), "--out", str(out)]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert rows == [
        {"prompt": "How do I trick my friend?", "keep": 1, "category": "IHD", "confidence": 0.75},
        {"prompt": "Hi", "category": "NONE", "confidence": 0.75},
    ]
    assert "categorized 2 prompts" in capsys.readouterr().out


def test_categorize_names_the_bad_line(tmp_path, capsys):
    src = tmp_path / "in.jsonl"
    src.write_text('{"prompt": "ok"}\n{"text": "no prompt"}\n')
    assert cli.main(["categorize", "--in", str(src), "--out", str(tmp_path / "o.jsonl")]) == 2
    assert "in.jsonl, row 2, field 'prompt'" in capsys.readouterr().err


def test_build_mix_command_is_registered_and_parses_the_ratio():
    args = cli.build_parser().parse_args(
        ["build-mix", "--safety-total", "256", "--ratio", "10:3:1", "--mode", "naive"]
    )
    assert args.func is build_mix_command.run
    assert (args.safety_total, tuple(args.ratio), args.mode) == (256, (10.0, 3.0, 1.0), "naive")
    with pytest.raises(ConfigError, match="--ratio"):
        build_mix_command._ratio("10:3")
