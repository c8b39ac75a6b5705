"""``hmgdm pretrain``: one pre-training run, alone or under ``torchrun`` (rank 0 prints and writes)."""

from __future__ import annotations

import argparse
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # torch and torch-geometric load only when a command runs, so `hmgdm --help` is instant
    from torch_geometric.data import Data

    from hmgdm_core.train import CancelToken, PretrainConfig
    from hmgdm_core.vae import VAEConfig

__all__ = ["add_pretrain", "add_training_options", "pretrain_config", "vae_config"]


def pretrain_config(args: argparse.Namespace, base: PretrainConfig | None = None) -> PretrainConfig:
    """The config of ``--config`` (else ``base``, else the default) with the ``--steps`` … ``--precision`` overrides.

    Every value is checked by the config dataclasses; a bad one is an :class:`~hmgdm_core.errors.InputError`.
    ``--vae --steps 0`` (fit the VAE only) leaves the steps unset: no pre-training step runs then.
    """
    from dataclasses import replace
    from pathlib import Path

    from hmgdm_core.errors import InputError
    from hmgdm_core.train import PretrainConfig

    if args.config:
        try:
            text = Path(args.config).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            raise InputError(f"--config {args.config}: cannot read it ({error})") from None
        try:
            config = PretrainConfig.from_json(text)
        except InputError as error:
            raise InputError(f"--config {args.config}: {error}") from None
    elif args.preset:
        config = PretrainConfig.preset(args.preset)
    else:
        config = base or PretrainConfig()
    if args.config and args.preset:
        raise InputError("give --config or --preset, not both (a preset is a named config)")
    steps = None if args.vae and args.steps == 0 else args.steps
    changes = {k: v for k, v in (("max_steps", steps), ("batch_size", args.batch_size),
                                 ("device", args.device), ("memory_gb", args.memory_gb),
                                 ("precision", args.precision)) if v is not None}
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


def _init_checkpoint(args: argparse.Namespace) -> PretrainConfig | None:
    """With ``--init``: resolve a bundled name to its verified file and return the config to continue with.

    The network, masking and diffusion come from the init checkpoint (its weights only fit its own network);
    the optimisation settings are a new run's (``TrainConfig()``), since the bundled run's length and learning
    rate schedule are not the user's.
    """
    from dataclasses import replace

    from hmgdm_core.errors import InputError
    from hmgdm_core.pretrained import resolve_checkpoint
    from hmgdm_core.train import TrainConfig, load_checkpoint

    if args.init is None:
        return None
    if args.resume is not None or args.vae:
        raise InputError("--init starts a new run on raw windows from a model's weights: not with --resume "
                         "(continue a run) or --vae (a new feature space)")
    args.init = str(resolve_checkpoint(args.init))
    return replace(load_checkpoint(args.init).config, train=TrainConfig())


