"""Tables and figures from stored evaluation results; no model is loaded here.

- :func:`results_table`: the paper's shape, one column per model: safety rows (one per prompt set,
  then the safety average), the over-refusal row (XSTest safe prompts answered), helpfulness rows
  and the helpful average. Cells are percentages with their 95% intervals.
- :func:`plot_balance`: safety against helpfulness, one point per model, with error bars, coloured
  by the over-refusal rate.
- :func:`paper_table` and :func:`side_by_side`: the paper's published numbers next to ours.
- :func:`write_report`: all of the above written to files for a set of run directories.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from equilibrate.errors import DataFormatError
from equilibrate.evaluate.results import Score, load_results, scores_frame

log = logging.getLogger(__name__)

AXIS_LABELS = {"safety": "Safety", "overrefusal": "Over-refusal", "helpfulness": "Helpfulness"}
# Our benchmark names -> the names the paper's table uses (or a readable name of our own).
DISPLAY_NAMES = {
    "harmbench": "HarmBench",
    "advbench": "AdvBench",
    "jailbreakbench": "JailbreakBench",
    "simplesafetytests": "SimpleSafetyTests",
    "do_not_answer": "Do-Not-Answer",
    "xstest_unsafe": "XSTest unsafe",
    "beavertails_fdc": "BeaverTails (FDC pool)",
    "safety_avg": "Safety Avg",
    "xstest_safe": "XSTest safe: answered",
    "mmlu": "MMLU",
    "arc_easy": "ARC-E",
    "arc_challenge": "ARC-C",
    "commonsenseqa": "CommonsenseQA",
    "winogrande": "WinoGrande",
    "truthfulqa_mc1": "TruthfulQA MC1",
    "gsm8k": "GSM8K",
    "bbh": "BBH",
    "humaneval": "HumanEval",
    "helpful_avg": "Helpful Avg",
}
# The metric each benchmark contributes to the table.
HEADLINE = {
    "safety": ("safe_rate", "mean_safe_rate"),
    "overrefusal": ("compliance",),
    "helpfulness": ("accuracy", "pass@1", "mean_accuracy"),
}
_LAST = ("safety_avg", "helpful_avg")


def load_runs(run_dirs: Iterable[str | Path]) -> list[Score]:
    """The stored scores of several runs; a model name seen in two runs gets the run's folder name
    appended so that every column of the table is one run."""
    scores: list[Score] = []
    seen: set[str] = set()
    for run in run_dirs:
        run_scores = load_results(run)
        names = {s.model for s in run_scores}
        clash = names & seen
        if clash:
            run_scores = [
                s.with_model(f"{s.model} ({Path(run).name})") if s.model in clash else s
                for s in run_scores
            ]
        seen |= {s.model for s in run_scores}
        scores += run_scores
    return scores


def _frame(scores: Iterable[Score] | pd.DataFrame) -> pd.DataFrame:
    return scores.copy() if isinstance(scores, pd.DataFrame) else scores_frame(scores)


def _headline(frame: pd.DataFrame) -> pd.DataFrame:
    """The rows of ``frame`` that go into the table, in table order."""
    keep = frame[
        [m in HEADLINE.get(a, ()) for a, m in zip(frame["axis"], frame["metric"], strict=True)]
    ]
    keep = keep.assign(
        _axis=keep["axis"].map({a: i for i, a in enumerate(AXIS_LABELS)}),
        _last=keep["benchmark"].isin(_LAST),
    )
    return keep.sort_values(["_axis", "_last"], kind="stable")


def format_cell(value: float, low: float, high: float, percent: bool = True) -> str:
    """``"95.4 (93.1-97.0)"``: a score and its 95% interval, in percent by default."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    k = 100.0 if percent else 1.0
    if any(x is None or math.isnan(x) for x in (low, high)):
        return f"{value * k:.1f}"
    return f"{value * k:.1f} ({low * k:.1f}\u2013{high * k:.1f})"


