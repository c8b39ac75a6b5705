"""``hmgdm pretrain``: one pre-training run, alone or under ``torchrun`` (rank 0 prints and writes)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import TYPE_CHECKING

from hmgdm_core.train import PretrainConfig

if TYPE_CHECKING:
    from torch_geometric.data import Data

    from hmgdm_core.vae import VAEConfig

__all__ = ["add_pretrain", "add_training_options", "pretrain_config", "vae_config"]


def pretrain_config(args: argparse.Namespace) -> PretrainConfig:
    """The config of ``--config`` (else of ``--preset``) with ``--steps``, ``--batch-size`` and ``--device`` set."""
    from dataclasses import replace
    from pathlib import Path

    preset = getattr(args, "preset", "default")
    config = PretrainConfig.from_json(Path(args.config).read_text()) if args.config else PretrainConfig.preset(preset)
    changes = {k: v for k, v in (("max_steps", args.steps), ("batch_size", args.batch_size),
                                 ("device", args.device)) if v is not None}
    return replace(config, train=replace(config.train, **changes))


def vae_config(args: argparse.Namespace) -> VAEConfig | None:
    """The entity VAE settings of ``--vae`` / ``--vae-config`` (None without ``--vae``)."""
    import json
    from pathlib import Path

    from hmgdm_core.errors import InputError
    from hmgdm_core.vae import VAEConfig

    if not args.vae:
        return None
    try:
        return VAEConfig(**json.loads(Path(args.vae_config).read_text())) if args.vae_config else VAEConfig()
    except (OSError, TypeError, ValueError) as error:
        raise InputError(f"--vae-config {args.vae_config}: {error}") from None


def _latent(dataset: Sequence[Data], args: argparse.Namespace,
            config: PretrainConfig) -> tuple[list[Data], PretrainConfig]:
    """Fit the entity VAE into the run folder (or reuse the one there) and map the graphs to its latents."""
    import os
    from dataclasses import replace
    from pathlib import Path

    from hmgdm_core.cli.bars import bar
    from hmgdm_core.errors import InputError
    from hmgdm_core.train import resolve_device
    from hmgdm_core.vae import VAE_FILE, run_vae

    path = Path(args.out) / VAE_FILE
    fitted = not path.is_file()
    if fitted and "WORLD_SIZE" in os.environ:  # every rank would fit its own VAE
        raise InputError(f"no {path}: fit the entity VAE in one process first (`hmgdm pretrain ... --vae "
                         "--steps 0`), then start torchrun")
    settings = vae_config(args)
    with bar("entity VAE", "step") as progress:
        inputs = run_vae(dataset, args.out, settings, resolve_device(config.train.device), progress=progress)
    if fitted:
        print(f"entity VAE written to {path}")
    latent_dim = inputs.vae.config.latent_dim
    return inputs.graphs(dataset), replace(config, model=replace(config.model, feature_dim=latent_dim))


def _pretrain(args: argparse.Namespace) -> None:
    from tqdm import tqdm

    from hmgdm_core.batch import dataset_files
    from hmgdm_core.cli.bars import is_rank_zero
    from hmgdm_core.graph import GraphDataset
    from hmgdm_core.train import Cancelled, CheckpointWritten, Finished, Started, StepDone, pretrain

    config = pretrain_config(args)
    dataset = GraphDataset([r for f in dataset_files(args.datasets) for r in GraphDataset.load(f).records])
    if args.vae:
        dataset, config = _latent(dataset, args, config)
        if config.train.max_steps == 0:
            return
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
    """``--config``, ``--steps``, ``--batch-size``, ``--device``, ``--vae`` and ``--vae-config`` (pretrain, pipeline).

    With ``--vae``, ``hmgdm pretrain --steps 0`` only fits the VAE (e.g. before a torchrun job).
    """
    parser.add_argument("--config", default=None, help="PretrainConfig JSON (default: the --preset's settings)")
    parser.add_argument("--preset", default="default", choices=["default", "paper"],
                        help="named recipe when no --config: default (ours) or paper (the released settings)")
    parser.add_argument("--steps", type=int, default=None, help="stop after this many steps")
    parser.add_argument("--batch-size", type=int, default=None, help="graphs per step (global batch under torchrun)")
    parser.add_argument("--device", default=None, help="auto, cpu, cuda, cuda:<i> or mps")
    parser.add_argument("--vae", action="store_true",
                        help="pre-train on entity-VAE latents (stage 1): fit the VAE into the run folder as "
                             "vae.pt first, or reuse the one there; `hmgdm embed` and the widgets find it")
    parser.add_argument("--vae-config", default=None,
                        help='VAEConfig JSON, e.g. {"steps": 500, "base_channels": 16} (default: ours, 2000 steps)')


def add_pretrain(sub: argparse._SubParsersAction) -> None:
    """Register ``hmgdm pretrain``."""
    pretrain = sub.add_parser("pretrain", help="pre-train H-MGDM on a graph dataset (torchrun for several GPUs)")
    pretrain.add_argument("datasets", nargs="+", metavar="DATASET",
                          help="dataset files written by `hmgdm graph`, or folders of them (all are joined)")
    pretrain.add_argument("--out", default="hmgdm-pretrain", help="run folder for checkpoints")
    add_training_options(pretrain)
    pretrain.add_argument("--resume", default=None, help="checkpoint or run folder to continue")
    pretrain.set_defaults(func=_pretrain)
