"""Classification metrics per fold, their mean ± std, and the pooled per-class report.

All metrics come from scikit-learn. Two choices matter when a test fold lacks a class, which
grouped splits make common (a class may live on few slides):

* **F1** uses scikit-learn's default label set, the classes that are true *or* predicted in
  the fold. A class absent from the fold and never predicted is left out of that fold's
  macro/weighted mean; one predicted but absent scores F1 = 0 and counts (a false alarm is
  an error).
* **Macro one-vs-rest AUC** averages the per-class AUCs of the classes that have both
  positives and negatives in the fold; AUC is undefined without positives, so an absent class
  is left out rather than scored 0 or 1. :attr:`FoldMetrics.auc_classes` records how many
  classes were averaged. The pooled report also gives the AUC over all out-of-fold predictions,
  where every class is present.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from sklearn.metrics import accuracy_score, classification_report, confusion_matrix, f1_score, roc_auc_score

__all__ = ["FoldMetrics", "MeanStd", "fold_metrics", "macro_ovr_auc", "pooled_report", "summarize"]


@dataclass(frozen=True)
class FoldMetrics:
    """Test metrics of one fold; fractions in [0, 1]."""

    accuracy: float
    """Fraction of test samples whose arg-max class is right."""
    macro_f1: float
    """Unweighted mean of per-class F1 over classes true or predicted in the fold."""
    weighted_f1: float
    """Per-class F1 weighted by the class's test support."""
    macro_auc: float | None
    """Mean one-vs-rest ROC AUC over classes with positives and negatives; None if there are none."""
    auc_classes: int
    """Number of classes averaged into ``macro_auc``."""
    n_test: int
    """Number of test samples."""


@dataclass(frozen=True)
class MeanStd:
    """Mean and population standard deviation (``ddof=0``) of a metric over folds."""

    mean: float
    std: float


def macro_ovr_auc(y_true: np.ndarray, proba: np.ndarray) -> tuple[float | None, int]:
    """Macro one-vs-rest ROC AUC over the classes that are present in ``y_true``.

    Parameters
    ----------
    y_true : np.ndarray, shape (n,), int
        True class indices in ``[0, C)``.
    proba : np.ndarray, shape (n, C), float
        Predicted class probabilities (any scores whose order ranks the class).

    Returns
    -------
    auc : float or None
        Mean of :func:`sklearn.metrics.roc_auc_score` over each class ``c`` with at least one
        positive and one negative sample; None when no class qualifies.
    n_classes : int
        How many classes were averaged.
    """
    aucs = []
    for c in range(proba.shape[1]):
        positives = y_true == c
        if positives.any() and not positives.all():
            aucs.append(roc_auc_score(positives, proba[:, c]))
    return (float(np.mean(aucs)) if aucs else None), len(aucs)


def fold_metrics(y_true: np.ndarray, proba: np.ndarray) -> FoldMetrics:
    """Accuracy, macro/weighted F1 and macro one-vs-rest AUC of one test fold.

    Parameters
    ----------
    y_true : np.ndarray, shape (n,), int
        True class indices in ``[0, C)``.
    proba : np.ndarray, shape (n, C), float
        Predicted probabilities; the prediction is the arg-max column.

    Returns
    -------
    FoldMetrics
    """
    y_pred = proba.argmax(axis=1)
    auc, auc_classes = macro_ovr_auc(y_true, proba)
    return FoldMetrics(
        accuracy=float(accuracy_score(y_true, y_pred)),
        macro_f1=float(f1_score(y_true, y_pred, average="macro", zero_division=0)),
        weighted_f1=float(f1_score(y_true, y_pred, average="weighted", zero_division=0)),
        macro_auc=auc,
        auc_classes=auc_classes,
        n_test=len(y_true),
    )


def summarize(folds: list[FoldMetrics]) -> dict[str, MeanStd]:
    """Mean ± std over folds of each metric; folds with no AUC are left out of the AUC.

    Parameters
    ----------
    folds : list of FoldMetrics

    Returns
    -------
    dict of str to MeanStd
        Keys ``accuracy``, ``macro_f1``, ``weighted_f1`` and, if any fold has one, ``macro_auc``.
    """
    summary = {}
    for name in ("accuracy", "macro_f1", "weighted_f1", "macro_auc"):
        values = [getattr(fold, name) for fold in folds if getattr(fold, name) is not None]
        if values:
            summary[name] = MeanStd(float(np.mean(values)), float(np.std(values)))
    return summary


def pooled_report(y_true: np.ndarray, proba: np.ndarray, class_names: list[str]) -> dict:
    """Per-class precision/recall/F1, confusion matrix and AUC over pooled out-of-fold predictions.

    Parameters
    ----------
    y_true : np.ndarray, shape (n,), int
        True class indices of every sample, each predicted once, by the fold that tested it.
    proba : np.ndarray, shape (n, C), float
        Out-of-fold predicted probabilities.
    class_names : list of str, length C

    Returns
    -------
    dict
        ``per_class`` (scikit-learn's ``classification_report(output_dict=True)``, keyed by class
        name, plus its ``macro avg``/``weighted avg`` rows), ``confusion`` (C × C nested list;
        row = true class, column = predicted), and ``metrics``: the :class:`FoldMetrics` of the
        pooled predictions, as a dict.
    """
    labels = list(range(len(class_names)))
    y_pred = proba.argmax(axis=1)
    per_class = classification_report(
        y_true, y_pred, labels=labels, target_names=class_names, output_dict=True, zero_division=0
    )
    return {
        "per_class": per_class,
        "confusion": confusion_matrix(y_true, y_pred, labels=labels).tolist(),
        "metrics": asdict(fold_metrics(y_true, proba)),
    }
