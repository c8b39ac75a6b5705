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
