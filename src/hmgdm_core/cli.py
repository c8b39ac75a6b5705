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

    run_demo(args.out, args.slide, steps=args.steps)


def _write_report(text: str, path: str | None) -> None:
    """Write ``text`` to ``path`` atomically (temporary file, then rename), if a path is given."""
    if path is None:
        return
    from hmgdm_core.io.atomic import write_text_atomic

    print(f"report written to {write_text_atomic(path, text)}")


def _graph(args: argparse.Namespace) -> None:
    from tqdm import tqdm

    from hmgdm_core.graph import GraphConfig, dataset_from_folder, dataset_from_region
    from hmgdm_core.io import open_slide

    config = GraphConfig(kind=args.kind)
    if args.folder:
        with tqdm(desc="graphs", unit="tile") as bar:

            def progress(done: int, total: int) -> None:
                bar.total = total
                bar.update(done - bar.n)

            dataset = dataset_from_folder(args.source, args.mpp, config, progress=progress)
    else:
        with open_slide(args.source, mpp=args.slide_mpp) as slide:
            region = slide.region(*args.region, mpp=args.mpp) if args.region else slide.full_region(mpp=args.mpp)
            dataset = dataset_from_region(slide.read(region), region, args.patch, config, group=slide.path.stem)
    path = dataset.save(args.out)
    nodes = [g.num_nodes for g in dataset]
    print(f"{len(dataset)} {args.kind} graphs ({sum(nodes)} nodes, {min(nodes, default=0)}-{max(nodes, default=0)} "
          f"per graph) written to {path}")


def _pretrain(args: argparse.Namespace) -> None:
    from dataclasses import replace
    from pathlib import Path

    from tqdm import tqdm

    from hmgdm_core.graph import GraphDataset
    from hmgdm_core.train import Cancelled, CheckpointWritten, Finished, PretrainConfig, Started, StepDone, pretrain

    config = PretrainConfig.from_json(Path(args.config).read_text()) if args.config else PretrainConfig()
    changes = {k: v for k, v in (("max_steps", args.steps), ("batch_size", args.batch_size),
                                 ("device", args.device)) if v is not None}
    config = replace(config, train=replace(config.train, **changes))
    dataset = GraphDataset.load(args.dataset)
    bar = None
    try:
        for event in pretrain(dataset, config, args.out, resume=args.resume):
            if isinstance(event, Started):
                print(f"pre-training on {event.device}: {event.num_graphs} graphs, steps {event.start_step}"
                      f" -> {event.total_steps}, {event.world_size} process(es)")
                bar = tqdm(total=event.total_steps, initial=event.start_step, unit="step")
            elif isinstance(event, StepDone) and bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{event.loss:.4f}", node=f"{event.node:.4f}", edge=f"{event.edge:.4f}",
                                lr=f"{event.lr:.1e}")
            elif isinstance(event, CheckpointWritten) and bar is not None:
                bar.write(f"checkpoint {event.path}")
            elif isinstance(event, Finished | Cancelled):
                print(f"\n{type(event).__name__.lower()} at step {event.step}; checkpoint {event.checkpoint}")
    finally:
        if bar is not None:
            bar.close()


def _embed(args: argparse.Namespace) -> None:
    import numpy as np

    from hmgdm_core.embed import embed_dataset
    from hmgdm_core.graph import GraphDataset
    from hmgdm_core.train import load_checkpoint

    model = load_checkpoint(args.checkpoint).model
    dataset = GraphDataset.load(args.dataset)
    embedding = embed_dataset(model, dataset, batch_size=args.batch_size, device=args.device)
    arrays = {"embeddings": embedding.patch}
    graphs = list(dataset)
    if graphs and all(getattr(g, "y", None) is not None for g in graphs):
        arrays["labels"] = np.array([int(g.y.reshape(-1)[0]) for g in graphs])
    if graphs and all(getattr(g, "group", None) is not None for g in graphs):
        arrays["groups"] = np.array([str(g.group) for g in graphs])
    np.savez(args.out, **arrays)
    extra = " with labels and groups (ready for `hmgdm classify`)" if len(arrays) == 3 else ""
    print(f"{embedding.patch.shape[0]} embeddings of {embedding.patch.shape[1]} numbers written to {args.out}{extra}")


