"""The evaluate and report commands: argument handling without a model; report end to end."""

from __future__ import annotations

import pytest

from equilibrate.cli import build_parser, main
from equilibrate.commands.evaluate import find_adapter, settings_from_args
from equilibrate.errors import ConfigError
from equilibrate.evaluate.intervals import proportion
from equilibrate.evaluate.results import Score, save_results


def test_evaluate_arguments_become_settings() -> None:
    args = build_parser().parse_args(
        [
            "evaluate",
            "--base",
            "--n-mc",
            "7",
            "--safety-sets",
            "--benchmarks",
            "mmlu",
            "--no-overrefusal",
            "--run-code",
            "--second-opinion",
            "on",
        ]
    )
    settings = settings_from_args(args, "cpu")
    assert settings.n_multiple_choice == 7 and settings.n_safety == 20  # cpu default kept
    assert settings.safety_sets == () and settings.helpfulness_benchmarks == ("mmlu",)
    assert not settings.overrefusal and settings.run_code and settings.second_opinion
    with pytest.raises(SystemExit):
        build_parser().parse_args(["evaluate", "--base", "--run", "x"])  # one or the other


def test_find_adapter(tmp_path) -> None:
    (tmp_path / "adapter").mkdir()
    with pytest.raises(ConfigError, match="no adapter"):
        find_adapter(tmp_path)
    (tmp_path / "adapter" / "adapter_config.json").write_text("{}")
    assert find_adapter(tmp_path) == tmp_path / "adapter"


def test_report_command_writes_files(tmp_path, capsys) -> None:
    for name, hits in (("base", 5), ("fdc", 8)):
        est = proportion(hits, 10)
        scores = [
            Score(axis, bench, metric, est.value, est.ci_low, est.ci_high, 10, None, name)
            for axis, bench, metric in (
                ("safety", "safety_avg", "mean_safe_rate"),
                ("overrefusal", "xstest_safe", "compliance"),
                ("helpfulness", "helpful_avg", "mean_accuracy"),
            )
        ]
        save_results(scores, tmp_path / name)
    out = tmp_path / "report"
    code = main(
        ["report", str(tmp_path / "base"), str(tmp_path / "fdc"), "--out", str(out), "--no-paper"]
    )
    assert code == 0
    assert (out / "balance.png").is_file() and (out / "table.md").is_file()
    assert "80.0" in capsys.readouterr().out
    assert main(["report", str(tmp_path / "missing"), "--out", str(out)]) == 2
