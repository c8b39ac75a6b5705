"""Dual hypergraph transformation (DHT, Jo et al. 2021) used by the edge branch of the encoder and decoder."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor
from torch_geometric.nn import HypergraphConv

from hmgdm_core.model.edge_pairs import compacted_rows

__all__ = ["DualHypergraph", "MeanHypergraphConv", "dual_hypergraph"]


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
        (:func:`~hmgdm_core.model.edge_pairs.pair_rows`) it is 1, which keeps the same hyperedges, so that each pair's
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
    compact = compacted_rows(kept)
    keep_row = kept[owners]
    num_kept = int(kept.sum())
    node_part = torch.stack([members[keep_row], compact[owners[keep_row]]])
    self_part = torch.arange(num_edges, device=device).expand(2, num_edges) + torch.tensor(
        [[0], [num_kept]], device=device
    )
    return torch.cat([node_part, self_part], dim=1), num_kept + num_edges


@dataclass(frozen=True)
class DualHypergraph:
    """The incidence of a dual hypergraph and its mean normalisation, built once per batch.

    Every convolution over it shares them: the encoder's edge and weight convolutions, the decode blocks'. The
    self-hyperedges of :func:`dual_hypergraph` (one member each, so their mean is the member itself) are not
    stored: :meth:`mean` adds each dual node's own row instead of gathering it, a third less index traffic.
    """

    members: Tensor
    """Shape (K',), int64: the dual node (edge) of each node-hyperedge incidence entry."""
    owners: Tensor
    """Shape (K',), int64: the node hyperedge of each entry, 0 … num_hyperedges-1."""
    num_hyperedges: int
    """K, the node hyperedges (self-hyperedges not counted)."""
    inv_size: Tensor
    """Shape (K, 1): 1 / members of each node hyperedge."""
    inv_degree: Tensor
    """Shape (E, 1): 1 / hyperedges of each dual node, its self-hyperedge included."""

    @classmethod
    def of(cls, edge_index: Tensor, num_nodes: int, min_size: int = 2) -> DualHypergraph:
        """The dual hypergraph of a graph's edges (arguments as in :func:`dual_hypergraph`)."""
        index, total = dual_hypergraph(edge_index, num_nodes, min_size)
        num_edges = edge_index.shape[1]
        # dual_hypergraph lists the node-hyperedge entries first and the E self-hyperedges last.
        members, owners = index[:, : index.shape[1] - num_edges]
        num_hyperedges = total - num_edges
        size = torch.bincount(owners, minlength=num_hyperedges).clamp_min(1)
        degree = torch.bincount(members, minlength=num_edges) + 1
        return cls(members, owners, num_hyperedges, 1.0 / size[:, None], 1.0 / degree[:, None])

    def mean(self, x: Tensor) -> Tensor:
        """D⁻¹·H·B⁻¹·Hᵀ·x: each hyperedge's mean of its members, then each dual node's mean over its hyperedges.

        Parameters
        ----------
        x : Tensor, shape (E, C)
            One row per dual node.

        Returns
        -------
        Tensor, shape (E, C)
        """
        per_hyperedge = x.new_zeros((self.num_hyperedges, x.shape[1]))
        per_hyperedge = per_hyperedge.index_add_(0, self.owners, x.index_select(0, self.members))
        per_hyperedge = per_hyperedge * self.inv_size.to(x.dtype)
        # The self-hyperedge's mean is the node's own row.
        out = x.index_add(0, self.members, per_hyperedge.index_select(0, self.owners))
        return out * self.inv_degree.to(x.dtype)


class MeanHypergraphConv(HypergraphConv):
    """PyG's ``HypergraphConv`` (no attention, unit weights) over a :class:`DualHypergraph`: X' = D⁻¹·H·B⁻¹·Hᵀ·X·Θ + b.

    Same parameters, initialisation and checkpoint keys as ``HypergraphConv(in_channels, out_channels)``; only the
    propagation differs: two ``index_add_`` passes with the normalisation computed once per batch, where PyG's
    message passing through a (rows, heads, channels) view took about twice as long on a CPU
    (``docs/benchmarks.md``). The same function up to float rounding (tested against PyG's forward).
    """

    def forward(self, x: Tensor, hypergraph: DualHypergraph, project: bool = True) -> Tensor:  # type: ignore[override]
        """Map dual-node features (E, in_channels) to (E, out_channels).

        Without ``project``, ``x`` holds the rows ``self.lin`` already made, (E, out_channels).
        """
        return hypergraph.mean(self.lin(x) if project else x) + self.bias
