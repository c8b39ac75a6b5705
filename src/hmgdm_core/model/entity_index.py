"""Index bookkeeping of one masked batch, computed once and shared by the decoder stages."""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor

from hmgdm_core.masking import EntityMask
from hmgdm_core.model.hypergraph import DualHypergraph

__all__ = ["EntityIndex"]


@dataclass(frozen=True)
class EntityIndex:
    """Where the target and context entities of a batch are, and the full graph's dual hypergraph."""

    node_graph: Tensor
    """Shape (N,), int64: graph of each node."""
    edge_graph: Tensor
    """Shape (E,), int64: graph of each edge entity (directed edge, or pair with ``pairs``)."""
    edge_index: Tensor
    """Shape (2, E), int64: all edges of the batch."""
    hypergraph: DualHypergraph
    """Dual hypergraph of the edge entities."""
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
    def build(
        cls,
        edge_index: Tensor,
        node_graph: Tensor,
        num_graphs: int,
        mask: EntityMask,
        pairs: tuple[Tensor, Tensor] | None = None,
    ) -> EntityIndex:
        """Gather the indices of a batch and its mask (shapes as in the fields).

        With ``pairs`` (:func:`~hmgdm_core.model.edge_pairs.shared_pairs`) the edge entities are the undirected pairs,
        each at its first direction's place: ``edge_graph``, the dual hypergraph, ``edge_target`` and
        ``edge_context`` then count pairs (P of them), while ``edge_index`` keeps every directed edge for the node
        convolutions.
        """
        edge_target, edge_context = mask.edge_target, mask.edge_context
        entity_edges = edge_index
        if pairs is not None:
            first = pairs[0]
            edge_target, edge_context, entity_edges = edge_target[first], edge_context[first], edge_index[:, first]
        # Over one direction per pair, hyperedges of one member are kept: they are the same node hyperedges.
        hypergraph = DualHypergraph.of(entity_edges, node_graph.numel(), min_size=2 if pairs is None else 1)
        return cls(
            node_graph=node_graph,
            edge_graph=node_graph[entity_edges[0]],
            edge_index=edge_index,
            hypergraph=hypergraph,
            num_graphs=num_graphs,
            node_target=mask.node_target.nonzero().squeeze(1),
            edge_target=edge_target.nonzero().squeeze(1),
            node_context=mask.node_context.nonzero().squeeze(1),
            edge_context=edge_context.nonzero().squeeze(1),
        )
