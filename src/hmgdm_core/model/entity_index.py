"""Index bookkeeping of one masked batch, computed once and shared by the decoder stages."""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor

from hmgdm_core.masking import EntityMask
from hmgdm_core.model.hypergraph import dual_hypergraph

__all__ = ["EntityIndex"]


@dataclass(frozen=True)
class EntityIndex:
    """Where the target and context entities of a batch are, and the full graph's dual hypergraph."""

    node_graph: Tensor
    """Shape (N,), int64: graph of each node."""
    edge_graph: Tensor
    """Shape (E,), int64: graph of each directed edge."""
    edge_index: Tensor
    """Shape (2, E), int64: all edges of the batch."""
    hyperedge_index: Tensor
    """Shape (2, K), int64: dual hypergraph of all edges."""
    num_hyperedges: int
    """Number of hyperedges of the dual hypergraph."""
    num_graphs: int
    """G."""
    node_target: Tensor
    """Shape (n_t,), int64: target nodes, ascending (hence sorted by graph)."""
    edge_target: Tensor
    """Shape (e_t,), int64: target edges, ascending."""
    node_context: Tensor
    """Shape (n_c,), int64: encoded condition nodes, ascending."""
    edge_context: Tensor
    """Shape (e_c,), int64: encoded condition edges, ascending."""

    @classmethod
    def build(cls, edge_index: Tensor, node_graph: Tensor, num_graphs: int, mask: EntityMask) -> EntityIndex:
        """Gather the indices of a batch and its mask (shapes as in the fields)."""
        hyperedge_index, num_hyperedges = dual_hypergraph(edge_index, node_graph.numel())
        return cls(
            node_graph=node_graph,
            edge_graph=node_graph[edge_index[0]],
            edge_index=edge_index,
            hyperedge_index=hyperedge_index,
            num_hyperedges=num_hyperedges,
            num_graphs=num_graphs,
            node_target=mask.node_target.nonzero().squeeze(1),
            edge_target=mask.edge_target.nonzero().squeeze(1),
            node_context=mask.node_context.nonzero().squeeze(1),
            edge_context=mask.edge_context.nonzero().squeeze(1),
        )
