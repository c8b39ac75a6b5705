"""Memory safety: estimate a pass's peak from its token counts and pack graphs into passes that fit a budget.

The estimate is linear in the tokens (one per node and one per directed edge) because the per-graph attention
runs on PyTorch's fused SDPA kernels, which never hold an L × L map (measured: peak RSS of a training step grows
by ~76 KB per token at F = 3072, H = 256, flat in the graph size from 100 to 1000 nodes; an embedding pass by
~20 KB). The coefficients come from peak-RSS measurements of 1000-node graphs (E = 5N) at two feature widths,
F = 768 and 3072 (``docs/benchmarks.md``), with a 25 % margin.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import torch

from hmgdm_core.errors import InputError
from hmgdm_core.model.config import ModelConfig

__all__ = ["budget_bytes", "default_budget_bytes", "pack_by_memory", "pass_bytes", "release_free_heap", "require_fit"]

_MARGIN = 1.25
_TRAIN_FLOATS = (4.5, 20.0)  # floats kept per token, per unit of (F, H), by a forward + backward pass
_INFER_FLOATS = (0.75, 11.0)  # the same for an inference-mode forward pass (nothing is kept for backward)
# Larger CPU passes run no faster per graph, so bound them even on a big machine: at 4 GiB a step of 32 graphs of
# 1000 nodes peaked at 8.09 GB RSS (2.4 GB of it the step's float graphs); 2 GiB passes should save ~1.9 GB.
_CPU_CAP = 2 * 2**30
_CPU_SHARE = 0.5  # of the RAM available now: the process's graphs, model and optimiser state need the rest
_GPU_SHARE = 0.8  # of the GPU memory free now


def pass_bytes(num_nodes: int, num_edges: int, model: ModelConfig, training: bool = True) -> int:
    """Estimated peak memory of one graph's share of a forward (and backward) pass.

    Parameters
    ----------
    num_nodes, num_edges : int
        N and the directed edge count E of the graph.
    model : ModelConfig
        Its widths F (``feature_dim``) and H (``hidden_dim``).
    training : bool
        A training pass (activations kept for backward) or an inference-mode one.

    Returns
    -------
    int
        Bytes, including a 25 % margin.
    """
    per_f, per_h = _TRAIN_FLOATS if training else _INFER_FLOATS
    per_token = 4 * (per_f * model.feature_dim + per_h * model.hidden_dim)
    return int(_MARGIN * per_token * (num_nodes + num_edges))


def default_budget_bytes(device: torch.device) -> int:
    """The memory one pass may use when the user set none.

    On CUDA 80 % of the GPU memory free now; elsewhere half the RAM available now (``MemAvailable``), at most
    2 GiB, since on a CPU bigger passes bring no speed and only risk the kernel's OOM killer.
    """
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(_GPU_SHARE * free)
    return int(min(_CPU_SHARE * _available_ram(), _CPU_CAP))


def budget_bytes(memory_gb: float | None, device: torch.device) -> int:
    """``memory_gb`` in bytes, or :func:`default_budget_bytes` when it is ``None``."""
    if memory_gb is None:
        return default_budget_bytes(device)
    if not memory_gb > 0:
        raise InputError(f"memory_gb must be positive (or None for the default), got {memory_gb}")
    return int(memory_gb * 2**30)


def require_fit(
    num_nodes: int, num_edges: int, model: ModelConfig, budget: int, label: object, what: str, training: bool = True
) -> int:
    """The estimate of :func:`pass_bytes`, or an :class:`InputError` naming graph ``label`` when over ``budget``."""
    cost = pass_bytes(num_nodes, num_edges, model, training)
    if cost > budget:
        raise InputError(
            f"graph {label} ({num_nodes} nodes, {num_edges} directed edges) needs about {_gib(cost)} for {what}, "
            f"over the {_gib(budget)} budget: raise memory_gb (hmgdm pretrain --memory-gb), or build smaller "
            "graphs (smaller patches or tiles)"
        )
    return cost


def release_free_heap() -> None:
    """Hand the heap's free pages back to the OS (glibc ``malloc_trim``; nothing elsewhere).

    Building patch graphs and embedding batches allocate and free many mid-sized buffers; glibc keeps the freed
    pages, so without this a process's RSS grew with the number of patches (a patch-graph run 0.6 → 0.9 GB from
    a 1× to a 4× slide, all of it free heap), where it should stay flat.
    """
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    libc = ctypes.CDLL(name) if name is not None else None
    if libc is not None and hasattr(libc, "malloc_trim"):
        libc.malloc_trim(0)


def _gib(size: int) -> str:
    return f"{size / 2**30:.2f} GiB" if size >= 2**28 else f"{size / 2**20:.1f} MiB"


def _available_ram() -> int:
    meminfo = Path("/proc/meminfo")
    if meminfo.is_file():
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    # No /proc (macOS, Windows): total physical memory is the best portable figure.
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def pack_by_memory(
    sizes: Sequence[tuple[int, int]],
    model: ModelConfig,
    budget: int,
    *,
    training: bool = True,
    max_graphs: int | None = None,
    what: str = "a training step",
) -> list[list[int]]:
    """Split graphs into passes whose estimated peak fits ``budget``, grouping graphs of similar size.

    Graphs are sorted by token count (largest first, ties in input order) and packed greedily, so that each
    pass's per-graph attention pads little; every pass holds at least one graph.

    Parameters
    ----------
    sizes : sequence of (int, int)
        (N, E) of each graph.
    model : ModelConfig
        Widths used by :func:`pass_bytes`.
    budget : int
        Bytes one pass may use.
    training : bool
        Estimate training or inference passes.
    max_graphs : int, optional
        At most this many graphs per pass.
    what : str
        What the passes are for, named in the error message.

    Returns
    -------
    list of list of int
        Indices into ``sizes``, each list one pass, ascending within a pass.

    Raises
    ------
    InputError
        When a single graph does not fit the budget (named by its position in ``sizes``).
    """
    cost = [require_fit(n, e, model, budget, i, what, training) for i, (n, e) in enumerate(sizes)]
    order = sorted(range(len(sizes)), key=lambda i: (-(sizes[i][0] + sizes[i][1]), i))
    passes: list[list[int]] = []
    used = 0
    for i in order:
        full = max_graphs is not None and passes and len(passes[-1]) >= max_graphs
        if not passes or used + cost[i] > budget or full:
            passes.append([])
            used = 0
        passes[-1].append(i)
        used += cost[i]
    return [sorted(p) for p in passes]
