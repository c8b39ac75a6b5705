"""One optimisation step: draws, micro-batched forward/backward with exact global means, clip and Adam."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch_geometric.data import Batch, Data

from hmgdm_core.diffusion import NoiseSchedule
from hmgdm_core.graph.contract import collate
from hmgdm_core.model import LossScale, draw_mask, draw_noise, pretraining_loss
from hmgdm_core.train.config import PretrainConfig, TrainConfig
from hmgdm_core.train.device import autocast
from hmgdm_core.train.distributed import ProcessGroup
from hmgdm_core.train.events import CancelToken
from hmgdm_core.train.interrupt import cancel_points
from hmgdm_core.train.memory import budget_bytes, pack_by_memory

__all__ = ["StepResult", "make_optimizer", "optimisation_step"]


@dataclass(frozen=True)
class StepResult:
    """What one step did."""

    parts: tuple[float, float, float, float]
    """Global-batch loss total, KL, node MSE and edge MSE."""
    skipped: str | None
    """What was non-finite when the update was skipped, else ``None``."""
    node_graph: np.ndarray
    """(N,) position of each local node's graph in the local batch."""
    node_target: np.ndarray
    """(N,) bool target nodes of the local batch."""
    edge_target: np.ndarray
    """(E,) bool target edges of the local batch."""
    edge_graph: np.ndarray
    """(E,) position of each local edge's graph in the local batch."""
    node_encoded: np.ndarray
    """(N,) bool nodes the encoder saw."""
    edge_encoded: np.ndarray
    """(E,) bool edges the encoder saw."""
    t: np.ndarray
    """(G,) int64 timestep of each local graph."""


def make_optimizer(model: nn.Module, train: TrainConfig, device: torch.device) -> torch.optim.Adam:
    """The pre-training optimiser: Adam with ``train``'s learning rate, betas and weight decay.

    On the CPU and CUDA its update is one fused kernel over all parameters: the same update as the
    per-parameter loop up to float rounding, in a third of its time on the CPU (15 ms against 48 ms per step
    at the paper's widths, 10 against 31 ms at hidden 64; ``docs/benchmarks.md``).
    """
    fused = device.type in ("cpu", "cuda")
    return torch.optim.Adam(
        model.parameters(), lr=train.lr, betas=train.betas, weight_decay=train.weight_decay, fused=fused or None
    )


def _structure(graphs: Sequence[Data]) -> Batch:
    return Batch.from_data_list(
        [Data(edge_index=g.edge_index, edge_pair=g.edge_pair, num_nodes=g.num_nodes) for g in graphs]
    )


def _all_sum(values: list[float], group: ProcessGroup, device: torch.device) -> list[float]:
    if group.world_size == 1:
        return values
    tensor = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(tensor)
    return tensor.tolist()


