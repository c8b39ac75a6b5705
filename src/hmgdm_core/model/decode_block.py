"""One decode block of D_L: cross-attention to the encoder skips, a graph step, a per-entity linear map."""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch_geometric.nn import GCNConv

from hmgdm_core.model.attention import GraphCrossAttention
from hmgdm_core.model.entity_index import EntityIndex
from hmgdm_core.model.hypergraph import MeanHypergraphConv

__all__ = ["DecodeBlock"]


class DecodeBlock(nn.Module):
    """Decode block i (method-spec §6.4, stages i = L-2 … 0).

    1. Target node tokens are *replaced* by cross-attention to the encoder's layer-i node states of the same
       graph; target edge tokens *add* cross-attention to the layer-i edge states.
    2. Graph step over the whole graph, where condition entities carry their encoder states and the others their
       tokens: Linear pre-maps, GCN + ReLU over every edge, mean hypergraph convolution over the dual hypergraph.
    3. Linear(H → b) → Linear(b → H) per entity, without a non-linearity, as released.

    With ``residual_decode`` (the paper figure's block), step 1 adds the node cross-attention too, and the output
    of steps 2-3 is added to the tokens that entered step 2 instead of replacing them.

    Parameters
    ----------
    channels : int
        H.
    num_heads : int
        Cross-attention heads.
    bottleneck : int
        b.
    edge_branch : bool
        Build the edge half (cross-attention, hypergraph convolution, linear map); without it only
        :meth:`node_step` runs.
    residual_decode : bool
        Residual node cross-attention and a residual around steps 2-3.
    """

    def __init__(
        self,
        channels: int,
        num_heads: int,
        bottleneck: int,
        edge_branch: bool = True,
        residual_decode: bool = False,
    ) -> None:
        super().__init__()
        self.residual_decode = residual_decode
        # Built in the full block's order, so a seed gives the full model the same weights as before.
        self.node_xattn = GraphCrossAttention(channels, num_heads)
        self.edge_xattn = GraphCrossAttention(channels, num_heads) if edge_branch else None
        self.pre_node = nn.Linear(channels, channels)
        self.pre_edge = nn.Linear(channels, channels) if edge_branch else None
        self.node_conv = GCNConv(channels, channels)
        self.edge_conv = MeanHypergraphConv(channels, channels) if edge_branch else None
        self.node_mlp = nn.Sequential(nn.Linear(channels, bottleneck), nn.Linear(bottleneck, channels))
        self.edge_mlp = (
            nn.Sequential(nn.Linear(channels, bottleneck), nn.Linear(bottleneck, channels)) if edge_branch else None
        )

    def forward(
        self, node: Tensor, edge: Tensor, skip_node: Tensor, skip_edge: Tensor, index: EntityIndex
    ) -> tuple[Tensor, Tensor]:
        """Run the block.

        Parameters
        ----------
        node : Tensor, shape (N, H)
            Node tokens, with τ(t) already added.
        edge : Tensor, shape (E, H)
            Edge tokens, with τ(t) already added.
        skip_node : Tensor, shape (n_c, H)
            Encoder layer-i states of the context nodes, in ``index.node_context`` order.
        skip_edge : Tensor, shape (e_c, H)
            Encoder layer-i states of the context edges, in ``index.edge_context`` order.
        index : EntityIndex
            Batch bookkeeping.

        Returns
        -------
        node, edge : Tensor, shapes (N, H) and (E, H)
        """
        return self.node_step(node, skip_node, index), self.edge_step(edge, skip_edge, index)

    def node_step(self, node: Tensor, skip_node: Tensor, index: EntityIndex) -> Tensor:
        """The node half of :meth:`forward` (all a block does without the edge branch); (N, H) → (N, H)."""
        node_t, node_c = index.node_target, index.node_context
        attended, answered = self.node_xattn(
            node[node_t], index.node_graph[node_t], skip_node, index.node_graph[node_c], index.num_graphs
        )
        # Released: the attention output replaces the target tokens; a graph with no context keeps its tokens.
        if self.residual_decode:
            attended = node[node_t] + attended
        node = node.index_put((node_t,), torch.where(answered[:, None], attended, node[node_t]).to(node.dtype))
        node = node.index_put((node_c,), skip_node.to(node.dtype))
        out = self.node_mlp(torch.relu(self.node_conv(self.pre_node(node), index.edge_index)))
        return node + out if self.residual_decode else out

    def edge_step(self, edge: Tensor, skip_edge: Tensor, index: EntityIndex) -> Tensor:
        """The edge half of :meth:`forward`; (E, H) → (E, H)."""
        edge_t, edge_c = index.edge_target, index.edge_context
        attended, _ = self.edge_xattn(
            edge[edge_t], index.edge_graph[edge_t], skip_edge, index.edge_graph[edge_c], index.num_graphs
        )
        edge = edge.index_put((edge_t,), (edge[edge_t] + attended).to(edge.dtype))
        edge = edge.index_put((edge_c,), skip_edge.to(edge.dtype))
        out = self.edge_mlp(self.edge_conv(self.pre_edge(edge), index.hypergraph))
        return edge + out if self.residual_decode else out
