"""Stratified, group-aware cross-validation folds.

Tiles or patches cut from one slide (or one patient) are strongly correlated, so a split
that puts some of them in training and others in testing overstates accuracy. Every split
here keeps each group (slide, patient, source image) on one side, and stratifies on the
label so each fold sees the class mix of the whole set as far as the groups allow
(scikit-learn's :class:`~sklearn.model_selection.StratifiedGroupKFold`).
"""

from __future__ import annotations

import numpy as np
from sklearn.model_selection import StratifiedGroupKFold

from hmgdm_core.errors import DownstreamError

__all__ = ["Fold", "grouped_folds", "grouped_holdout"]

Fold = tuple[np.ndarray, np.ndarray]
"""``(train_indices, test_indices)``, both int64 arrays of sample indices."""


def _check_group_count(groups: np.ndarray, n_splits: int) -> None:
    if n_splits < 2:
        raise DownstreamError(f"Cross-validation needs at least 2 folds, got n_splits={n_splits}.")
    n_groups = len(np.unique(groups))
    if n_groups < n_splits:
        raise DownstreamError(
            f"Only {n_groups} distinct groups for {n_splits} folds: every fold needs its own groups. "
            f"Use at most {n_groups} folds, or finer groups (e.g. source image instead of slide)."
        )


def _check_groups_per_class(labels: np.ndarray, groups: np.ndarray, n_splits: int) -> None:
    too_few = []
    for label in np.unique(labels):
        label_groups = len(np.unique(groups[labels == label]))
        if label_groups < n_splits:
            too_few.append(f"{label!s} ({label_groups} group{'s' if label_groups != 1 else ''})")
    if too_few:
        raise DownstreamError(
            f"These classes occur in fewer groups than the {n_splits} folds, so some test folds could not "
            f"contain them and the grouped split cannot be stratified: {', '.join(too_few)}. Drop these classes, "
            "use fewer folds, or use finer groups."
        )


def _as_1d(name: str, values: np.ndarray, n: int | None = None) -> np.ndarray:
    array = np.asarray(values)
    if array.ndim != 1:
        raise DownstreamError(f"{name} must be one-dimensional, got shape {array.shape}.")
    if n is not None and len(array) != n:
        raise DownstreamError(f"{name} has {len(array)} entries but there are {n} samples; give one per sample.")
    return array


def grouped_folds(labels: np.ndarray, groups: np.ndarray, n_splits: int, seed: int) -> list[Fold]:
    """Split samples into stratified folds that never share a group.

    Parameters
    ----------
    labels : np.ndarray, shape (n,)
        Class of each sample (any sortable dtype); stratification target.
    groups : np.ndarray, shape (n,)
        Group of each sample (slide or patient id). No group is ever in both the training
        and the test part of a fold.
    n_splits : int
        Number of folds, at least 2.
    seed : int
        Seed of the shuffle inside :class:`~sklearn.model_selection.StratifiedGroupKFold`.

    Returns
    -------
    list of (np.ndarray, np.ndarray)
        ``n_splits`` pairs ``(train_indices, test_indices)`` of int64 indices. Every sample
        is in exactly one test part.

    Raises
    ------
    DownstreamError
        If the lengths differ, there are fewer groups than folds, or a class occurs in fewer
        groups than folds (the message names those classes).
    """
    labels = _as_1d("labels", labels)
    groups = _as_1d("groups", groups, len(labels))
    _check_group_count(groups, n_splits)
    _check_groups_per_class(labels, groups, n_splits)
    return _split(labels, groups, n_splits, seed)


def _split(labels: np.ndarray, groups: np.ndarray, n_splits: int, seed: int) -> list[Fold]:
    splitter = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    placeholder = np.zeros((len(labels), 1))
    return [
        (train.astype(np.int64), test.astype(np.int64)) for train, test in splitter.split(placeholder, labels, groups)
    ]


def grouped_holdout(labels: np.ndarray, groups: np.ndarray, n_splits: int, seed: int) -> Fold:
    """Hold out about ``1 / n_splits`` of the samples, by group, for validation.

    This is the first fold of the same stratified grouped split, so the held-out part shares no
    group with the rest and follows the class mix as far as the groups allow. Unlike
    :func:`grouped_folds` it accepts classes with fewer groups than ``n_splits`` (a training
    portion often has few groups of a rare class): stratification is then best effort. Model
    selection uses this part; the test fold is never seen.

    Parameters
    ----------
    labels : np.ndarray, shape (n,)
        Class (or event status, for survival) of each sample.
    groups : np.ndarray, shape (n,)
        Group of each sample.
    n_splits : int
        ``1 / n_splits`` of the samples are held out (5 gives the official 20 %).
    seed : int
        Seed of the shuffle.

    Returns
    -------
    (np.ndarray, np.ndarray)
        ``(fit_indices, validation_indices)``, int64 indices into ``labels``.

    Raises
    ------
    DownstreamError
        If the lengths differ or there are fewer groups than ``n_splits``.
    """
    labels = _as_1d("labels", labels)
    groups = _as_1d("groups", groups, len(labels))
    _check_group_count(groups, n_splits)
    return _split(labels, groups, n_splits, seed)[0]