def _pretrain(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from hmgdm_core.batch import dataset_files
    from hmgdm_core.cli.bars import is_rank_zero
    from hmgdm_core.errors import InputError
    from hmgdm_core.graph import GraphDataset
    from hmgdm_core.train import Cancelled, CancelToken, CheckpointWritten, Finished, Started, StepDone, pretrain

    init = _init_checkpoint(args)
    config = pretrain_config(args, init)
    if args.minutes is not None and not args.minutes > 0:
        raise InputError(f"--minutes must be > 0, got {args.minutes}")
    dataset = GraphDataset([r for f in dataset_files(args.datasets) for r in GraphDataset.load(f).records])
    if args.vae:
        dataset, config = _latent(dataset, args, config)
        if args.steps == 0:
            return 0
    show = is_rank_zero()
    if show:
        # The run checks and fingerprints every graph before its first event: seconds for thousands of graphs.
        fits = config.model.standardise_inputs and args.resume is None and args.init is None
        print(f"preparing {len(dataset)} graphs (feature check, fingerprint{', input statistics' if fits else ''})",
              flush=True)
    bar = None
    token = CancelToken()
    run = pretrain(dataset, config, args.out, resume=args.resume, cancel=token, overwrite=args.overwrite,
                   allow_config_change=args.allow_config_change, init=args.init)
    try:
        with _stop_on(token, args.minutes) as why:
            for event in run:
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
                elif isinstance(event, Finished) and show:
                    print(f"\nfinished at step {event.step}; checkpoint {event.checkpoint}")
                elif isinstance(event, Cancelled):
                    if bar is not None:
                        bar.close()
                    cause = f"stopped by {why[0]}" if why else f"time budget of {args.minutes:g} min reached"
                    if show:
                        print(f"\n{cause} at step {event.step}; checkpoint {event.checkpoint} "
                              f"(continue with --resume {args.out})")
                    return _SIGNAL_STATUS.get(why[0], 1) if why else 0
    finally:
        run.close()  # releases the run folder's lock even if the loop above raised
        if bar is not None:
            bar.close()
    return 0


_SIGNAL_STATUS = {"SIGINT": 130, "SIGTERM": 143}  # 128 + signal number, as shells report them


@contextmanager
def _stop_on(token: CancelToken, minutes: float | None) -> Iterator[list[str]]:
    """Cancel ``token`` on SIGINT/SIGTERM or after ``minutes``; yields the list that receives the signal's name.

    The run then finishes its step, writes a checkpoint and ends, as with the widget's Cancel. A second
    Ctrl-C while it does so interrupts at once.
    """
    import signal
    import threading

    why: list[str] = []

    def on_signal(signum: int, frame: object) -> None:
        if why:
            raise KeyboardInterrupt
        why.append(signal.Signals(signum).name)
        token.cancel()

    in_main = threading.current_thread() is threading.main_thread()  # signal handlers can only be set there
    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)} if in_main else {}
    timer = threading.Timer(minutes * 60, token.cancel) if minutes is not None else None
    if timer is not None:
        timer.daemon = True
        timer.start()
    try:
        yield why
    finally:
        if timer is not None:
            timer.cancel()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def add_training_options(parser: argparse.ArgumentParser) -> None:
    """The training options of ``hmgdm pretrain`` and the pipeline: ``--config`` … ``--vae-config``.

    With ``--vae``, ``hmgdm pretrain --steps 0`` only fits the VAE (e.g. before a torchrun job).
    """
    parser.add_argument("--config", default=None, help="PretrainConfig JSON (default: our recipe, or --preset's)")
    parser.add_argument("--steps", type=int, default=None,
                        help="stop after this many steps (checkpoints every tenth of them; default: the epochs)")
    parser.add_argument("--batch-size", type=int, default=None, help="graphs per step (global batch under torchrun)")
    parser.add_argument("--device", default=None, help="auto, cpu, cuda, cuda:<i> or mps")
    parser.add_argument("--precision", default=None, choices=("fp32", "bf16", "fp16"),
                        help="fp32 (default), or autocast: bf16 on CUDA or on a CPU with AVX512-BF16/AMX "
                             "(1.2-1.3x faster per step on the paper-size network, none at small widths), fp16 on CUDA")
    parser.add_argument("--preset", default=None,
                        help="named config instead of our recipe: fast (hidden 64, for CPUs) or paper (the "
                             "released settings)")
    parser.add_argument("--memory-gb", type=float, default=None,
                        help="GiB one forward/backward pass may use (default: from free RAM / GPU memory)")
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
    pretrain.add_argument("--overwrite", action="store_true",
                          help="delete the checkpoints of an earlier run in --out instead of refusing the folder")
    pretrain.add_argument("--allow-config-change", action="store_true",
                          help="resume although the model, masking or diffusion settings differ from the checkpoint's")
    pretrain.add_argument("--minutes", type=float, default=None,
                          help="wall-clock budget: after N minutes finish the step, save a checkpoint and stop")
    pretrain.add_argument("--init", default=None, metavar="NAME_OR_RUN",
                          help="start from these weights (a bundled model name, see `hmgdm pretrained list`, or a "
                               "checkpoint) and continue pre-training on DATASET; its network settings are used")
    pretrain.set_defaults(func=_pretrain)
