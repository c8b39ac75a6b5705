"""The ``hmgdm`` command line: each subcommand is a thin call of a core function."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from hmgdm_core.errors import InputError

__all__ = ["main"]


def _info(args: argparse.Namespace) -> None:
    from hmgdm_core.info import environment_report, format_report

    report = environment_report()
    print(json.dumps(report, indent=2) if args.json else format_report(report))


def _demo(args: argparse.Namespace) -> None:
    from hmgdm_core.demo import run_demo

    run_demo(args.out, args.slide)


def _write_report(text: str, path: str | None) -> None:
    """Write ``text`` to ``path`` atomically (temporary file, then rename), if a path is given."""
    if path is None:
        return
    import os
    from pathlib import Path

    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, target)
    print(f"report written to {target}")


def _classify(args: argparse.Namespace) -> None:
    from hmgdm_core.downstream import ClassifyConfig, classify_embeddings, load_classification_npz

    data = load_classification_npz(args.embeddings)
    config = ClassifyConfig(probe=args.probe, n_splits=args.folds, seed=args.seed, n_neighbors=args.neighbors)
    report = classify_embeddings(data.embeddings, data.labels, data.groups, config)
    print(report.to_markdown())
    _write_report(report.to_json(), args.out)


def _survival(args: argparse.Namespace) -> None:
    from hmgdm_core.downstream import load_survival_npz
    from hmgdm_core.downstream.survival import SurvivalConfig, survival_cv

    data = load_survival_npz(args.cohort)
    config = SurvivalConfig(n_splits=args.folds, epochs=args.epochs, seed=args.seed, device=args.device)
    report = survival_cv(data.bags, data.times, data.events, data.groups, config, plot_path=args.plot)
    print(report.to_markdown())
    _write_report(report.to_json(), args.out)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``hmgdm`` with one subparser per command."""
    from hmgdm_core import __version__

    parser = argparse.ArgumentParser(
        prog="hmgdm", description="H-MGDM for H&E slides: graphs, pretraining, embeddings."
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    info = sub.add_parser("info", help="versions and compute devices (paste this into bug reports)")
    info.add_argument("--json", action="store_true", help="print JSON instead of text")
    info.set_defaults(func=_info)

    demo = sub.add_parser("demo", help="run the pipeline on the bundled sample slide (offline, CPU)")
    demo.add_argument("--out", default="hmgdm-demo", help="output folder (default: ./hmgdm-demo)")
    demo.add_argument("--slide", default=None, help="use this slide instead of the bundled sample")
    demo.set_defaults(func=_demo)

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

    survival = sub.add_parser("survival", help="attention-MIL Cox model with c-index and Kaplan-Meier analysis")
    survival.add_argument("cohort", help=".npz with embeddings (N, d), bag (N,), times (B,), events (B,)")
    survival.add_argument("--folds", type=int, default=5)
    survival.add_argument("--epochs", type=int, default=100)
    survival.add_argument("--seed", type=int, default=1)
    survival.add_argument("--device", default="cpu", help="cpu, cuda, cuda:<i> or mps")
    survival.add_argument("--plot", default=None, help="write the Kaplan-Meier plot (PNG) here")
    survival.add_argument("--out", default=None, help="write the JSON report here")
    survival.set_defaults(func=_survival)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``hmgdm``; bad input ends with a one-line message and exit status 2.

    Parameters
    ----------
    argv : sequence of str, optional
        Arguments without the program name; defaults to ``sys.argv[1:]``.

    Returns
    -------
    int
        Exit status.
    """
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except InputError as err:
        print(f"hmgdm {args.command}: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
