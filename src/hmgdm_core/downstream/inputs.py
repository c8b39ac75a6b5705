"""Downstream inputs: checked arrays, and the ``.npz`` files the CLI reads.

Two file formats, both plain NumPy ``.npz`` archives (``np.savez``; no pickled objects):

**Classification** (one row per tile or graph)

================  ===================  ============================================
key               shape, dtype         meaning
================  ===================  ============================================
``embeddings``    (n, d) float         frozen embedding of each sample
``labels``        (n,) int or str      class of each sample
``groups``        (n,) int or str      slide / patient id; never split across folds
================  ===================  ============================================

**Survival** (patches of all slides stacked; ``bag`` says which slide a row belongs to)

================  ===================  ============================================
key               shape, dtype         meaning
================  ===================  ============================================
``embeddings``    (N, d) float         patch embeddings of every slide, stacked
``bag``           (N,) int             slide index in ``[0, B)`` of each patch row
``times``         (B,) float           follow-up time per slide (> 0, any unit)
``events``        (B,) bool or 0/1     1 = event (death) observed, 0 = censored
``groups``        (B,) int or str      optional patient id (default: one per slide)
================  ===================  ============================================
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hmgdm_core.errors import DownstreamError

__all__ = [
    "ClassificationData",
    "SurvivalData",
    "check_classification",
    "check_survival",
    "load_classification_npz",
    "load_survival_npz",
    "save_classification_npz",
    "save_survival_npz",
]


@dataclass(frozen=True)
class ClassificationData:
    """Embeddings with their class labels and groups, checked for consistency."""

    embeddings: np.ndarray
    """Shape (n, d), float64, all finite."""
    labels: np.ndarray
    """Shape (n,), class of each sample."""
    groups: np.ndarray
    """Shape (n,), slide or patient id of each sample."""


@dataclass(frozen=True)
class SurvivalData:
    """Bags of patch embeddings with follow-up, checked for consistency."""

    bags: list[np.ndarray]
    """B arrays, bag ``b`` of shape (n_b, d), float64; n_b ≥ 1 and the same d for all."""
    times: np.ndarray
    """Shape (B,), float64, positive follow-up times."""
    events: np.ndarray
    """Shape (B,), bool, True where the event was observed."""
    groups: np.ndarray
    """Shape (B,), patient id of each bag."""


def _matrix(name: str, values: np.ndarray) -> np.ndarray:
    array = np.asarray(values)
    if array.ndim != 2 or array.shape[0] == 0 or array.shape[1] == 0:
        raise DownstreamError(f"{name} must be a non-empty 2-D array (samples × features), got shape {array.shape}.")
    if not np.issubdtype(array.dtype, np.number) or np.issubdtype(array.dtype, np.complexfloating):
        raise DownstreamError(f"{name} must hold real numbers, got dtype {array.dtype}.")
    array = array.astype(np.float64)
    if not np.isfinite(array).all():
        bad = np.unique(np.nonzero(~np.isfinite(array))[0])
        raise DownstreamError(
            f"{name} holds NaN or infinite values in {len(bad)} row(s) (first: {bad[:5].tolist()}); "
            "drop or recompute those samples."
        )
    return array


def _vector(name: str, values: np.ndarray, n: int, what: str) -> np.ndarray:
    array = np.asarray(values)
    if array.ndim != 1 or len(array) != n:
        raise DownstreamError(f"{name} must have one entry per {what} ({n}), got shape {array.shape}.")
    if np.issubdtype(array.dtype, np.floating) and not np.isfinite(array).all():
        raise DownstreamError(f"{name} holds NaN or infinite values; give a value for every {what}.")
    return array


def check_classification(embeddings: np.ndarray, labels: np.ndarray, groups: np.ndarray) -> ClassificationData:
    """Check shapes, lengths and finiteness of classification inputs.

    Parameters
    ----------
    embeddings : np.ndarray, shape (n, d)
    labels : np.ndarray, shape (n,)
    groups : np.ndarray, shape (n,)

    Returns
    -------
    ClassificationData

    Raises
    ------
    DownstreamError
        On a wrong shape, a length mismatch, NaNs, or fewer than two classes.
    """
    embeddings = _matrix("embeddings", embeddings)
    labels = _vector("labels", labels, len(embeddings), "sample")
    groups = _vector("groups", groups, len(embeddings), "sample")
    if len(np.unique(labels)) < 2:
        raise DownstreamError("labels hold a single class; classification needs at least two.")
    return ClassificationData(embeddings, labels, groups)


def check_survival(
    bags: list[np.ndarray], times: np.ndarray, events: np.ndarray, groups: np.ndarray | None = None
) -> SurvivalData:
    """Check bags, times, events and groups of a survival cohort.

    Parameters
    ----------
    bags : list of np.ndarray
        B arrays of shape (n_b, d), the patch embeddings of each slide.
    times : np.ndarray, shape (B,)
        Positive follow-up times.
    events : np.ndarray, shape (B,)
        Event indicator (bool or 0/1).
    groups : np.ndarray, shape (B,), optional
        Patient ids; defaults to one group per bag.

    Returns
    -------
    SurvivalData

    Raises
    ------
    DownstreamError
        On empty bags, differing feature sizes, length mismatches, NaNs, non-positive times,
        events other than 0/1, or fewer than two observed events.
    """
    if len(bags) == 0:
        raise DownstreamError("No bags given: a survival cohort needs at least one slide.")
    bags = [_matrix(f"bag {b}", bag) for b, bag in enumerate(bags)]
    if len({bag.shape[1] for bag in bags}) != 1:
        raise DownstreamError(
            f"All bags must have the same embedding size d; got sizes {sorted({bag.shape[1] for bag in bags})}."
        )
    times = _vector("times", times, len(bags), "bag").astype(np.float64)
    if (times <= 0).any():
        raise DownstreamError("times must be positive (follow-up time of each slide).")
    events = _vector("events", events, len(bags), "bag")
    if not np.isin(events, (0, 1)).all():
        raise DownstreamError("events must be 0/1 or boolean (1 = event observed, 0 = censored).")
    events = events.astype(bool)
    if events.sum() < 2:
        raise DownstreamError(f"Only {int(events.sum())} observed event(s): a Cox model needs at least two.")
    groups = np.arange(len(bags)) if groups is None else _vector("groups", groups, len(bags), "bag")
    return SurvivalData(bags, times, events, groups)


def _open_npz(path: str | Path, required: tuple[str, ...]) -> dict[str, np.ndarray]:
    path = Path(path)
    if not path.is_file():
        raise DownstreamError(f"No such file: {path}.")
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {key: archive[key] for key in archive.files}
    except (OSError, ValueError) as error:
        raise DownstreamError(f"{path} is not a readable .npz archive of plain arrays ({error}).") from error
    missing = [key for key in required if key not in arrays]
    if missing:
        raise DownstreamError(
            f"{path} lacks the key(s) {missing}; it has {sorted(arrays)}. See hmgdm_core.downstream.inputs."
        )
    return arrays


def load_classification_npz(path: str | Path) -> ClassificationData:
    """Read and check a classification ``.npz`` (keys ``embeddings``, ``labels``, ``groups``).

    Parameters
    ----------
    path : str or Path

    Returns
    -------
    ClassificationData

    Raises
    ------
    DownstreamError
        If the file is missing or unreadable, lacks a key, or fails :func:`check_classification`.
    """
    arrays = _open_npz(path, ("embeddings", "labels", "groups"))
    return check_classification(arrays["embeddings"], arrays["labels"], arrays["groups"])


def load_survival_npz(path: str | Path) -> SurvivalData:
    """Read and check a survival ``.npz`` (keys ``embeddings``, ``bag``, ``times``, ``events``, optional ``groups``).

    Parameters
    ----------
    path : str or Path

    Returns
    -------
    SurvivalData

    Raises
    ------
    DownstreamError
        If the file is missing or unreadable, lacks a key, ``bag`` does not index ``[0, B)``
        with every slide non-empty, or the data fail :func:`check_survival`.
    """
    arrays = _open_npz(path, ("embeddings", "bag", "times", "events"))
    embeddings = _matrix("embeddings", arrays["embeddings"])
    bag = _vector("bag", arrays["bag"], len(embeddings), "embedding row")
    n_bags = len(np.asarray(arrays["times"]))
    if not np.issubdtype(bag.dtype, np.integer) or bag.min() < 0 or bag.max() >= n_bags:
        raise DownstreamError(
            f"bag must hold integer slide indices in [0, {n_bags}) (one per time), got {bag.dtype} "
            f"values in [{bag.min()}, {bag.max()}]."
        )
    empty = np.setdiff1d(np.arange(n_bags), bag)
    if len(empty):
        raise DownstreamError(f"Slides {empty[:5].tolist()} have no patch rows in bag; every slide needs ≥ 1 patch.")
    bags = [embeddings[bag == b] for b in range(n_bags)]
    return check_survival(bags, arrays["times"], arrays["events"], arrays.get("groups"))


def save_classification_npz(path: str | Path, data: ClassificationData) -> None:
    """Write ``data`` in the classification ``.npz`` format read by :func:`load_classification_npz`."""
    np.savez(path, embeddings=data.embeddings, labels=data.labels, groups=data.groups)


def save_survival_npz(path: str | Path, data: SurvivalData) -> None:
    """Write ``data`` in the survival ``.npz`` format read by :func:`load_survival_npz`."""
    bag = np.concatenate([np.full(len(b), i, dtype=np.int64) for i, b in enumerate(data.bags)])
    np.savez(
        path, embeddings=np.concatenate(data.bags), bag=bag, times=data.times, events=data.events, groups=data.groups
    )