def results_table(
    scores: Iterable[Score] | pd.DataFrame, with_intervals: bool = True, percent: bool = True
) -> pd.DataFrame:
    """The results in the paper's shape: rows (axis, benchmark), one column per model.

    With ``with_intervals`` each cell is a string such as ``"95.4 (93.1–97.0)"``; otherwise the
    cells are the values as numbers (percent when ``percent``). A benchmark a model was not
    evaluated on is left empty.
    """
    rows = _headline(_frame(scores))
    models = list(dict.fromkeys(rows["model"]))
    order = list(dict.fromkeys(zip(rows["axis"], rows["benchmark"], strict=True)))
    index = pd.MultiIndex.from_tuples(
        [(AXIS_LABELS[a], DISPLAY_NAMES.get(b, b)) for a, b in order], names=["axis", "benchmark"]
    )
    table = pd.DataFrame(index=index, columns=models, dtype=object if with_intervals else float)
    for row in rows.itertuples():
        key = (AXIS_LABELS[row.axis], DISPLAY_NAMES.get(row.benchmark, row.benchmark))
        if with_intervals:
            table.loc[key, row.model] = format_cell(row.value, row.ci_low, row.ci_high, percent)
        else:
            table.loc[key, row.model] = row.value * (100.0 if percent else 1.0)
    table.columns.name = "model"
    return table.fillna("") if with_intervals else table


def _model_point(frame: pd.DataFrame, model: str, benchmark: str, metric: str) -> pd.Series | None:
    hit = frame[
        (frame["model"] == model) & (frame["benchmark"] == benchmark) & (frame["metric"] == metric)
    ]
    return None if hit.empty else hit.iloc[0]


def plot_balance(scores: Iterable[Score] | pd.DataFrame, ax: Axes | None = None) -> Figure:
    """Safety (y) against helpfulness (x), one point per model, coloured by over-refusal.

    x is the helpful average, y the safety average, both in percent with their 95% intervals as
    error bars; the colour is the share of XSTest safe prompts *not* answered (full or partial
    refusal). Up and to the right is better, and a pale point is one that refuses little. Models
    missing either average are left out (with a log line).
    """
    frame = _frame(scores)
    if ax is None:
        fig = Figure(figsize=(6.4, 4.8), layout="constrained")
        ax = fig.add_subplot()
    fig = ax.figure
    points = []
    for model in dict.fromkeys(frame["model"]):
        helpful = _model_point(frame, model, "helpful_avg", "mean_accuracy")
        safe = _model_point(frame, model, "safety_avg", "mean_safe_rate")
        if helpful is None or safe is None:
            log.warning("plot_balance: %s lacks a helpful or safety average; not plotted", model)
            continue
        comply = _model_point(frame, model, "xstest_safe", "compliance")
        refusal = math.nan if comply is None else 100.0 * (1.0 - comply["value"])
        points.append((model, helpful, safe, refusal))
    if not points:
        raise DataFormatError(
            "results", None, "benchmark", "no model has both 'helpful_avg' and 'safety_avg' to plot"
        )
    cmap = "viridis_r"
    known = [p[3] for p in points if not math.isnan(p[3])]
    vmin, vmax = (min(known), max(known)) if known else (0.0, 1.0)
    if vmax - vmin < 1.0:
        vmin, vmax = max(0.0, vmin - 5.0), min(100.0, vmax + 5.0)
    mappable = None
    for model, helpful, safe, refusal in points:
        x, y = 100 * helpful["value"], 100 * safe["value"]
        xerr = [[x - 100 * helpful["ci_low"]], [100 * helpful["ci_high"] - x]]
        yerr = [[y - 100 * safe["ci_low"]], [100 * safe["ci_high"] - y]]
        ax.errorbar(x, y, xerr=xerr, yerr=yerr, fmt="none", ecolor="0.6", elinewidth=1, zorder=1)
        if math.isnan(refusal):
            ax.scatter([x], [y], s=80, facecolors="none", edgecolors="k", zorder=2)
        else:
            mappable = ax.scatter(
                [x],
                [y],
                c=[refusal],
                cmap=cmap,
                vmin=vmin,
                vmax=vmax,
                s=80,
                edgecolors="k",
                zorder=2,
            )
        ax.annotate(model, (x, y), textcoords="offset points", xytext=(6, 6), fontsize=8)
    if mappable is not None:
        fig.colorbar(mappable, ax=ax, label="Over-refusal: XSTest safe prompts refused (%)")
    ax.set_xlabel("Helpfulness: helpful average (%)")
    ax.set_ylabel("Safety: harmful prompts answered safely (%)")
    ax.set_title("Helpfulness-safety balance (95% intervals)")
    ax.grid(alpha=0.3)
    return fig


