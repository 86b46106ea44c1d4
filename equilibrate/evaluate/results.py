"""The stored form of evaluation results: one row per (model, axis, benchmark, metric).

A run directory's results live in ``<run>/evaluation/``:

- ``results.json`` and ``results.csv``: every score, columns :data:`COLUMNS`;
- ``parts/<axis>__<benchmark>.json``: one file per finished benchmark with its scores, the per-item
  records (prompt id, response, label or correctness) and a fingerprint of the settings and sample
  that produced it; a part whose fingerprint matches is reused instead of recomputed;
- ``generations.jsonl``: the generation cache.

Values, interval bounds and judge error rates are fractions in [0, 1]. ``judge_error`` is empty for
scores that no judge took part in (multiple choice, exact match, unit tests).
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import pandas as pd

from equilibrate.errors import DataFormatError

COLUMNS = ("model", "axis", "benchmark", "metric", "value", "ci_low", "ci_high", "n", "judge_error")
AXES = ("safety", "overrefusal", "helpfulness")
RESULTS_DIR = "evaluation"


@dataclass(frozen=True)
class Score:
    """One measured number with its 95% interval.

    ``axis`` is ``safety``, ``overrefusal`` or ``helpfulness``; ``metric`` names what was counted
    (``safe_rate``, ``compliance``, ``accuracy``, ``pass@1``...; a subgroup is written in brackets,
    e.g. ``safe_rate[EHD]``). ``n`` is the number of items. ``judge_error`` is the refusal judge's
    measured error rate when a judge decided the outcome, else ``None``.
    """

    axis: str
    benchmark: str
    metric: str
    value: float
    ci_low: float
    ci_high: float
    n: int
    judge_error: float | None = None
    model: str = ""

    def with_model(self, model: str) -> Score:
        """The same score attributed to ``model``."""
        return replace(self, model=model)

    def as_row(self) -> dict[str, Any]:
        """The score as a dict with the keys of :data:`COLUMNS`."""
        row = asdict(self)
        return {c: row[c] for c in COLUMNS}


def results_dir(run_dir: str | Path) -> Path:
    """The folder holding a run's evaluation results (not created)."""
    return Path(run_dir) / RESULTS_DIR


def scores_frame(scores: Iterable[Score]) -> pd.DataFrame:
    """Scores as a DataFrame with columns :data:`COLUMNS` (one row per score)."""
    return pd.DataFrame([s.as_row() for s in scores], columns=list(COLUMNS))


def _json_number(x: float | None) -> float | None:
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else x


def score_to_json(score: Score) -> dict[str, Any]:
    """A JSON-safe dict (NaN written as null)."""
    row = score.as_row()
    for key in ("value", "ci_low", "ci_high", "judge_error"):
        row[key] = _json_number(row[key])
    return row


def save_results(scores: Iterable[Score], run_dir: str | Path) -> tuple[Path, Path]:
    """Write ``<run_dir>/evaluation/results.json`` and ``results.csv``; return both paths."""
    folder = results_dir(run_dir)
    folder.mkdir(parents=True, exist_ok=True)
    scores = list(scores)
    json_path = folder / "results.json"
    tmp = json_path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps([score_to_json(s) for s in scores], indent=1) + "\n")
    tmp.replace(json_path)
    csv_path = folder / "results.csv"
    with csv_path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(COLUMNS))
        writer.writeheader()
        for s in scores:
            row = s.as_row()
            row["judge_error"] = "" if row["judge_error"] is None else row["judge_error"]
            writer.writerow(row)
    return json_path, csv_path


def _fraction(file: Path, row: int, field: str, raw: Any, *, optional: bool) -> float | None:
    if raw is None or raw == "":
        if optional:
            return None
        if field == "value":
            raise DataFormatError(file, row, field, "is empty; expected a number in [0, 1]")
        return math.nan  # an interval bound of an empty benchmark
    try:
        x = float(raw)
    except (TypeError, ValueError):
        raise DataFormatError(
            file, row, field, f"expected a number in [0, 1], got {raw!r}"
        ) from None
    if math.isnan(x):
        return None if optional else x
    if not 0.0 <= x <= 1.0:
        raise DataFormatError(file, row, field, f"expected a fraction in [0, 1], got {x}")
    return x


