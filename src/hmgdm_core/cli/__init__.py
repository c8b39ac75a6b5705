"""The ``hmgdm`` command line: each subcommand is a thin call of a core function."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from hmgdm_core.cli.basic import add_demo, add_export, add_info
from hmgdm_core.cli.evaluate import add_classify, add_survival
from hmgdm_core.cli.finetune import add_finetune
from hmgdm_core.cli.pretrained import add_pretrained
from hmgdm_core.cli.slides import add_embed, add_graph, add_pipeline
from hmgdm_core.cli.train import add_pretrain
from hmgdm_core.errors import HmgdmError, InputError

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``hmgdm`` with one subparser per command."""
    parser = argparse.ArgumentParser(
        prog="hmgdm", description="H-MGDM for H&E slides: graphs, pretraining, embeddings."
    )
    parser.add_argument("--version", action=_Version, nargs=0, help="show the version and exit")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in (add_info, add_demo, add_graph, add_pretrain, add_embed, add_pipeline, add_export, add_classify,
                add_survival, add_pretrained, add_finetune):
        add(sub)
    return parser


class _Version(argparse.Action):
    """``--version``, looking the version up only when asked (see ``hmgdm_core.__getattr__``)."""

    def __call__(
        self, parser: argparse.ArgumentParser, namespace: object, values: object, option: str | None = None
    ) -> None:
        from hmgdm_core import __version__

        print(f"{parser.prog} {__version__}")  # on stdout, as argparse's own version action does
        parser.exit()


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``hmgdm``; bad input ends with a one-line message and exit status 2.

    Parameters
    ----------
    argv : sequence of str, optional
        Arguments without the program name; defaults to ``sys.argv[1:]``.

    Returns
    -------
    int
        Exit status: 0 on success, 1 when some items of a batch failed (each is reported and
        recorded in the manifest) or training could not go on, 2 on bad input, 130 on Ctrl-C
        and 143 on SIGTERM (a pre-training run saves a checkpoint first).
    """
    args = build_parser().parse_args(argv)
    try:
        status = args.func(args)
    except HmgdmError as err:  # every error the project raises on purpose: one line, no traceback
        print(f"hmgdm {args.command}: error: {_one_line(err)}", file=sys.stderr)
        return 2 if isinstance(err, InputError) else 1
    except KeyboardInterrupt:
        print(f"hmgdm {args.command}: interrupted", file=sys.stderr)
        return 130
    return status or 0


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split()) or type(error).__name__
