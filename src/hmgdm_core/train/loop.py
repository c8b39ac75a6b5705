"""The pre-training loop as a generator of typed events (CLI, notebooks and the napari worker share it)."""

from __future__ import annotations

import math
import time
from collections.abc import Iterator, Sequence
from os import PathLike
from pathlib import Path

import torch
from torch_geometric.data import Data

from hmgdm_core.diffusion import NoiseSchedule
from hmgdm_core.errors import InputError, TrainingError
from hmgdm_core.model import HMGDM
from hmgdm_core.train.checkpoint import (
    checkpoint_path,
    data_fingerprint,
    feature_space,
    load_checkpoint,
    save_checkpoint,
)
from hmgdm_core.train.config import PretrainConfig
from hmgdm_core.train.device import resolve_device
from hmgdm_core.train.distributed import join_process_group
from hmgdm_core.train.events import (
    Cancelled,
    CancelToken,
    CheckpointWritten,
    Failed,
    Finished,
    MaskDrawn,
    Started,
    StepDone,
    StepSkipped,
    TrainEvent,
)
from hmgdm_core.train.learning_rate import LearningRate
from hmgdm_core.train.step import optimisation_step

__all__ = ["check_graph", "drain", "pretrain"]

_SEED_STRIDE = 1_000_003  # (seed, step) -> a distinct base seed; graphs add their dataset index below 2**24


def check_graph(graph: Data, feature_dim: int, index: int) -> None:
    """Raise :class:`InputError` unless ``graph`` follows the graph contract with F = ``feature_dim``."""
    problems = []
    if getattr(graph, "x", None) is None or graph.x.dim() != 2 or graph.x.shape[1] != feature_dim:
        problems.append(f"x must be (N, {feature_dim})")
    num_edges = graph.edge_index.shape[1] if getattr(graph, "edge_index", None) is not None else -1
    if num_edges < 0:
        problems.append("edge_index (2, E) is missing")
    elif getattr(graph, "edge_attr", None) is None or tuple(graph.edge_attr.shape) != (num_edges, feature_dim):
        problems.append(f"edge_attr must be (E, {feature_dim})")
    if getattr(graph, "edge_pair", None) is None or graph.edge_pair.shape != (max(num_edges, 0),):
        problems.append("edge_pair (E,) is missing")
    if problems:
        raise InputError(f"graph {index} does not follow the graph contract: {'; '.join(problems)}")


def _epoch_order(num_graphs: int, seed: int, epoch: int) -> list[int]:
    generator = torch.Generator().manual_seed(seed * _SEED_STRIDE + epoch)
    return torch.randperm(num_graphs, generator=generator).tolist()