def score_from_row(raw: dict[str, Any], file: Path, row: int) -> Score:
    """Validate one stored row (1-based ``row``) and build its :class:`Score`."""
    if not isinstance(raw, dict):
        raise DataFormatError(file, row, None, f"expected an object with fields {COLUMNS}")
    missing = [c for c in COLUMNS if c not in raw]
    if missing:
        raise DataFormatError(file, row, missing[0], "field is missing")
    for field in ("model", "axis", "benchmark", "metric"):
        if not isinstance(raw[field], str) or not raw[field]:
            raise DataFormatError(
                file, row, field, f"expected a non-empty string, got {raw[field]!r}"
            )
    if raw["axis"] not in AXES:
        raise DataFormatError(file, row, "axis", f"expected one of {AXES}, got {raw['axis']!r}")
    try:
        n_float = float(raw["n"])
    except (TypeError, ValueError):
        raise DataFormatError(file, row, "n", f"expected a count, got {raw['n']!r}") from None
    if n_float < 0 or n_float != int(n_float):
        raise DataFormatError(file, row, "n", f"expected a whole number >= 0, got {raw['n']!r}")
    value = _fraction(file, row, "value", raw["value"], optional=int(n_float) == 0)
    low = _fraction(file, row, "ci_low", raw["ci_low"], optional=False)
    high = _fraction(file, row, "ci_high", raw["ci_high"], optional=False)
    value = math.nan if value is None else value
    if not (math.isnan(value) or math.isnan(low) or math.isnan(high)):
        if not low - 1e-9 <= value <= high + 1e-9:
            raise DataFormatError(
                file, row, "value", f"{value} lies outside its interval [{low}, {high}]"
            )
    judge_error = _fraction(file, row, "judge_error", raw["judge_error"], optional=True)
    return Score(
        axis=raw["axis"],
        benchmark=raw["benchmark"],
        metric=raw["metric"],
        value=value,
        ci_low=low,
        ci_high=high,
        n=int(n_float),
        judge_error=judge_error,
        model=raw["model"],
    )


def read_scores_file(path: str | Path) -> list[Score]:
    """Read and validate a ``results.json`` or ``results.csv`` file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such results file")
    if path.suffix == ".json":
        try:
            rows = json.loads(path.read_text())
        except json.JSONDecodeError as err:
            raise DataFormatError(path, None, None, f"not valid JSON ({err})") from None
        if not isinstance(rows, list):
            raise DataFormatError(path, None, None, "expected a JSON list of score objects")
        return [score_from_row(r, path, i) for i, r in enumerate(rows, start=1)]
    if path.suffix == ".csv":
        with path.open(newline="") as fh:
            reader = csv.DictReader(fh)
            header = reader.fieldnames or []
            missing = [c for c in COLUMNS if c not in header]
            if missing:
                raise DataFormatError(path, None, missing[0], f"column missing; header is {header}")
            return [score_from_row(r, path, i) for i, r in enumerate(reader, start=1)]
    raise DataFormatError(path, None, None, "expected a .json or .csv results file")


def load_results(run_or_file: str | Path) -> list[Score]:
    """The validated scores of a run directory (its ``evaluation/results.json``) or of one file.

    Raises:
        FileNotFoundError: when the run has no stored results (run ``equilibrate evaluate`` first).
        DataFormatError: naming file, row and field when a stored row is malformed.
    """
    path = Path(run_or_file)
    if path.is_dir():
        folder = results_dir(path) if results_dir(path).is_dir() else path
        for name in ("results.json", "results.csv"):
            if (folder / name).is_file():
                return read_scores_file(folder / name)
        raise FileNotFoundError(
            f"{path}: no evaluation/results.json or results.csv; run `equilibrate evaluate` first"
        )
    return read_scores_file(path)
