"""Results stored, loaded back (and rejected when malformed), rendered; no model anywhere."""

from __future__ import annotations

import json
import math

import pytest
from matplotlib.figure import Figure

from equilibrate.errors import DataFormatError
from equilibrate.evaluate.intervals import proportion
from equilibrate.evaluate.report import (
    paper_table,
    plot_balance,
    results_table,
    side_by_side,
    write_report,
)
from equilibrate.evaluate.results import Score, load_results, save_results


def score(
    model: str,
    axis: str,
    benchmark: str,
    metric: str,
    hits: int,
    n: int,
    judge: float | None = None,
) -> Score:
    est = proportion(hits, n)
    return Score(axis, benchmark, metric, est.value, est.ci_low, est.ci_high, n, judge, model)


def model_scores(model: str, safe: int, comply: int, mmlu: int) -> list[Score]:
    return [
        score(model, "safety", "harmbench", "safe_rate", safe, 10, 0.061),
        score(model, "safety", "harmbench", "full_refusal", safe, 10, 0.061),
        score(model, "safety", "safety_avg", "mean_safe_rate", safe, 10, 0.061),
        score(model, "overrefusal", "xstest_safe", "compliance", comply, 10, 0.061),
        score(model, "helpfulness", "mmlu", "accuracy", mmlu, 10),
        score(model, "helpfulness", "mmlu", "accuracy_sum", mmlu, 10),
        score(model, "helpfulness", "helpful_avg", "mean_accuracy", mmlu, 10),
    ]


@pytest.fixture
def two_runs(tmp_path):
    runs = []
    for name, numbers in (("base", (7, 9, 5)), ("fdc_adpo", (9, 8, 6))):
        run = tmp_path / name
        save_results(model_scores(name, *numbers), run)
        runs.append(run)
    return runs


def test_round_trip_json_and_csv(two_runs) -> None:
    stored = model_scores("base", 7, 9, 5)
    assert load_results(two_runs[0]) == stored
    assert load_results(two_runs[0] / "evaluation" / "results.csv") == stored


def test_table_in_the_papers_shape(two_runs) -> None:
    scores = load_results(two_runs[0]) + load_results(two_runs[1])
    table = results_table(scores)
    assert list(table.columns) == ["base", "fdc_adpo"]
    assert list(table.index) == [
        ("Safety", "HarmBench"),
        ("Safety", "Safety Avg"),
        ("Over-refusal", "XSTest safe: answered"),
        ("Helpfulness", "MMLU"),
        ("Helpfulness", "Helpful Avg"),
    ]
    # 7/10 with its Wilson interval (0.3968, 0.8922), in percent
    assert table.loc[("Safety", "HarmBench"), "base"] == "70.0 (39.7\u201389.2)"
    numbers = results_table(scores, with_intervals=False)
    assert numbers.loc[("Helpfulness", "MMLU"), "fdc_adpo"] == pytest.approx(60.0)


def test_plot_has_one_point_per_model_and_labelled_axes(two_runs) -> None:
    scores = load_results(two_runs[0]) + load_results(two_runs[1])
    fig = plot_balance(scores)
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    assert "Helpfulness" in ax.get_xlabel() and "(%)" in ax.get_xlabel()
    assert "Safety" in ax.get_ylabel()
    assert [t.get_text() for t in ax.texts] == ["base", "fdc_adpo"]
    colorbar = fig.axes[1]
    assert "Over-refusal" in colorbar.get_ylabel()


def test_paper_table_and_side_by_side(two_runs) -> None:
    rows = [
        {
            "model": "Llama-3-8B-Instruct",
            "method": "base",
            "safety_data": "none",
            "benchmark": "BeaverTails",
            "kind": "safety",
            "score": "0.954",
        },
        {
            "model": "Llama-3-8B-Instruct",
            "method": "base",
            "safety_data": "none",
            "benchmark": "MMLU",
            "kind": "helpfulness",
            "score": "0.6",
        },
        {
            "model": "Llama-3-8B-Instruct",
            "method": "base",
            "safety_data": "none",
            "benchmark": "Helpful Avg",
            "kind": "helpfulness",
            "score": "0.5",
        },
    ]
    paper = paper_table(rows)
    assert paper.loc[("Safety", "BeaverTails"), "Llama-3-8B-Instruct base (none)"] == 95.4
    ours = results_table(load_results(two_runs[0]), with_intervals=False)
    both = side_by_side(ours, paper)
    assert both.loc[("Helpfulness", "MMLU"), ("paper", "Llama-3-8B-Instruct base (none)")] == 60.0
    assert both.loc[("Helpfulness", "MMLU"), ("ours", "base")] == pytest.approx(50.0)
    assert ("Helpfulness", "Helpful Avg (paper's 12)") in both.index
    assert math.isnan(both.loc[("Safety", "BeaverTails"), ("ours", "base")])
    with pytest.raises(DataFormatError, match="row 1, field 'score'"):
        paper_table([dict(rows[0], score="n/a")])


def test_write_report_files(two_runs, tmp_path) -> None:
    written = write_report(two_runs, tmp_path / "report", paper=False)
    assert set(written) == {"table_csv", "scores_csv", "table_md", "plot"}
    assert written["plot"].stat().st_size > 1000
    assert "70.0" in written["table_md"].read_text()


def test_bad_stored_results_name_file_row_and_field(tmp_path) -> None:
    run = tmp_path / "run"
    json_path, csv_path = save_results(model_scores("m", 7, 9, 5), run)
    text = csv_path.read_text().splitlines()
    text[2] = text[2].replace("full_refusal,0.7", "full_refusal,1.7")
    csv_path.write_text("\n".join(text) + "\n")
    with pytest.raises(DataFormatError, match=r"results.csv, row 2, field 'value'"):
        load_results(csv_path)
    rows = json.loads(json_path.read_text())
    rows[3]["axis"] = "kindness"
    del rows[4]["n"]
    json_path.write_text(json.dumps(rows))
    with pytest.raises(DataFormatError, match=r"results.json, row 4, field 'axis'"):
        load_results(run)
    rows[3]["axis"] = "overrefusal"
    json_path.write_text(json.dumps(rows))
    with pytest.raises(DataFormatError, match=r"row 5, field 'n'"):
        load_results(run)
    (tmp_path / "not_evaluated").mkdir()
    with pytest.raises(FileNotFoundError, match="equilibrate evaluate"):
        load_results(tmp_path / "not_evaluated")


def test_real_paper_results_load() -> None:
    pytest.importorskip("equilibrate.data")
    try:
        paper = paper_table()
    except (FileNotFoundError, OSError) as err:  # no local data and no network
        pytest.skip(f"paper results not available: {err}")
    assert paper.loc[("Safety", "Bal-Safe"), "Llama-3-8B-Instruct fdc_adpo (14k)"] == 90.2