def pretrain(
    dataset: Sequence[Data],
    config: PretrainConfig | None = None,
    out_dir: str | PathLike[str] = "hmgdm-pretrain",
    *,
    resume: str | PathLike[str] | None = None,
    cancel: CancelToken | None = None,
) -> Iterator[TrainEvent]:
    """Pre-train H-MGDM on entity graphs, yielding progress events.

    Every step draws its batch from a per-epoch permutation seeded by (seed, epoch), the antithetic timesteps of
    the global batch from a generator seeded by (seed, step), and each graph's split, noise and latent samples
    from a generator seeded by (seed, step, dataset index). So a resumed run repeats the uninterrupted one bit
    for bit on the CPU, and under ``torchrun`` (each process takes every world_size-th graph of the global
    batch; only rank 0 writes) every graph sees the same draws as in a single process.

    Parameters
    ----------
    dataset : sequence of Data
        Graphs following the graph contract (``x`` (N, F), ``edge_index``, ``edge_pair``, ``edge_attr``, ``pos``).
    config : PretrainConfig, optional
        Model, masking, diffusion and training settings (default: the paper's).
    out_dir : str or PathLike
        Folder for ``checkpoint-<step>.pt`` files and ``config.json``.
    resume : str or PathLike, optional
        A checkpoint (or run folder) to continue from; its data fingerprint must match ``dataset``.
    cancel : CancelToken, optional
        Checked before every step; cancelling writes a checkpoint and yields :class:`Cancelled`.

    Yields
    ------
    TrainEvent
        :class:`Started`, then per step :class:`MaskDrawn` and :class:`StepDone` (or :class:`StepSkipped`),
        :class:`CheckpointWritten` when one is written, and finally :class:`Finished`, :class:`Cancelled`, or
        :class:`Failed` followed by the exception.
    """
    config = config or PretrainConfig()
    train = config.train
    out_dir = Path(out_dir)
    if len(dataset) == 0:
        raise InputError("the dataset holds no graph: build graphs first")
    device = resolve_device(train.device)
    group = join_process_group(device)
    torch.manual_seed(train.seed)
    model = HMGDM(config.model).to(device)
    if config.model.standardise_inputs and resume is None:
        model.fit_standardisation(dataset)  # a resume loads the same statistics from its checkpoint
    schedule = NoiseSchedule(config.diffusion).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=train.lr, betas=train.betas, weight_decay=train.weight_decay)
    learning_rate = LearningRate(train)
    scaler = torch.amp.GradScaler(device.type, enabled=train.precision == "fp16")
    fingerprint = data_fingerprint(dataset)
    meta = {
        "seed": train.seed,
        "data_fingerprint": fingerprint,
        "feature_space": feature_space(dataset),
        "step": 0,
        "epoch_loss_sum": 0.0,
        "epoch_loss_count": 0,
        "skipped_steps": 0,
        "consecutive_bad": 0,
    }
    if resume is not None:
        state = load_checkpoint(resume, device)
        if state.config.model != config.model or state.meta["data_fingerprint"] != fingerprint:
            raise InputError(f"{resume} was trained with another model config or dataset: resume with the same ones")
        model.load_state_dict(state.model.state_dict())
        optimizer.load_state_dict(state.optimizer_state)
        learning_rate.load_state_dict(state.lr_state)
        meta.update({k: state.meta[k] for k in meta})
    steps_per_epoch = math.ceil(len(dataset) / train.batch_size)
    total_steps = train.max_steps if train.max_steps is not None else train.epochs * steps_per_epoch
    network = group.wrap(model, device)
    model.train()

    def write(step: int) -> Path | None:
        if not group.is_writer:
            return None
        return save_checkpoint(
            checkpoint_path(out_dir, step),
            model,
            config,
            {**meta, "step": step},
            optimizer.state_dict(),
            learning_rate.state_dict(),
        )

    yield Started(meta["step"], total_steps, len(dataset), str(device), group.world_size)
    step, recent = meta["step"], None
    try:
        while step < total_steps:
            if cancel is not None and cancel.cancelled:
                path = write(step)
                if path is not None:
                    yield CheckpointWritten(step, path)
                yield Cancelled(step, path)
                return
            started = time.perf_counter()
            step += 1
            epoch, position = divmod(step - 1, steps_per_epoch)
            indices = _epoch_order(len(dataset), train.seed, epoch)[position * train.batch_size :][: train.batch_size]
            local = indices[group.rank :: group.world_size]
            graphs = [dataset[i] for i in local]
            for i, graph in zip(local, graphs, strict=True):
                check_graph(graph, config.model.feature_dim, i)
            rate = learning_rate.at(step)
            for param_group in optimizer.param_groups:
                param_group["lr"] = rate
            base = (train.seed * _SEED_STRIDE + step) << 24
            result = optimisation_step(
                graphs,
                range(group.rank, len(indices), group.world_size),
                [base + 1 + i for i in local],
                base,
                len(indices),
                network,
                schedule,
                optimizer,
                scaler,
                config,
                group,
                device,
            )
            yield MaskDrawn(
                step,
                tuple(local),
                result.node_graph,
                result.node_target,
                result.edge_target,
                result.edge_graph,
                result.node_encoded,
                result.edge_encoded,
                result.t,
            )
            if result.skipped is None:
                meta["consecutive_bad"] = 0
                total, kl, node, edge = result.parts
                meta["epoch_loss_sum"] += 0.5 * node + 0.5 * edge
                meta["epoch_loss_count"] += 1
                seconds = time.perf_counter() - started
                recent = seconds if recent is None else 0.9 * recent + 0.1 * seconds
                yield StepDone(
                    step, epoch, total, kl, node, edge, rate, len(indices) / seconds, recent * (total_steps - step)
                )
            else:
                meta["consecutive_bad"] += 1
                meta["skipped_steps"] += 1
                yield StepSkipped(step, result.skipped, meta["consecutive_bad"])
                if meta["consecutive_bad"] > train.max_bad_steps:
                    raise TrainingError(
                        f"{meta['consecutive_bad']} consecutive steps had a non-finite {result.skipped}: check the "
                        "graphs for NaN/Inf features, lower the learning rate, or use fp32"
                    )
            if position == steps_per_epoch - 1:
                count = max(meta["epoch_loss_count"], 1)
                learning_rate.end_epoch(epoch, meta["epoch_loss_sum"] / count)
                meta["epoch_loss_sum"], meta["epoch_loss_count"] = 0.0, 0
            epoch_done = position == steps_per_epoch - 1 and (epoch + 1) % train.checkpoint_every_epochs == 0
            if epoch_done or step == total_steps:
                path = write(step)
                if path is not None:
                    yield CheckpointWritten(step, path)
    except Exception as error:
        yield Failed(step, f"{type(error).__name__}: {error}")
        raise
    yield Finished(step, checkpoint_path(out_dir, step) if group.is_writer else None)


def drain(events: Iterator[TrainEvent]) -> TrainEvent:
    """Run a generator of events to its end and return the last event (headless use)."""
    last = None
    for event in events:
        last = event
    if last is None:
        raise InputError("the run yielded no event")
    return last