def paper_table(rows: Sequence[Mapping[str, Any]] | None = None) -> pd.DataFrame:
    """The paper's main results (Tan et al. 2025), rows (axis, benchmark), percent.

    ``rows`` default to ``equilibrate.data.load("paper_results")``. Columns are
    ``"<model> <method> (<safety data>)"``, e.g. ``"Llama-3-8B-Instruct fdc_adpo (14k)"``.
    """
    if rows is None:
        from equilibrate.data import load

        rows = load("paper_results")
    records = []
    for i, row in enumerate(rows, start=1):
        for key in ("model", "method", "safety_data", "benchmark", "kind", "score"):
            if key not in row:
                raise DataFormatError("paper_results", i, key, "field is missing")
        if row["kind"] not in ("safety", "helpfulness"):
            raise DataFormatError("paper_results", i, "kind", f"unexpected {row['kind']!r}")
        try:
            score = float(row["score"])
        except (TypeError, ValueError):
            raise DataFormatError(
                "paper_results", i, "score", f"not a number: {row['score']!r}"
            ) from None
        records.append(
            {
                "axis": AXIS_LABELS[row["kind"]],
                "benchmark": str(row["benchmark"]),
                "column": f"{row['model']} {row['method']} ({row['safety_data']})",
                "score": round(100.0 * score, 2),  # the paper gives 4 decimals of a fraction
            }
        )
    frame = pd.DataFrame(records)
    order = list(dict.fromkeys(zip(frame["axis"], frame["benchmark"], strict=True)))
    table = frame.pivot_table(
        index=["axis", "benchmark"], columns="column", values="score", aggfunc="first", sort=False
    )
    table = table.reindex(pd.MultiIndex.from_tuples(order, names=["axis", "benchmark"]))
    table.columns.name = "model"
    return table[list(dict.fromkeys(frame["column"]))]


def side_by_side(ours: pd.DataFrame, paper: pd.DataFrame) -> pd.DataFrame:
    """Our table and the paper's in one frame, columns grouped under ``ours`` and ``paper``.

    Rows line up where the benchmark is the same (MMLU, ARC-C, GSM8K...); benchmarks only one side
    has are kept with the other side empty. The paper's helpful average covers its twelve
    benchmarks (several Chinese ones we do not run), so it is relabelled
    ``"Helpful Avg (paper's 12)"`` and stays on its own row: the two averages are not comparable.
    """
    paper = paper.rename(index={"Helpful Avg": "Helpful Avg (paper's 12)"}, level="benchmark")
    both = pd.concat({"ours": ours, "paper": paper}, axis=1)
    axis_rank = {label: i for i, label in enumerate(AXIS_LABELS.values())}
    keys = sorted(range(len(both.index)), key=lambda i: axis_rank.get(both.index[i][0], 9))
    return both.iloc[keys]


def write_report(
    run_dirs: Sequence[str | Path], out_dir: str | Path, paper: bool = True
) -> dict[str, Path]:
    """Render the table, the plot and (with ``paper``) the comparison for ``run_dirs`` into
    ``out_dir``; return the written paths by name (``table_csv``, ``table_md``, ``plot``,
    ``paper_csv``). The plot is skipped, with a log line, when no run has both averages."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    scores = load_runs(run_dirs)
    written: dict[str, Path] = {}
    numbers = results_table(scores, with_intervals=False)
    numbers.to_csv(out / "table.csv", float_format="%.2f")
    written["table_csv"] = out / "table.csv"
    scores_frame(scores).to_csv(out / "scores.csv", index=False)
    written["scores_csv"] = out / "scores.csv"
    shown = results_table(scores)
    (out / "table.md").write_text(to_text(shown) + "\n")
    written["table_md"] = out / "table.md"
    try:
        fig = plot_balance(scores)
    except DataFormatError as err:
        log.warning("no plot: %s", err)
    else:
        fig.savefig(out / "balance.png", dpi=150)
        written["plot"] = out / "balance.png"
    if paper:
        both = side_by_side(numbers, paper_table())
        both.to_csv(out / "paper_comparison.csv", float_format="%.2f")
        written["paper_csv"] = out / "paper_comparison.csv"
    return written


def to_text(table: pd.DataFrame) -> str:
    """A table as Markdown (plain text when ``tabulate`` is not installed)."""
    flat = table.reset_index() if isinstance(table.index, pd.MultiIndex) else table
    show_index = flat is table
    try:
        return flat.to_markdown(index=show_index)
    except ImportError:
        return flat.to_string(index=show_index)
