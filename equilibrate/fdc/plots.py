"""Figures for the FDC chapter: confusion matrices and category shares per source."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd


def plot_confusion(report: Any, ax: Any = None, title: str | None = None) -> Any:
    """Draw ``report.confusion`` (rows = reference, columns = prediction) as a heatmap of row
    shares (%) annotated with counts; returns the axes."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(4.2, 3.6))
    counts = report.confusion.to_numpy()
    totals = counts.sum(axis=1, keepdims=True)
    shares = np.divide(100.0 * counts, totals, out=np.zeros(counts.shape), where=totals > 0)
    image = ax.imshow(shares, cmap="Blues", vmin=0, vmax=100)
    for i in range(counts.shape[0]):
        for j in range(counts.shape[1]):
            ax.text(
                j,
                i,
                str(counts[i, j]),
                ha="center",
                va="center",
                color="white" if shares[i, j] > 60 else "black",
                fontsize=9,
            )
    ax.set_xticks(range(counts.shape[1]), [str(c) for c in report.confusion.columns])
    ax.set_yticks(range(counts.shape[0]), [str(c) for c in report.confusion.index])
    ax.set_xlabel("predicted category")
    ax.set_ylabel("authors' label")
    ax.set_title(title or f"macro-F1 {report.macro_f1:.2f}, n={report.n}")
    ax.figure.colorbar(image, ax=ax, label="share of the authors' label (%)")
    return ax


def plot_shares(shares: pd.DataFrame, ax: Any = None) -> Any:
    """Stacked horizontal bars: the share (%) of each category within each source."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(7, 3.2))
    order = [c for c in ("EHD", "IHD", "MHD", "OTHER", "NONE") if c in shares.columns]
    percent = 100.0 * shares[order].div(shares[order].sum(axis=1), axis=0)
    left = np.zeros(len(percent))
    colours = {
        "EHD": "#b2182b",
        "IHD": "#ef8a62",
        "MHD": "#fddbc7",
        "OTHER": "#d1e5f0",
        "NONE": "#67a9cf",
    }
    for category in order:
        ax.barh(
            percent.index, percent[category], left=left, label=category, color=colours[category]
        )
        left += percent[category].to_numpy()
    totals = shares.sum(axis=1)
    ax.set_yticks(range(len(percent)), [f"{s} (n={totals[s]})" for s in percent.index])
    ax.set_xlabel("share of the source's prompts (%)")
    ax.set_xlim(0, 100)
    ax.legend(ncol=5, loc="lower center", bbox_to_anchor=(0.5, 1.0), frameon=False)
    return ax
