"""Complementary condition/target splits of entity graphs ("random dual subgraph split", method-spec §4).

Every node and every edge of a batch is either a *target* (noised, then reconstructed by the decoder) or a
*condition* (seen by the encoder). The split is re-drawn at every training step.

Two modes:

``strict``
    Per graph: ⌊ρ_v·N_g⌋ target nodes and ⌊ρ_e·P_g⌋ target undirected edge pairs (both directions of a pair
    share their fate, fixing the official code's bug #7). The encoder sees only the condition subgraph: the
    condition nodes and the condition edges whose two ends are condition nodes, so no target feature reaches
    it, not even through a message (fixing bug #6). A condition edge that touches a target node is kept out
    of the encoder; the decoder sees it as a clean token.
``context`` (default)
    Same targets as ``strict``, but the encoder sees the whole graph's structure (every node and edge, as at
    embedding time, so training and inference graphs have the same degree distribution); the targets'
    features are replaced by learned mask tokens before the encoder, so still no target feature reaches it.
``official``
    The released behaviour, for comparison: one permutation over the whole batch for nodes and one over
    *directed* edges (the per-graph ratio only holds in expectation); the encoder sees every node with its
    clean features and every non-target edge.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor

from hmgdm_core.config_checks import check_fields, check_range
from hmgdm_core.errors import InputError

__all__ = ["EntityMask", "MaskConfig", "no_mask", "sample_mask"]

MaskMode = Literal["strict", "context", "official"]


@dataclass(frozen=True)
class MaskConfig:
    """How a batch is split into condition and target entities; defaults reproduce the paper (ratio 0.6)."""

    node_ratio: float = 0.6
    """Fraction of each graph's nodes that become targets (rounded down)."""
    edge_ratio: float = 0.6
    """Fraction of each graph's undirected edge pairs that become targets (rounded down)."""
    mode: MaskMode = "context"
    """``strict`` (complementary subgraphs, no leak), ``context`` (whole graph, targets as mask tokens, no leak)
    or ``official`` (the released code's behaviour)."""

    def __post_init__(self) -> None:
        check_fields(self)
        for name in ("node_ratio", "edge_ratio"):
            check_range(self, name, 0.0, 1.0)


@dataclass(frozen=True)
class EntityMask:
    """One split of a batch: which entities are targets and which the encoder sees.

    All fields are bool tensors on the batch's device; ``N`` and ``E`` count the batch's nodes and directed edges.
    """

    node_target: Tensor
    """Shape (N,): the node is noised and reconstructed."""
    edge_target: Tensor
    """Shape (E,): the directed edge is noised and reconstructed (both directions agree in ``strict``)."""
    node_encoded: Tensor
    """Shape (N,): the node is an input of the encoder."""
    edge_encoded: Tensor
    """Shape (E,): the directed edge is an input of the encoder (a message path and a dual node)."""
    hide_targets: bool = False
    """Encoded targets enter the encoder as learned mask tokens, not as their features (``context`` mode)."""

    @property
    def node_context(self) -> Tensor:
        """Shape (N,): condition nodes whose encoder latents condition the decoder."""
        return self.node_encoded & ~self.node_target

    @property
    def edge_context(self) -> Tensor:
        """Shape (E,): condition edges whose encoder latents condition the decoder."""
        return self.edge_encoded & ~self.edge_target


def no_mask(num_nodes: int, num_edges: int, device: torch.device | str = "cpu") -> EntityMask:
    """Return the empty split used for embeddings: no target, the encoder sees the whole graph."""
    return EntityMask(
        node_target=torch.zeros(num_nodes, dtype=torch.bool, device=device),
        edge_target=torch.zeros(num_edges, dtype=torch.bool, device=device),
        node_encoded=torch.ones(num_nodes, dtype=torch.bool, device=device),
        edge_encoded=torch.ones(num_edges, dtype=torch.bool, device=device),
    )


def _targets_per_group(group: Tensor, num_groups: int, ratio: float, keys: Tensor) -> Tensor:
    """Bool (M,): the ⌊ratio·size⌋ members of every group with the smallest ``keys`` (M,) in [0, 1)."""
    if group.numel() == 0:
        return torch.zeros(0, dtype=torch.bool, device=group.device)
    # Sorting by group + key groups the members and orders them by key inside each group in one pass.
    order = torch.argsort(group.to(torch.float64) + keys.to(torch.float64))
    sizes = torch.bincount(group, minlength=num_groups)
    starts = torch.cumsum(sizes, 0) - sizes
    rank = torch.empty_like(group)
    rank[order] = torch.arange(group.numel(), device=group.device) - starts[group[order]]
    quota = torch.floor(sizes.to(torch.float64) * ratio).long()
    return rank < quota[group]