def _export(args: argparse.Namespace) -> None:
    from hmgdm_core.graph import load_graph

    graph = load_graph(args.graph)
    if args.format == "qupath":
        from hmgdm_core.io.qupath import write_graph_qupath

        path = write_graph_qupath(graph, args.out)
    else:
        from hmgdm_core.io.tiatoolbox_json import write_graph_tiatoolbox

        path = write_graph_tiatoolbox(graph, args.out)
    print(f"{graph.num_nodes} nodes and {graph.edge_index.shape[1] // 2} edges written to {path} ({args.format})")


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
    demo.add_argument("--steps", type=int, default=60, help="pre-training steps of the demonstration run")
    demo.set_defaults(func=_demo)

    graph = sub.add_parser("graph", help="build a graph dataset from a slide region cut into patches, or a tile folder")
    graph.add_argument("source", help="a slide file, or with --folder a folder of tiles with index.csv")
    graph.add_argument("--out", required=True, help="dataset file to write (.pt, no pickle)")
    graph.add_argument("--kind", choices=("tissue", "nuclei"), default="tissue")
    graph.add_argument("--mpp", type=float, default=1.0, help="µm/px to analyse at (tiles: their µm/px)")
    graph.add_argument("--patch", type=int, default=128, help="patch side in analysed pixels")
    graph.add_argument("--region", type=int, nargs=4, metavar=("Y", "X", "H", "W"),
                       help="level-0 box (default: the whole slide)")
    graph.add_argument("--slide-mpp", type=float, default=None, help="level-0 µm/px if the file lacks it")
    graph.add_argument("--folder", action="store_true", help="source is a folder of tiles listed in index.csv")
    graph.set_defaults(func=_graph)

    pretrain = sub.add_parser("pretrain", help="pre-train H-MGDM on a graph dataset (torchrun for several GPUs)")
    pretrain.add_argument("dataset", help="dataset file written by `hmgdm graph`")
    pretrain.add_argument("--out", default="hmgdm-pretrain", help="run folder for checkpoints")
    pretrain.add_argument("--config", default=None, help="PretrainConfig JSON (default: the paper's settings)")
    pretrain.add_argument("--steps", type=int, default=None, help="stop after this many steps")
    pretrain.add_argument("--batch-size", type=int, default=None)
    pretrain.add_argument("--device", default=None, help="auto, cpu, cuda, cuda:<i> or mps")
    pretrain.add_argument("--resume", default=None, help="checkpoint or run folder to continue")
    pretrain.set_defaults(func=_pretrain)

    embed = sub.add_parser("embed", help="patch embeddings of a graph dataset with a pre-trained model")
    embed.add_argument("checkpoint", help="checkpoint written by `hmgdm pretrain`")
    embed.add_argument("dataset", help="dataset file written by `hmgdm graph`")
    embed.add_argument("--out", required=True, help=".npz to write (embeddings, and labels/groups if known)")
    embed.add_argument("--batch-size", type=int, default=32)
    embed.add_argument("--device", default="auto")
    embed.set_defaults(func=_embed)

    export = sub.add_parser("export", help="write a graph as QuPath GeoJSON or tiatoolbox graph JSON")
    export.add_argument("graph", help="graph file written by `hmgdm demo` or `hmgdm_core.graph.save_graph`")
    export.add_argument("--out", required=True, help="output file (.geojson or .json)")
    export.add_argument("--format", choices=("qupath", "tiatoolbox"), default="qupath")
    export.set_defaults(func=_export)

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
