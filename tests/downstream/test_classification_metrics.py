import numpy as np
import pytest
from sklearn.metrics import accuracy_score, f1_score, roc_auc_score

from hmgdm_core.downstream.metrics import FoldMetrics, fold_metrics, macro_ovr_auc, pooled_report, summarize


def _predictions(seed: int = 0, n: int = 200, n_classes: int = 4) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, n_classes, n)
    logits = rng.normal(size=(n, n_classes))
    logits[np.arange(n), y] += 1.5
    proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return y, proba


def test_fold_metrics_equal_scikit_learn_when_all_classes_are_present() -> None:
    y, proba = _predictions()
    metrics = fold_metrics(y, proba)
    y_pred = proba.argmax(1)
    assert metrics.accuracy == pytest.approx(accuracy_score(y, y_pred))
    assert metrics.macro_f1 == pytest.approx(f1_score(y, y_pred, average="macro"))
    assert metrics.weighted_f1 == pytest.approx(f1_score(y, y_pred, average="weighted"))
    assert metrics.macro_auc == pytest.approx(roc_auc_score(y, proba, multi_class="ovr", average="macro"))
    assert metrics.auc_classes == 4
    assert metrics.n_test == len(y)


def test_absent_class_is_left_out_of_auc_and_of_f1_unless_predicted() -> None:
    y, proba = _predictions()
    keep = y != 3
    y, proba = y[keep], proba[keep]
    auc, n_classes = macro_ovr_auc(y, proba)
    expected = np.mean([roc_auc_score(y == c, proba[:, c]) for c in range(3)])
    assert n_classes == 3
    assert auc == pytest.approx(expected)
    # Class 3 is never true here; if it is never predicted either, F1 averages over classes 0-2.
    proba_no3 = proba.copy()
    proba_no3[:, 3] = 0
    metrics = fold_metrics(y, proba_no3)
    y_pred = proba_no3.argmax(1)
    assert metrics.macro_f1 == pytest.approx(f1_score(y, y_pred, labels=[0, 1, 2], average="macro"))
    # When it is predicted, the false alarms count as a fourth class with F1 = 0.
    proba_false_alarm = proba_no3.copy()
    proba_false_alarm[:3, 3] = 2.0
    y_pred = proba_false_alarm.argmax(1)
    per_class = f1_score(y, y_pred, labels=[0, 1, 2, 3], average=None, zero_division=0)
    assert per_class[3] == 0
    assert fold_metrics(y, proba_false_alarm).macro_f1 == pytest.approx(per_class.mean())


def test_single_class_fold_has_no_auc() -> None:
    y = np.zeros(5, dtype=int)
    proba = np.tile([0.7, 0.3], (5, 1))
    metrics = fold_metrics(y, proba)
    assert metrics.macro_auc is None
    assert metrics.auc_classes == 0
    assert "macro_auc" not in summarize([metrics])


def test_summary_is_mean_and_population_std() -> None:
    folds = [FoldMetrics(a, a, a, None, 0, 10) for a in (0.5, 0.7, 0.9)]
    summary = summarize(folds)
    assert summary["accuracy"].mean == pytest.approx(0.7)
    assert summary["accuracy"].std == pytest.approx(np.std([0.5, 0.7, 0.9]))


def test_pooled_report_has_every_class_and_a_consistent_confusion_matrix() -> None:
    y, proba = _predictions()
    names = ["a", "b", "c", "d"]
    report = pooled_report(y, proba, names)
    confusion = np.array(report["confusion"])
    assert confusion.sum() == len(y)
    assert np.array_equal(confusion.sum(axis=1), np.bincount(y, minlength=4))
    for c, name in enumerate(names):
        recall = confusion[c, c] / confusion[c].sum()
        assert report["per_class"][name]["recall"] == pytest.approx(recall)
    assert report["metrics"]["accuracy"] == pytest.approx(np.trace(confusion) / len(y))
