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


def _classify(args: argparse.Namespace) -> None:
    from hmgdm_core.cli.bars import bar
    from hmgdm_core.downstream import ClassifyConfig, classify_embeddings, load_classification_npz

    data = load_classification_npz(args.embeddings)
    config = ClassifyConfig(probe=args.probe, n_splits=args.folds, seed=args.seed, n_neighbors=args.neighbors)
    with bar("classify", "fold") as progress:
        report = classify_embeddings(data.embeddings, data.labels, data.groups, config, progress=progress)
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
    classify.add_argument("embeddings", help=".npz with embeddings (n, d), labels (n,), groups (n,)")
    classify.add_argument("--probe", choices=("linear", "knn"), default="linear")
    classify.add_argument("--folds", type=int, default=5)
    classify.add_argument("--seed", type=int, default=0)
    classify.add_argument("--neighbors", type=int, default=20, help="k of the kNN probe")
    classify.add_argument("--out", default=None, help="write the JSON report here")
    classify.set_defaults(func=_classify)


def add_survival(sub: argparse._SubParsersAction) -> None:
    """Register ``hmgdm survival``."""
    survival = sub.add_parser("survival", help="attention-MIL Cox model with c-index and Kaplan-Meier analysis")
    survival.add_argument("cohort", help=".npz with embeddings (N, d), bag (N,), times (B,), events (B,)")
    survival.add_argument("--folds", type=int, default=5)
    survival.add_argument("--epochs", type=int, default=100)
    survival.add_argument("--seed", type=int, default=1)
    survival.add_argument("--device", default="cpu", help="cpu, cuda, cuda:<i> or mps")
    survival.add_argument("--plot", default=None, help="write the Kaplan-Meier plot (PNG) here")
    survival.add_argument("--out", default=None, help="write the JSON report here")
    survival.set_defaults(func=_survival)
