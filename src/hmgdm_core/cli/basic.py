"""``hmgdm info``, ``hmgdm demo`` and ``hmgdm export``."""

from __future__ import annotations

import argparse
import json

__all__ = ["add_demo", "add_export", "add_info"]


def _info(args: argparse.Namespace) -> None:
    from hmgdm_core.info import environment_report, format_report

    report = environment_report()
    print(json.dumps(report, indent=2) if args.json else format_report(report))


def _demo(args: argparse.Namespace) -> None:
    from tqdm import tqdm

    from hmgdm_core.cli.bars import bar
    from hmgdm_core.demo import run_demo

    with bar("demo", "stage") as progress:
        run_demo(args.out, args.slide, steps=args.steps, echo=tqdm.write, progress=progress)


def _export(args: argparse.Namespace) -> None:
    from pathlib import Path

    from hmgdm_core.errors import InputError
    from hmgdm_core.graph import load_graph

    out = Path(args.out)
    if out.is_dir():
        raise InputError(f"--out {out} is a folder: give a file name (e.g. {out / 'graph.geojson'})")
    if out.exists() and not args.overwrite:
        raise InputError(f"--out {out} exists: pass --overwrite to replace it, or choose another name")
    graph = load_graph(args.graph)
    if args.format == "qupath":
        from hmgdm_core.io.qupath import write_graph_qupath

        path = write_graph_qupath(graph, args.out)
    else:
        from hmgdm_core.io.tiatoolbox_json import write_graph_tiatoolbox

        path = write_graph_tiatoolbox(graph, args.out)
    print(f"{graph.num_nodes} nodes and {graph.edge_index.shape[1] // 2} edges written to {path} ({args.format})")


def add_info(sub: argparse._SubParsersAction) -> None:
    """Register ``hmgdm info``."""
    info = sub.add_parser("info", help="versions and compute devices (paste this into bug reports)")
    info.add_argument("--json", action="store_true", help="print JSON instead of text")
    info.set_defaults(func=_info)


def add_demo(sub: argparse._SubParsersAction) -> None:
    """Register ``hmgdm demo``."""
    demo = sub.add_parser("demo", help="run the pipeline on the bundled sample slide (offline, CPU)")
    demo.add_argument("--out", default="hmgdm-demo", help="output folder (default: ./hmgdm-demo)")
    demo.add_argument("--slide", default=None, help="use this slide instead of the bundled sample")
    demo.add_argument("--steps", type=int, default=60, help="pre-training steps of the demonstration run")
    demo.set_defaults(func=_demo)


def add_export(sub: argparse._SubParsersAction) -> None:
    """Register ``hmgdm export``."""
    export = sub.add_parser("export", help="write a graph as QuPath GeoJSON or tiatoolbox graph JSON")
    export.add_argument("graph", help="graph file written by `hmgdm demo` or `hmgdm_core.graph.save_graph`")
    export.add_argument("--out", required=True, help="output file (.geojson or .json)")
    export.add_argument(
        "--format",
        choices=("qupath", "tiatoolbox"),
        default="qupath",
        help="qupath: GeoJSON detections and edges (default); tiatoolbox: its graph JSON",
    )
    export.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    export.set_defaults(func=_export)
