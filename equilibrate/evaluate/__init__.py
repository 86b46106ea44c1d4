"""Evaluating the helpfulness-safety balance: safety, over-refusal, helpfulness, reports.

Every score is a share of items with a 95% interval (:mod:`.intervals`); scores a judge decided
carry the judge's measured error rate. :func:`evaluate_model` runs all three axes for one model and
stores the results in its run directory; :mod:`.report` renders tables and plots from stored
results without loading a model.
"""

from equilibrate.evaluate.intervals import (
    Estimate,
    bootstrap_mean_of_means,
    proportion,
    wilson_interval,
)
from equilibrate.evaluate.report import (
    load_runs,
    paper_table,
    plot_balance,
    results_table,
    side_by_side,
    write_report,
)
from equilibrate.evaluate.results import COLUMNS, Score, load_results, save_results, scores_frame
from equilibrate.evaluate.runner import EvalResults, EvalSettings, evaluate_model

__all__ = [
    "COLUMNS",
    "Estimate",
    "EvalResults",
    "EvalSettings",
    "Score",
    "bootstrap_mean_of_means",
    "evaluate_model",
    "load_results",
    "load_runs",
    "paper_table",
    "plot_balance",
    "proportion",
    "results_table",
    "save_results",
    "scores_frame",
    "side_by_side",
    "wilson_interval",
    "write_report",
]