def _pair_ids(edge_graph: Tensor, edge_pair: Tensor) -> tuple[Tensor, Tensor]:
    """Batch-unique pair ids (E,) and the graph of each pair (P,), from per-graph ``edge_pair`` ids."""
    span = int(edge_pair.max()) + 1
    unique, inverse = torch.unique(edge_graph * span + edge_pair, return_inverse=True)
    return inverse, torch.div(unique, span, rounding_mode="floor")


def sample_mask(
    edge_index: Tensor,
    edge_pair: Tensor,
    node_graph: Tensor,
    num_graphs: int,
    config: MaskConfig = MaskConfig(),
    node_keys: Tensor | None = None,
    edge_keys: Tensor | None = None,
    generator: torch.Generator | None = None,
) -> EntityMask:
    """Draw a complementary condition/target split of a batch of graphs.

    Parameters
    ----------
    edge_index : Tensor, shape (2, E), int64
        Directed edges (both directions of each undirected pair), batch-global node indices.
    edge_pair : Tensor, shape (E,), int64
        Undirected pair id of each edge, unique within its graph (the graph contract's ``edge_pair``).
    node_graph : Tensor, shape (N,), int64
        Graph of each node (PyG's ``batch`` vector, sorted).
    num_graphs : int
        G, the number of graphs in the batch.
    config : MaskConfig
        Ratios and mode.
    node_keys : Tensor, shape (N,), optional
        Uniform [0, 1) keys; the smallest ⌊ρ·N_g⌋ of each graph become targets. Drawn from ``generator`` if omitted.
        Passing per-graph keys makes the split independent of how graphs are grouped into batches.
    edge_keys : Tensor, shape (E,), optional
        Uniform [0, 1) keys of the directed edges; a pair's key is the smaller of its two.
    generator : torch.Generator, optional
        Random stream on the batch's device, used for missing keys.

    Returns
    -------
    EntityMask
    """
    for name, ratio in (("node_ratio", config.node_ratio), ("edge_ratio", config.edge_ratio)):
        if not 0.0 <= ratio <= 1.0:
            raise InputError(f"{name} must lie in [0, 1], got {ratio}")
    num_edges = edge_index.shape[1]
    device = edge_index.device
    if node_keys is None:
        node_keys = torch.rand(node_graph.numel(), generator=generator, device=device, dtype=torch.float64)
    if edge_keys is None:
        edge_keys = torch.rand(num_edges, generator=generator, device=device, dtype=torch.float64)
    if config.mode == "official":
        # One permutation over the whole batch, directed edges independently (bugs #6 and #7 kept on purpose).
        node_target = _targets_per_group(torch.zeros_like(node_graph), 1, config.node_ratio, node_keys)
        edge_target = _targets_per_group(
            torch.zeros(num_edges, dtype=torch.long, device=device), 1, config.edge_ratio, edge_keys
        )
        return EntityMask(node_target, edge_target, torch.ones_like(node_target), ~edge_target)
    if config.mode not in ("strict", "context"):
        raise InputError(f"unknown mask mode {config.mode!r}: use 'strict', 'context' or 'official'")
    node_target = _targets_per_group(node_graph, num_graphs, config.node_ratio, node_keys)
    if num_edges:
        pair, pair_graph = _pair_ids(node_graph[edge_index[0]], edge_pair)
        pair_keys = torch.ones(pair_graph.numel(), dtype=edge_keys.dtype, device=device)
        pair_keys = pair_keys.scatter_reduce(0, pair, edge_keys, reduce="amin")
        edge_target = _targets_per_group(pair_graph, num_graphs, config.edge_ratio, pair_keys)[pair]
        touches_target = node_target[edge_index[0]] | node_target[edge_index[1]]
        edge_encoded = ~edge_target & ~touches_target
    else:
        edge_target = torch.zeros(0, dtype=torch.bool, device=device)
        edge_encoded = edge_target
    if config.mode == "context":
        return EntityMask(
            node_target, edge_target, torch.ones_like(node_target), torch.ones_like(edge_target), hide_targets=True
        )
    return EntityMask(node_target, edge_target, ~node_target, edge_encoded)
