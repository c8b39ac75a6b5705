"""``hmgdm graph``, ``hmgdm embed`` and ``hmgdm pipeline``: one slide or dataset, or many in a batch."""

from __future__ import annotations

import argparse
from pathlib import Path

__all__ = ["add_embed", "add_graph", "add_pipeline"]

_UNITS = {"slides": "slide", "patches": "patch", "vae": "step", "pretrain": "step", "datasets": "dataset",
          "graphs": "graph"}


def _summary(results: list, what: str) -> int:
    """Print one line per failed item and a count; exit status 1 when any failed."""
    failed = [r for r in results if r.status == "failed"]
    for r in failed:
        print(f"FAILED {r.name}: {r.error}")
    counts = {s: sum(r.status == s for r in results) for s in ("built", "skipped", "failed")}
    print(f"{what}: {counts['built']} built, {counts['skipped']} already done, {counts['failed']} failed")
    return 1 if failed else 0


def _graph_config(args: argparse.Namespace):
    from hmgdm_core.batch import SlideGraphConfig
    from hmgdm_core.graph import GraphConfig

    return SlideGraphConfig(GraphConfig(kind=args.kind), mpp=args.mpp, patch_size=args.patch,
                            min_tissue=args.min_tissue)


def _graph(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from hmgdm_core.batch import TaskRunner, build_graphs, item_graphs, slide_items
    from hmgdm_core.cli.bars import StageBars, bar
    from hmgdm_core.errors import InputError
    from hmgdm_core.graph import GraphConfig, dataset_from_folder

    if args.folder:
        if len(args.sources) != 1:
            raise InputError("--folder takes one folder of tiles with index.csv")
        with bar("graphs", "tile") as progress:
            dataset = dataset_from_folder(args.sources[0], args.mpp, GraphConfig(kind=args.kind), progress=progress)
        print(f"{len(dataset)} {args.kind} graphs written to {dataset.save(args.out)}")
        return 0
    items = slide_items(args.sources, mpp=args.slide_mpp)
    if args.region:
        if len(items) != 1 or items[0].box is not None:
            raise InputError("--region needs exactly one slide file; give regions of many slides in a CSV")
        items = [replace(items[0], box=tuple(args.region))]
    if len(items) > 1 and args.out.endswith(".pt"):
        raise InputError(f"{len(items)} slides or regions: give --out a folder (one <name>.pt each, resumable)")
    config = _graph_config(args)
    with TaskRunner(args.scheduler, args.workers) as runner, StageBars(_UNITS) as bars:
        if len(items) == 1 and args.out.endswith(".pt"):
            dataset = item_graphs(items[0], config, runner, bars)
            path = dataset.save(args.out)
        else:
            results = build_graphs(items, args.out, config, runner=runner, overwrite=args.overwrite, progress=bars)
    if len(items) == 1 and args.out.endswith(".pt"):
        nodes = [g.num_nodes for g in dataset]
        print(f"{len(dataset)} {args.kind} graphs ({sum(nodes)} nodes, {min(nodes)}-{max(nodes)} per graph) "
              f"written to {path}")
        return 0
    print(f"datasets and manifest.csv in {args.out}")
    return _summary(results, "slides")


def _embed(args: argparse.Namespace) -> int:
    import numpy as np

    from hmgdm_core.batch import dataset_files, embed_datasets, embedding_arrays, load_embedder
    from hmgdm_core.cli.bars import StageBars
    from hmgdm_core.downstream.patch_pooling import pool_patches, stack_rows
    from hmgdm_core.errors import InputError
    from hmgdm_core.graph import GraphDataset
    from hmgdm_core.io.atomic import atomic_path
    from hmgdm_core.pretrained import resolve_checkpoint

    args.checkpoint = str(resolve_checkpoint(args.checkpoint))
    files = dataset_files(args.datasets)
    one_file = args.out.endswith(".npz")
    if args.pool and not one_file:
        raise InputError("--pool writes one row per dataset into one file: give --out a .npz file")
    with StageBars(_UNITS) as bars:
        if one_file and args.pool:  # one row per image or slide (one dataset file each)
            model, inputs, _ = load_embedder(args.checkpoint)
            arrays = stack_rows([pool_patches(embedding_arrays(model, GraphDataset.load(f), args.batch_size,
                                                               args.device, bars, inputs, args.measurements,
                                                               args.readout),
                                              args.pool, f.stem)
                                 for f in files])
        elif one_file:  # all datasets in one file, e.g. the input of `hmgdm classify`
            model, inputs, _ = load_embedder(args.checkpoint)
            dataset = GraphDataset([r for f in files for r in GraphDataset.load(f).records])
            arrays = embedding_arrays(model, dataset, args.batch_size, args.device, bars, inputs, args.measurements,
                                      args.readout)
        else:
            results = embed_datasets(args.checkpoint, files, args.out, batch_size=args.batch_size,
                                     device=args.device, overwrite=args.overwrite, progress=bars,
                                     measurements=args.measurements, readout=args.readout)
    if one_file:
        with atomic_path(args.out) as temporary, temporary.open("wb") as fh:
            np.savez(fh, readout=np.array(args.readout), **arrays)
        ready = " with labels and groups (ready for `hmgdm classify`)" if {"labels", "groups"} <= set(arrays) else ""
        shape = arrays["embeddings"].shape
        measured = " (with pooled measurements)" if args.measurements else ""
        if "measurement_columns" in arrays:
            measured = f" (the last {int(arrays['measurement_columns'])} pooled measurements)"
        print(f"{shape[0]} embeddings of {shape[1]} numbers{measured} written to {args.out}{ready}")
        return 0
    print(f"embeddings and embeddings.csv in {args.out}")
    return _summary(results, "datasets")


def _pipeline(args: argparse.Namespace) -> int:
    from hmgdm_core.batch import PipelineConfig, run_pipeline
    from hmgdm_core.cli.bars import StageBars, is_rank_zero
    from hmgdm_core.cli.train import pretrain_config, vae_config

    config = PipelineConfig(_graph_config(args), pretrain_config(args), vae=vae_config(args))
    with StageBars(_UNITS) as bars:
        result = run_pipeline(args.sources, args.out, config, scheduler=args.scheduler, workers=args.workers,
                              slide_mpp=args.slide_mpp, overwrite=args.overwrite, progress=bars)
    if not is_rank_zero():
        return 0
    out = Path(args.out)
    print(f"graphs in {out / 'graphs'}, checkpoint {result.checkpoint}, embeddings in {out / 'embeddings'}")
    return max(_summary(result.graphs, "slides"), _summary(result.embeddings, "embeddings"))


def _slide_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--kind", choices=("tissue", "nuclei"), default="tissue", help="entity graphs to build")
    parser.add_argument("--mpp", type=float, default=1.0, help="µm/px to analyse at (default 1.0; tiles: their µm/px)")
    parser.add_argument("--patch", type=int, default=128, help="patch side in analysed pixels (default 128)")
    parser.add_argument("--min-tissue", type=float, default=0.5,
                        help="skip patches with less tissue than this fraction (default 0.5)")
    parser.add_argument("--slide-mpp", type=float, default=None, help="level-0 µm/px of slides whose files lack it")
    parser.add_argument("--scheduler", default="threads",
                        help="threads (default), processes (faster on many cores), sync, cluster (a local "
                             "dask.distributed cluster for this run), or the address of a running "
                             "dask.distributed scheduler, tcp://HOST:PORT")
    parser.add_argument("--workers", type=int, default=None, help="threads or processes of a local scheduler")
    parser.add_argument("--overwrite", action="store_true", help="redo finished items instead of skipping them")


def add_graph(sub: argparse._SubParsersAction) -> None:
    """Register ``hmgdm graph``."""
    graph = sub.add_parser("graph", help="patch graph datasets of slides (Dask), or of a tile folder")
    graph.add_argument("sources", nargs="+", metavar="SOURCE",
                       help="slide files, folders of slides, or CSVs (slide[,y,x,height,width][,mpp][,label][,group]); "
                            "with --folder one folder of tiles with index.csv")
    graph.add_argument("--out", required=True,
                       help="one slide: dataset file (.pt); several: folder of <name>.pt and manifest.csv")
    graph.add_argument("--region", type=int, nargs=4, metavar=("Y", "X", "H", "W"),
                       help="level-0 box of a single slide (default: the whole slide)")
    graph.add_argument("--folder", action="store_true", help="source is a folder of tiles listed in index.csv")
    _slide_options(graph)
    graph.set_defaults(func=_graph)


def add_embed(sub: argparse._SubParsersAction) -> None:
    """Register ``hmgdm embed``."""
    embed = sub.add_parser("embed", help="patch embeddings of graph datasets with a pre-trained model")
    embed.add_argument("checkpoint", metavar="NAME_OR_RUN",
                       help="checkpoint (or run folder) written by `hmgdm pretrain`, or a bundled model name "
                            "(`hmgdm pretrained list`)")
    embed.add_argument("datasets", nargs="+", metavar="DATASET",
                       help="dataset files written by `hmgdm graph`, or folders of them")
    embed.add_argument("--out", required=True,
                       help="a .npz file: one file for all datasets (input of `hmgdm classify`); otherwise a "
                            "folder of <name>.npz, one per dataset, and embeddings.csv (finished files are skipped)")
    embed.add_argument("--batch-size", type=int, default=32, help="graphs per forward pass (default 32)")
    embed.add_argument("--device", default="auto", help="auto (default), cpu, cuda, cuda:<i> or mps")
    embed.add_argument("--overwrite", action="store_true", help="redo finished files instead of skipping them")
    embed.add_argument("--pool", choices=("mean", "max"), default=None,
                       help="one row per dataset file (a slide or image): the mean or maximum of its patch "
                            "embeddings, with its label where all its patches share one (needs a .npz --out)")
    embed.add_argument("--measurements", action="store_true",
                       help="append each patch's pooled entity measurements (mean and std of its nodes' and edges' "
                            "colour, size and shape) to its embedding: the hybrid features")
    # hmgdm_core.embed.READOUTS, spelled out so that `hmgdm --help` does not import the network.
    embed.add_argument("--readout", choices=("projection", "first", "mu", "states"), default="projection",
                       help="what each patch vector pools: the encoder's first projection of every entity alone, "
                            "before any neighbour is mixed in (default; it probed best after pre-training), the "
                            "states of its first layer, the latent means μ (the paper's embedding) or the last "
                            "layer's states")
    embed.set_defaults(func=_embed)


def add_pipeline(sub: argparse._SubParsersAction) -> None:
    """Register ``hmgdm pipeline``."""
    from hmgdm_core.cli.train import add_training_options

    pipeline = sub.add_parser("pipeline", help="graphs of many slides, one pre-training run, embeddings per slide "
                                               "(resumable; torchrun for several GPUs)")
    pipeline.add_argument("sources", nargs="+", metavar="SOURCE", help="slide files, folders of slides, or CSVs")
    pipeline.add_argument("--out", required=True, help="output folder (graphs/, pretrain/, embeddings/)")
    _slide_options(pipeline)
    add_training_options(pipeline)
    pipeline.set_defaults(func=_pipeline)