def optimisation_step(
    graphs: Sequence[Data],
    positions: Sequence[int],
    seeds: Sequence[int],
    t_seed: int,
    global_size: int,
    network: nn.Module,
    schedule: NoiseSchedule,
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler,
    config: PretrainConfig,
    group: ProcessGroup,
    device: torch.device,
    cancel: CancelToken | None = None,
    budget: int | None = None,
) -> StepResult:
    """Run one step on this process's graphs of the global batch.

    The antithetic timesteps of the whole global batch come from ``t_seed``; graph ``i`` takes the one at its
    global position ``positions[i]`` and draws its split and noise from a generator seeded ``seeds[i]``. Entry
    counts are summed over micro-batches and processes before any backward pass, so each part is the global
    batch's mean and the accumulated gradient is the global batch's gradient.

    The graphs are split into passes whose estimated peak memory fits ``config.train.memory_gb`` (and at most
    ``micro_batch_size`` graphs each), grouping graphs of similar size so that attention pads little.
    ``budget`` (bytes) overrides ``memory_gb``. In a single process, ``cancel`` is checked inside every pass
    (:func:`~hmgdm_core.train.interrupt.cancel_points`).

    Raises
    ------
    InputError
        When one graph alone does not fit the memory budget.
    PassCancelled
        When ``cancel`` is set during the step; the gradients are then partial and the optimiser untouched.

    Returns
    -------
    StepResult
    """
    train = config.train
    t_all = schedule.sample_timesteps(global_size, torch.Generator(device=device).manual_seed(t_seed))
    budget = budget_bytes(train.memory_gb, device) if budget is None else budget
    sizes = [(g.num_nodes, g.edge_index.shape[1]) for g in graphs]
    chunks = pack_by_memory(sizes, config.model, budget, max_graphs=train.micro_batch_size)
    generators = [torch.Generator(device=device).manual_seed(seed) for seed in seeds]
    masks = [
        draw_mask(_structure([graphs[i] for i in c]).to(device), config.mask, [generators[i] for i in c])
        for c in chunks
    ]
    local_scale = LossScale(0.0, 0.0, 0.0, 0.0)
    for mask in masks:
        local_scale = local_scale + LossScale.of(mask, config.model.feature_dim, config.model.hidden_dim)
    scale = LossScale(*_all_sum(list(vars(local_scale).values()), group, device))
    optimizer.zero_grad(set_to_none=True)
    sums = [0.0, 0.0, 0.0, 0.0]
    for number, (chunk, mask) in enumerate(zip(chunks, masks, strict=True)):
        batch = collate([graphs[i] for i in chunk]).to(device)
        noise = draw_noise(
            batch,
            mask,
            config.model.feature_dim,
            config.model.hidden_dim,
            [generators[i] for i in chunk],
            paired=config.model.pair_tokens,
        )
        t = t_all[torch.as_tensor([positions[i] for i in chunk], device=device)]
        last = number == len(chunks) - 1
        sync = contextlib.nullcontext() if last or group.world_size == 1 else network.no_sync()
        # Under DDP every process must reach the same all-reduce, so only a lone process stops mid-step.
        with sync, cancel_points(network, cancel if group.world_size == 1 else None):
            with autocast(device, train.precision):
                loss = pretraining_loss(network, schedule, batch, mask, t, noise, train.loss, scale)
            # DDP averages gradients over processes; each process holds a share of a sum, hence × world size.
            scaler.scale(loss.total * group.world_size).backward()
        for k, value in enumerate((loss.total, loss.kl, loss.node, loss.edge)):
            sums[k] += float(value.detach())
    parts = _all_sum(sums, group, device)
    skipped = None
    if group.any(not np.isfinite(parts[0]), device):
        skipped = "loss"
    else:
        scaler.unscale_(optimizer)
        norm = torch.nn.utils.clip_grad_norm_(network.parameters(), train.grad_clip)
        if group.any(not bool(torch.isfinite(norm)), device):
            skipped = "gradient"
    if skipped is None:
        scaler.step(optimizer)
    else:
        optimizer.zero_grad(set_to_none=True)
    scaler.update()
    node_graph = np.repeat(np.arange(len(graphs)), [g.num_nodes for g in graphs]).astype(np.int64)
    edge_graph = np.repeat(np.arange(len(graphs)), [g.edge_index.shape[1] for g in graphs]).astype(np.int64)

    # Passes group graphs by size; the flags go back to the graphs' order.
    node_parts, edge_parts = {}, {}
    for chunk, mask in zip(chunks, masks, strict=True):
        node_split = np.cumsum([sizes[i][0] for i in chunk])[:-1]
        edge_split = np.cumsum([sizes[i][1] for i in chunk])[:-1]
        for name in ("node_target", "node_encoded"):
            for i, part in zip(chunk, np.split(getattr(mask, name).cpu().numpy(), node_split), strict=True):
                node_parts[name, i] = part
        for name in ("edge_target", "edge_encoded"):
            for i, part in zip(chunk, np.split(getattr(mask, name).cpu().numpy(), edge_split), strict=True):
                edge_parts[name, i] = part

    def flags(name: str) -> np.ndarray:
        parts = node_parts if name.startswith("node") else edge_parts
        return np.concatenate([parts[name, i] for i in range(len(graphs))]) if graphs else np.zeros(0, bool)

    return StepResult(
        parts=(parts[0], parts[1], parts[2], parts[3]),
        skipped=skipped,
        node_graph=node_graph,
        node_target=flags("node_target"),
        edge_target=flags("edge_target"),
        edge_graph=edge_graph,
        node_encoded=flags("node_encoded"),
        edge_encoded=flags("edge_encoded"),
        t=t_all[torch.as_tensor(list(positions), dtype=torch.long, device=device)].cpu().numpy(),
    )
