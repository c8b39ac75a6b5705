"""``hmgdm classify`` and ``hmgdm survival``: downstream evaluation of frozen embeddings."""

from __future__ import annotations

import argparse

__all__ = ["add_classify", "add_survival"]


def _write_report(text: str, path: str | None) -> None:
    """Write ``text`` to ``path`` atomically (temporary file, then rename), if a path is given."""
    if path is None:
        return
    from hmgdm_core.io.atomic import write_text_atomic

    print(f"report written to {write_text_atomic(path, text)}")


def _class_names(path: str, labels):
    """The labels as class names where the file has ``label_names`` (written by `hmgdm embed`), else as given."""
    import numpy as np

    with np.load(path, allow_pickle=False) as arrays:
        names = arrays["label_names"] if "label_names" in arrays.files else None
    return labels if names is None or names.shape != labels.shape else names


def _classify(args: argparse.Namespace) -> None:
    import sys

    from hmgdm_core.cli.bars import bar
    from hmgdm_core.downstream import ClassifyConfig, classify_embeddings, load_classification_npz
    from hmgdm_core.downstream.classify import drop_classes, rare_classes

    data = load_classification_npz(args.embeddings)
    labels = _class_names(args.embeddings, data.labels)
    dropped = tuple(args.drop_classes)
    _, kept, groups = drop_classes(data.embeddings, labels, data.groups, dropped)
    rare = rare_classes(kept, groups, args.folds)
    if rare and not args.keep_rare_classes:
        for name, count in rare.items():
            print(f"hmgdm classify: warning: class {name} left out: it occurs in {count} group(s), fewer than "
                  f"the {args.folds} folds (--keep-rare-classes to refuse instead)", file=sys.stderr)
        dropped += tuple(rare)
    config = ClassifyConfig(probe=args.probe, n_splits=args.folds, seed=args.seed, n_neighbors=args.neighbors,
                            drop_classes=dropped)
    with bar("classify", "fold") as progress:
        report = classify_embeddings(data.embeddings, labels, data.groups, config, progress=progress)
    print(report.to_markdown())
    _write_report(report.to_json(), args.out)


def _survival(args: argparse.Namespace) -> None:
    from hmgdm_core.cli.bars import bar
    from hmgdm_core.downstream import load_survival_npz
    from hmgdm_core.downstream.survival import SurvivalConfig, survival_cv

    data = load_survival_npz(args.cohort)
    config = SurvivalConfig(n_splits=args.folds, epochs=args.epochs, seed=args.seed, device=args.device)
    with bar("survival", "fold") as progress:
        report = survival_cv(data.bags, data.times, data.events, data.groups, config, plot_path=args.plot,
                             progress=progress)
    print(report.to_markdown())
    _write_report(report.to_json(), args.out)


def add_classify(sub: argparse._SubParsersAction) -> None:
    """Register ``hmgdm classify``."""
    classify = sub.add_parser(
        "classify", help="linear/kNN probe with slide-grouped cross-validation on frozen embeddings"
    )
    classify.add_argument("embeddings", help=".npz with embeddings (n, d), labels (n,), groups (n,) "
                                             "[, label_names (n,)], e.g. from `hmgdm embed ... --out all.npz`")
    classify.add_argument("--probe", choices=("linear", "knn"), default="linear",
                          help="linear: standardise + logistic regression (default); knn: cosine k-NN vote")
    classify.add_argument("--folds", type=int, default=5, help="folds of the slide-grouped stratified CV (default 5)")
    classify.add_argument("--seed", type=int, default=0, help="seed of the fold shuffle (default 0)")
    classify.add_argument("--drop-classes", nargs="+", default=[], metavar="CLASS",
                          help="leave out these classes (names, or labels where the file has no names)")
    classify.add_argument("--keep-rare-classes", action="store_true",
                          help="refuse classes found in fewer groups than folds instead of leaving them out "
                               "with a warning")
    classify.add_argument("--neighbors", type=int, default=20, help="k of the kNN probe")
    classify.add_argument("--out", default=None, help="write the JSON report here")
    classify.set_defaults(func=_classify)


def add_survival(sub: argparse._SubParsersAction) -> None:
    """Register ``hmgdm survival``."""
    survival = sub.add_parser("survival", help="attention-MIL Cox model with c-index and Kaplan-Meier analysis")
    survival.add_argument("cohort", help=".npz with embeddings (N, d), bag (N,), times (B,), events (B,)")
    survival.add_argument("--folds", type=int, default=5, help="folds of the patient-grouped CV (default 5)")
    survival.add_argument("--epochs", type=int, default=100, help="training epochs per fold (default 100)")
    survival.add_argument("--seed", type=int, default=1, help="seed of folds and initialisation (default 1)")
    survival.add_argument("--device", default="cpu", help="cpu, cuda, cuda:<i> or mps")
    survival.add_argument("--plot", default=None, help="write the Kaplan-Meier plot (PNG) here")
    survival.add_argument("--out", default=None, help="write the JSON report here")
    survival.set_defaults(func=_survival)
