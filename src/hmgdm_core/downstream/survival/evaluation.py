"""Survival evaluation with lifelines: Harrell's c-index, and Kaplan–Meier curves split at the median risk."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from lifelines import KaplanMeierFitter
from lifelines.statistics import logrank_test
from lifelines.utils import concordance_index

__all__ = ["KaplanMeierSplit", "concordance", "median_risk_split", "plot_kaplan_meier"]


def concordance(times: np.ndarray, events: np.ndarray, risk: np.ndarray) -> float | None:
    """Harrell's concordance index of predicted risks.

    Parameters
    ----------
    times : np.ndarray, shape (n,)
        Follow-up times.
    events : np.ndarray, shape (n,), bool
        True where the event was observed.
    risk : np.ndarray, shape (n,)
        Predicted risk; higher means an earlier event is expected.

    Returns
    -------
    float or None
        Fraction of comparable pairs ordered right (ties in risk count ½): 1 is perfect, 0.5
        random. None when no pair is comparable (e.g. no event).
    """
    try:
        # lifelines scores survival-like predictions (higher = longer), hence -risk.
        return float(concordance_index(times, -np.asarray(risk), events))
    except ZeroDivisionError:
        return None


@dataclass(frozen=True)
class KaplanMeierSplit:
    """Patients split at the median predicted risk, with a Kaplan–Meier curve per half."""

    threshold: float
    """Median risk; patients with risk above it are "high risk"."""
    n_high: int
    n_low: int
    logrank_p: float
    """p-value of the log-rank test that the two halves share one survival function."""
    high_curve: tuple[list[float], list[float]]
    """(times, survival probability) step points of the high-risk half."""
    low_curve: tuple[list[float], list[float]]
    """(times, survival probability) step points of the low-risk half."""


def _curve(times: np.ndarray, events: np.ndarray) -> tuple[list[float], list[float]]:
    fitter = KaplanMeierFitter().fit(times, events)
    survival = fitter.survival_function_
    return survival.index.to_numpy(dtype=float).tolist(), survival.iloc[:, 0].to_numpy(dtype=float).tolist()


def median_risk_split(times: np.ndarray, events: np.ndarray, risk: np.ndarray) -> KaplanMeierSplit:
    """Split patients at the median risk and compare the halves' survival.

    Parameters
    ----------
    times : np.ndarray, shape (n,)
    events : np.ndarray, shape (n,), bool
    risk : np.ndarray, shape (n,)
        Predicted risks; risk equal to the median counts as low.

    Returns
    -------
    KaplanMeierSplit

    Raises
    ------
    ValueError
        If every risk equals the median, so one half is empty.
    """
    risk = np.asarray(risk)
    events = np.asarray(events, dtype=bool)
    threshold = float(np.median(risk))
    high = risk > threshold
    if high.all() or not high.any():
        raise ValueError("All predicted risks are equal: the median split leaves one group empty.")
    test = logrank_test(times[high], times[~high], events[high], events[~high])
    return KaplanMeierSplit(
        threshold=threshold,
        n_high=int(high.sum()),
        n_low=int((~high).sum()),
        logrank_p=float(test.p_value),
        high_curve=_curve(times[high], events[high]),
        low_curve=_curve(times[~high], events[~high]),
    )


def plot_kaplan_meier(split: KaplanMeierSplit, path: str | Path, title: str = "") -> Path:
    """Draw both Kaplan–Meier curves with the log-rank p-value and save a PNG.

    Parameters
    ----------
    split : KaplanMeierSplit
    path : str or Path
        Output file; its folder must exist.
    title : str
        Figure title.

    Returns
    -------
    Path
        ``path``.
    """
    # A bare Figure with the Agg canvas: no pyplot state and no GUI backend, safe in threads.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(5, 4), dpi=120)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    for (times, survival), label, colour in (
        (split.low_curve, f"low risk (n={split.n_low})", "tab:blue"),
        (split.high_curve, f"high risk (n={split.n_high})", "tab:red"),
    ):
        axes.step(times, survival, where="post", label=label, color=colour)
    axes.set_xlabel("time")
    axes.set_ylabel("survival probability")
    axes.set_ylim(0, 1.05)
    axes.set_title(title or f"split at median risk; log-rank p = {split.logrank_p:.3g}")
    axes.legend(loc="upper right")
    figure.tight_layout()
    path = Path(path)
    figure.savefig(path, format="png")
    return path
