"""Linear and k-nearest-neighbour probes on frozen embeddings, with grouped cross-validation.

The paper fine-tunes the encoder end to end (:mod:`hmgdm_core.downstream.finetune`); a probe
on frozen embeddings is the cheaper, encoder-agnostic measure of representation quality
(method spec §13.7), and the one the ``hmgdm classify`` command runs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Literal

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from hmgdm_core.downstream.inputs import check_classification
from hmgdm_core.downstream.report import ClassificationReport, build_report, encode_labels
from hmgdm_core.downstream.splits import grouped_folds
from hmgdm_core.errors import DownstreamError

__all__ = ["ClassifyConfig", "classify_embeddings", "drop_classes", "make_probe", "rare_classes"]


@dataclass(frozen=True)
class ClassifyConfig:
    """How :func:`classify_embeddings` probes embeddings."""

    probe: Literal["linear", "knn"] = "linear"
    """``linear``: standardise, then multinomial logistic regression; ``knn``: standardise, then kNN vote."""
    n_splits: int = 5
    """Folds of the grouped stratified CV (the paper uses 5)."""
    seed: int = 0
    """Seed of the fold shuffle."""
    inverse_regularization: float = 1.0
    """Logistic regression's ``C`` (larger = weaker L2 penalty); linear probe only."""
    max_iter: int = 1000
    """Iteration cap of the logistic-regression solver; linear probe only."""
    class_weight: Literal["balanced", "none"] = "balanced"
    """``balanced`` weighs classes inversely to their training frequency (the paper's classifier also
    weighs its loss by class; its weights were hard-coded for one dataset). Linear probe only."""
    n_neighbors: int = 20
    """Neighbours that vote, by cosine similarity of standardised embeddings; kNN probe only."""
    drop_classes: tuple[str, ...] = ()
    """Classes (labels as strings) whose samples are left out before the split, e.g. a background class."""

    def __post_init__(self) -> None:
        if self.probe not in ("linear", "knn"):
            raise DownstreamError(f"probe must be 'linear' or 'knn', got {self.probe!r}.")
        if self.class_weight not in ("balanced", "none"):
            raise DownstreamError(f"class_weight must be 'balanced' or 'none', got {self.class_weight!r}.")
        if self.inverse_regularization <= 0 or self.max_iter < 1 or self.n_neighbors < 1:
            raise DownstreamError("inverse_regularization must be > 0, and max_iter and n_neighbors ≥ 1.")
        if not all(isinstance(c, str) for c in self.drop_classes):
            raise DownstreamError(f"drop_classes must hold class names as strings, got {self.drop_classes!r}.")


def make_probe(config: ClassifyConfig) -> Pipeline:
    """Build the unfitted scikit-learn pipeline named by ``config.probe``.

    Parameters
    ----------
    config : ClassifyConfig

    Returns
    -------
    sklearn.pipeline.Pipeline
        ``StandardScaler`` followed by ``LogisticRegression`` or ``KNeighborsClassifier``
        (cosine metric); the scaler is fitted on the training fold only.
    """
    if config.probe == "linear":
        classifier = LogisticRegression(
            C=config.inverse_regularization,
            max_iter=config.max_iter,
            class_weight=None if config.class_weight == "none" else "balanced",
        )
    else:
        classifier = KNeighborsClassifier(n_neighbors=config.n_neighbors, metric="cosine")
    return make_pipeline(StandardScaler(), classifier)


def drop_classes(
    embeddings: np.ndarray, labels: np.ndarray, groups: np.ndarray, classes: tuple[str, ...]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Leave out the samples of ``classes`` (compared as strings); a class that does not occur is an error."""
    if not classes:
        return embeddings, labels, groups
    names = np.asarray(labels).astype(str)
    unknown = sorted(set(classes) - set(names))
    if unknown:
        raise DownstreamError(f"no class {', '.join(unknown)} to drop; the classes are {', '.join(np.unique(names))}.")
    keep = ~np.isin(names, classes)
    return np.asarray(embeddings)[keep], np.asarray(labels)[keep], np.asarray(groups)[keep]


def rare_classes(labels: np.ndarray, groups: np.ndarray, n_splits: int) -> dict[str, int]:
    """Classes (as strings) that occur in fewer groups than ``n_splits``, with their group counts.

    Grouped stratified folds cannot put such a class in every test fold (Kather 2016's background tiles
    come from 2 slides, fewer than 5 folds).
    """
    names, groups = np.asarray(labels).astype(str), np.asarray(groups)
    counts = {str(c): len(np.unique(groups[names == c])) for c in np.unique(names)}
    return {c: n for c, n in counts.items() if n < n_splits}


def _fold_proba(probe: Pipeline, x_test: np.ndarray, n_classes: int) -> np.ndarray:
    # A grouped training fold can lack a class; its column stays 0 so columns match class indices.
    proba = np.zeros((len(x_test), n_classes))
    proba[:, probe.classes_] = probe.predict_proba(x_test)
    return proba


def classify_embeddings(
    embeddings: np.ndarray,
    labels: np.ndarray,
    groups: np.ndarray,
    config: ClassifyConfig | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> ClassificationReport:
    """Cross-validate a probe on frozen embeddings, splitting by group.

    Parameters
    ----------
    embeddings : np.ndarray, shape (n, d), float
        One embedding per sample (tile or graph), from any encoder.
    labels : np.ndarray, shape (n,), int or str
        Class of each sample.
    groups : np.ndarray, shape (n,), int or str
        Slide or patient of each sample; no group is in both the training and the test part
        of a fold.
    config : ClassifyConfig, optional
        Defaults to ``ClassifyConfig()``: linear probe, 5 folds.
    progress : callable, optional
        Called as ``progress(done, total)`` folds after each fold.

    Returns
    -------
    ClassificationReport
        Per-fold and mean ± std accuracy, macro/weighted F1 and macro one-vs-rest AUC, and the
        pooled per-class report over out-of-fold predictions.

    Raises
    ------
    DownstreamError
        If the inputs are inconsistent (see :func:`~hmgdm_core.downstream.inputs.check_classification`),
        a class has fewer groups than folds, or a training fold is smaller than ``n_neighbors``.
    """
    config = ClassifyConfig() if config is None else config
    data = check_classification(*drop_classes(embeddings, labels, groups, config.drop_classes))
    codes, class_names = encode_labels(data.labels)
    # The labels themselves (not their codes) stratify, so an error names the class as the user knows it.
    folds = grouped_folds(data.labels, data.groups, config.n_splits, config.seed)
    proba = np.zeros((len(codes), len(class_names)))
    for done, (train, test) in enumerate(folds, start=1):
        if config.probe == "knn" and len(train) < config.n_neighbors:
            raise DownstreamError(
                f"A training fold has {len(train)} samples, fewer than n_neighbors={config.n_neighbors}."
            )
        probe = make_probe(config).fit(data.embeddings[train], codes[train])
        proba[test] = _fold_proba(probe, data.embeddings[test], len(class_names))
        if progress is not None:
            progress(done, len(folds))
    method = "linear probe" if config.probe == "linear" else f"{config.n_neighbors}-NN probe"
    return build_report(method, asdict(config), codes, class_names, [test for _, test in folds], proba)
