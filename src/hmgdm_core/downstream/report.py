"""The result of a cross-validated classification, as JSON and as a Markdown table."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

import numpy as np

from hmgdm_core.downstream.metrics import FoldMetrics, MeanStd, fold_metrics, pooled_report, summarize

__all__ = ["ClassificationReport", "build_report", "encode_labels"]


def encode_labels(labels: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """Map labels of any sortable dtype to class indices.

    Parameters
    ----------
    labels : np.ndarray, shape (n,)

    Returns
    -------
    codes : np.ndarray, shape (n,), int64
        Index of each label in the sorted list of distinct labels.
    class_names : list of str
        The distinct labels, sorted, as strings; ``class_names[codes[i]]`` is sample ``i``'s class.
    """
    classes, codes = np.unique(np.asarray(labels), return_inverse=True)
    return codes.astype(np.int64), [str(c) for c in classes]


@dataclass(frozen=True)
class ClassificationReport:
    """Cross-validated test metrics of one classifier on one set of embeddings."""

    method: str
    """What was evaluated, e.g. ``"linear probe"``."""
    config: dict
    """The configuration dataclass, as a dict."""
    class_names: list[str]
    """Class ``c`` of every index below is ``class_names[c]``."""
    folds: list[FoldMetrics]
    """Test metrics of each fold."""
    fold_class_counts: list[list[int]]
    """Test samples per class in each fold (folds × classes): shows which classes a fold lacked."""
    summary: dict[str, MeanStd]
    """Mean ± std over folds of accuracy, macro_f1, weighted_f1 and macro_auc."""
    pooled: dict
    """Per-class report, confusion matrix and metrics over all out-of-fold predictions."""

    def to_dict(self) -> dict:
        """Return the report as JSON-able nested dicts and lists."""
        return asdict(self)

    def to_json(self) -> str:
        """Return the report as an indented JSON string."""
        return json.dumps(self.to_dict(), indent=2)

    def to_markdown(self) -> str:
        """Return the summary, the per-fold metrics and the pooled per-class F1 as Markdown tables."""

        def percent(value: float | None) -> str:
            return "–" if value is None else f"{100 * value:.2f}"

        lines = [
            f"### {self.method}: {len(self.folds)}-fold grouped CV",
            "",
            "| metric | mean ± std (%) |",
            "|---|---|",
        ]
        lines += [f"| {name} | {percent(s.mean)} ± {percent(s.std)} |" for name, s in self.summary.items()]
        lines += [
            "",
            "| fold | n test | accuracy | macro F1 | weighted F1 | macro AUC (classes) |",
            "|---|---|---|---|---|---|",
        ]
        lines += [
            f"| {i} | {f.n_test} | {percent(f.accuracy)} | {percent(f.macro_f1)} | {percent(f.weighted_f1)} "
            f"| {percent(f.macro_auc)} ({f.auc_classes}) |"
            for i, f in enumerate(self.folds)
        ]
        lines += ["", "| class | precision | recall | F1 | support |", "|---|---|---|---|---|"]
        for name in self.class_names:
            row = self.pooled["per_class"][name]
            lines.append(
                f"| {name} | {percent(row['precision'])} | {percent(row['recall'])} | {percent(row['f1-score'])} "
                f"| {int(row['support'])} |"
            )
        return "\n".join(lines) + "\n"


def build_report(
    method: str,
    config: dict,
    codes: np.ndarray,
    class_names: list[str],
    test_folds: list[np.ndarray],
    proba: np.ndarray,
) -> ClassificationReport:
    """Assemble a report from out-of-fold predictions.

    Parameters
    ----------
    method : str
        Name of the evaluated classifier.
    config : dict
        Its configuration.
    codes : np.ndarray, shape (n,), int
        True class index of each sample.
    class_names : list of str, length C
    test_folds : list of np.ndarray
        Test indices of each fold; together they cover every sample once.
    proba : np.ndarray, shape (n, C)
        Out-of-fold class probabilities: row ``i`` comes from the fold that tested sample ``i``.

    Returns
    -------
    ClassificationReport
    """
    n_classes = len(class_names)
    folds = [fold_metrics(codes[test], proba[test]) for test in test_folds]
    counts = [np.bincount(codes[test], minlength=n_classes).tolist() for test in test_folds]
    return ClassificationReport(
        method=method,
        config=config,
        class_names=class_names,
        folds=folds,
        fold_class_counts=counts,
        summary=summarize(folds),
        pooled=pooled_report(codes, proba, class_names),
    )
