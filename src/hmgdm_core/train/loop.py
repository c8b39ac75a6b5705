"""The pre-training loop as a generator of typed events (CLI, notebooks and the napari worker share it)."""

from __future__ import annotations

import contextlib
import math
import os
import time
from collections.abc import Iterator, Sequence
from os import PathLike
from pathlib import Path

import torch
from torch_geometric.data import Data

from hmgdm_core.diffusion import NoiseSchedule
from hmgdm_core.errors import InputError, TrainingError
from hmgdm_core.graph.dataset import GraphDataset
from hmgdm_core.model import HMGDM
from hmgdm_core.train.checkpoint import (
    checkpoint_path,
    data_fingerprint,
    feature_space,
    load_checkpoint,
    prune_checkpoints,
    resolve_checkpoint,
    resume_states,
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
from hmgdm_core.train.interrupt import PassCancelled
from hmgdm_core.train.learning_rate import LearningRate
from hmgdm_core.train.memory import budget_bytes, require_fit
from hmgdm_core.train.run_folder import claim_run_folder, config_changes
from hmgdm_core.train.step import make_optimizer, optimisation_step

__all__ = ["check_finite", "check_graph", "drain", "pretrain"]

_STEP_CHECKPOINTS = 10  # checkpoints of a max_steps run, besides the epoch ones
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


def check_finite(dataset: Sequence[Data]) -> None:
    """Raise :class:`InputError` naming the first graph whose node or edge features hold NaN or ±Inf.

    A few such values make every loss non-finite (training stops) or every embedding NaN (silently). A
    :class:`GraphDataset` is checked in its stored form (:meth:`GraphDataset.float_features`): expanding every
    graph here would decode every image once more and, on a whole slide, leave hundreds of MB of freed but
    fragmented heap behind (the embedding pass's peak grew with the slide's area).
    """
    for index in range(len(dataset)):
        for name, values in _features(dataset, index).items():
            if values is not None and values.is_floating_point() and not _all_finite(values):
                group = getattr(dataset[index], "group", None)
                where = f" (group {group})" if isinstance(group, str) else ""
                raise InputError(f"graph {index}{where} has NaN or infinite values in {name}: rebuild it or drop it")


def _features(dataset: Sequence[Data], index: int) -> dict[str, torch.Tensor | None]:
    """The node (``x``) and edge (``edge_attr``) features of graph ``index`` that can hold NaN or ±Inf."""
    if isinstance(dataset, GraphDataset):
        stored = dataset.float_features(index)
        return {"x": stored.get("x"), "edge_attr": stored.get("pair_attr")}
    graph = dataset[index]
    return {name: getattr(graph, name, None) for name in ("x", "edge_attr")}


def _all_finite(values: torch.Tensor) -> bool:
    """Whether every value is finite, usually in one reduction.

    A NaN or ±Inf anywhere makes the sum non-finite; the element-wise test runs only then (the sum may also
    overflow on finite values).
    """
    return bool(torch.isfinite(values.sum())) or bool(torch.isfinite(values).all())


def _epoch_order(num_graphs: int, seed: int, epoch: int) -> list[int]:
    generator = torch.Generator().manual_seed(seed * _SEED_STRIDE + epoch)
    return torch.randperm(num_graphs, generator=generator).tolist()


def pretrain(
    dataset: Sequence[Data],
    config: PretrainConfig | None = None,
    out_dir: str | PathLike[str] = "hmgdm-pretrain",
    *,
    resume: str | PathLike[str] | None = None,
    init: str | PathLike[str] | None = None,
    cancel: CancelToken | None = None,
    overwrite: bool = False,
    allow_config_change: bool = False,
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
        Model, masking, diffusion and training settings (default: :class:`PretrainConfig`'s recipe).
    out_dir : str or PathLike
        Folder for ``checkpoint-<step>.pt`` files and ``config.json``. Only the last ``train.keep_last``
        checkpoints are kept, plus the best (lowest epoch loss at an epoch-end checkpoint) and the resumed one.
    resume : str or PathLike, optional
        A checkpoint (or run folder) to continue from; its data fingerprint must match ``dataset``.
    init : str or PathLike, optional
        A checkpoint (or run folder, or bundled model file) whose weights start this run instead of a random
        initialisation: continued pre-training on other data. Its model config must equal ``config.model``;
        optimiser, learning rate and step start afresh. Not together with ``resume``.
    cancel : CancelToken, optional
        Checked before every step and, in a single process, inside every forward/backward pass; cancelling
        drops the unfinished step, writes a checkpoint and yields :class:`Cancelled`.
    overwrite : bool
        Delete the checkpoints of an earlier run in ``out_dir`` (otherwise such a folder is refused unless
        ``resume`` continues that run; see :func:`~hmgdm_core.train.run_folder.claim_run_folder`).
    allow_config_change : bool
        Resume although the model, masking or diffusion settings differ from the checkpoint's.

    Yields
    ------
    TrainEvent
        :class:`Started`, then per step :class:`MaskDrawn` and :class:`StepDone` (or :class:`StepSkipped`),
        :class:`CheckpointWritten` when one is written, and finally :class:`Finished`, :class:`Cancelled`, or
        :class:`Failed` followed by the exception.

    Raises
    ------
    InputError
        Before any step: no graph, a graph with NaN/Inf features, a folder in use or holding another run,
        or a checkpoint to resume that does not fit.
    """
    config = config or PretrainConfig()
    if len(dataset) == 0:
        raise InputError("the dataset holds no graph: build graphs first")
    check_finite(dataset)
    if init is not None and resume is not None:
        raise InputError("pass either resume (continue this run) or init (start a new run from weights)")
    writer = int(os.environ.get("RANK", "0")) == 0  # only rank 0 writes, so only it holds the folder
    claim = claim_run_folder(out_dir, resume=resume, overwrite=overwrite) if writer else contextlib.nullcontext()
    with claim:
        yield from _run(dataset, config, Path(out_dir), resume, init, cancel, allow_config_change)


def _run(
    dataset: Sequence[Data],
    config: PretrainConfig,
    out_dir: Path,
    resume: str | PathLike[str] | None,
    init: str | PathLike[str] | None,
    cancel: CancelToken | None,
    allow_config_change: bool,
) -> Iterator[TrainEvent]:
    """The run of :func:`pretrain` in its claimed folder."""
    train = config.train
    device = resolve_device(train.device)
    group = join_process_group(device)
    torch.manual_seed(train.seed)
    model = HMGDM(config.model).to(device)
    if config.model.standardise_inputs and resume is None and init is None:
        # A resume loads the same statistics from its checkpoint; an init keeps its model's (its weights expect them).
        model.fit_standardisation(dataset)
    schedule = NoiseSchedule(config.diffusion).to(device)
    optimizer = make_optimizer(model, train, device)
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
        "best_step": None,
        "best_loss": None,
    }
    resumed = None
    if init is not None:
        start = load_checkpoint(init, device)
        if start.config.model != config.model:
            raise InputError(f"{init} has another model config than this run: use its config.model")
        model.load_state_dict(start.model.state_dict())
        meta["init"] = str(init)
    if resume is not None:
        state = load_checkpoint(resume, device)
        if state.meta["data_fingerprint"] != fingerprint:
            raise InputError(f"{resume} was trained on another dataset: resume with the same graphs")
        changes = config_changes(state.config, config)
        if changes and not allow_config_change:
            raise InputError(
                f"{resume} was trained with other settings ({'; '.join(changes)}): resume with the "
                "same config, or allow the change (allow_config_change=True, hmgdm pretrain --allow-config-change)"
            )
        resume_states(resume, model, optimizer, learning_rate, state)
        meta.update({k: state.meta.get(k, meta[k]) for k in meta})  # older checkpoints lack best_*
        resumed = resolve_checkpoint(resume)
    steps_per_epoch = math.ceil(len(dataset) / train.batch_size)
    total_steps = train.max_steps if train.max_steps is not None else train.epochs * steps_per_epoch
    # A --steps run may end before its first epoch does: it also saves every tenth of its length.
    periodic = math.ceil(total_steps / _STEP_CHECKPOINTS) if train.max_steps is not None else None
    network = group.wrap(model, device)
    # Resolved once, so that every step splits alike however the free memory moves.
    budget = budget_bytes(train.memory_gb, device)
    model.train()

    def write(step: int) -> Path | None:
        if not group.is_writer:
            return None
        path = save_checkpoint(
            checkpoint_path(out_dir, step),
            model,
            config,
            {**meta, "step": step},
            optimizer.state_dict(),
            learning_rate.state_dict(),
        )
        if train.keep_last is not None:
            best = None if meta["best_step"] is None else checkpoint_path(out_dir, meta["best_step"])
            prune_checkpoints(out_dir, train.keep_last, {p for p in (path, best, resumed) if p is not None})
        return path

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
                require_fit(graph.num_nodes, graph.edge_index.shape[1], config.model, budget, i, "a training step")
            rate = learning_rate.at(step)
            for param_group in optimizer.param_groups:
                param_group["lr"] = rate
            base = (train.seed * _SEED_STRIDE + step) << 24
            try:
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
                    cancel,
                    budget,
                )
            except PassCancelled:
                # The step is dropped whole (Adam untouched); its draws depend only on the step number, so a
                # resume repeats it exactly.
                optimizer.zero_grad(set_to_none=True)
                step -= 1
                path = write(step)
                if path is not None:
                    yield CheckpointWritten(step, path)
                yield Cancelled(step, path)
                return
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
                epoch_loss = meta["epoch_loss_sum"] / count
                learning_rate.end_epoch(epoch, epoch_loss)
                meta["epoch_loss_sum"], meta["epoch_loss_count"] = 0.0, 0
            epoch_done = position == steps_per_epoch - 1 and (epoch + 1) % train.checkpoint_every_epochs == 0
            if epoch_done and (meta["best_loss"] is None or epoch_loss < meta["best_loss"]):
                meta["best_loss"], meta["best_step"] = epoch_loss, step
            if epoch_done or step == total_steps or (periodic is not None and step % periodic == 0):
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
