"""``hmgdm pretrain``: one pre-training run, alone or under ``torchrun`` (rank 0 prints and writes)."""

from __future__ import annotations

import argparse

from hmgdm_core.train import PretrainConfig

__all__ = ["add_pretrain", "add_training_options", "pretrain_config"]


def pretrain_config(args: argparse.Namespace) -> PretrainConfig:
    """The config of ``--config`` (default: the paper's) with ``--steps``, ``--batch-size`` and ``--device`` set."""
    from dataclasses import replace
    from pathlib import Path

    config = PretrainConfig.from_json(Path(args.config).read_text()) if args.config else PretrainConfig()
    changes = {k: v for k, v in (("max_steps", args.steps), ("batch_size", args.batch_size),
                                 ("device", args.device)) if v is not None}
    return replace(config, train=replace(config.train, **changes))


def _pretrain(args: argparse.Namespace) -> None:
    from tqdm import tqdm

    from hmgdm_core.batch import dataset_files
    from hmgdm_core.cli.bars import is_rank_zero
    from hmgdm_core.graph import GraphDataset
    from hmgdm_core.train import Cancelled, CheckpointWritten, Finished, Started, StepDone, pretrain

    config = pretrain_config(args)
    dataset = GraphDataset([r for f in dataset_files(args.datasets) for r in GraphDataset.load(f).records])
    show = is_rank_zero()
    bar = None
    try:
        for event in pretrain(dataset, config, args.out, resume=args.resume):
            if isinstance(event, Started):
                if show:
                    print(f"pre-training on {event.device}: {event.num_graphs} graphs, steps {event.start_step}"
                          f" -> {event.total_steps}, {event.world_size} process(es)")
                bar = tqdm(total=event.total_steps, initial=event.start_step, unit="step", disable=not show)
            elif isinstance(event, StepDone) and bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{event.loss:.4f}", node=f"{event.node:.4f}", edge=f"{event.edge:.4f}",
                                lr=f"{event.lr:.1e}")
            elif isinstance(event, CheckpointWritten) and bar is not None and show:
                bar.write(f"checkpoint {event.path}")
            elif isinstance(event, Finished | Cancelled) and show:
                print(f"\n{type(event).__name__.lower()} at step {event.step}; checkpoint {event.checkpoint}")
    finally:
        if bar is not None:
            bar.close()


def add_training_options(parser: argparse.ArgumentParser) -> None:
    """``--config``, ``--steps``, ``--batch-size`` and ``--device`` (pretrain and pipeline)."""
    parser.add_argument("--config", default=None, help="PretrainConfig JSON (default: the paper's settings)")
    parser.add_argument("--steps", type=int, default=None, help="stop after this many steps")
    parser.add_argument("--batch-size", type=int, default=None, help="graphs per step (global batch under torchrun)")
    parser.add_argument("--device", default=None, help="auto, cpu, cuda, cuda:<i> or mps")


def add_pretrain(sub: argparse._SubParsersAction) -> None:
    """Register ``hmgdm pretrain``."""
    pretrain = sub.add_parser("pretrain", help="pre-train H-MGDM on a graph dataset (torchrun for several GPUs)")
    pretrain.add_argument("datasets", nargs="+", metavar="DATASET",
                          help="dataset files written by `hmgdm graph`, or folders of them (all are joined)")
    pretrain.add_argument("--out", default="hmgdm-pretrain", help="run folder for checkpoints")
    add_training_options(pretrain)
    pretrain.add_argument("--resume", default=None, help="checkpoint or run folder to continue")
    pretrain.set_defaults(func=_pretrain)
