"""Dual hypergraph transformation (DHT, Jo et al. 2021) used by the edge branch of the encoder and decoder."""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["dual_hypergraph"]


def dual_hypergraph(edge_index: Tensor, num_nodes: int, min_size: int = 2) -> tuple[Tensor, int]:
    """Incidence of the dual hypergraph H* of a graph, for PyG's ``HypergraphConv`` over edge features.

    Every edge of the graph becomes a dual node. Every original node becomes a hyperedge holding its incident
    edges; hyperedges with fewer than two members are dropped, and each dual node gets one self-hyperedge
    so that an isolated edge still keeps its own feature (method-spec §6.2).

    Parameters
    ----------
    edge_index : Tensor, shape (2, E), int64
        Edges of the graph (node indices < ``num_nodes``).
    num_nodes : int
        N.
    min_size : int
        Smallest hyperedge kept. Over both directions of every pair it is 2; over one direction per pair
        (:func:`~hmgdm_core.model.hmgdm.pair_rows`) it is 1, which keeps the same hyperedges, so that each pair's
        dual node has the degree and hyperedge means of either of its directions.

    Returns
    -------
    hyperedge_index : Tensor, shape (2, K), int64
        Rows (dual node = edge id in 0 … E-1, hyperedge id); hyperedge ids are compact, 0 … num_hyperedges-1.
    num_hyperedges : int
        Number of hyperedges (kept node hyperedges, then E self-hyperedges).
    """
    num_edges = edge_index.shape[1]
    device = edge_index.device
    members = torch.arange(num_edges, device=device).repeat(2)
    owners = edge_index.reshape(-1)
    size = torch.bincount(owners, minlength=num_nodes)
    kept = size >= min_size
    compact = torch.cumsum(kept.long(), 0) - 1
    keep_row = kept[owners]
    num_kept = int(kept.sum())
    node_part = torch.stack([members[keep_row], compact[owners[keep_row]]])
    self_part = torch.arange(num_edges, device=device).expand(2, num_edges) + torch.tensor(
        [[0], [num_kept]], device=device
    )
    return torch.cat([node_part, self_part], dim=1), num_kept + num_edges
