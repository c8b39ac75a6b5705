"""Edge-aware graph encoder E_L: node GCN with learned edge weights + dual-hypergraph edge convolution."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch_geometric.nn import GCNConv
from torch_geometric.nn.conv.gcn_conv import gcn_norm

from hmgdm_core.model.hypergraph import DualHypergraph, MeanHypergraphConv

__all__ = ["EncoderOutput", "GaussianHead", "GraphEncoder"]


@dataclass(frozen=True)
class EncoderOutput:
    """Gaussian latents and per-layer skips of the encoded entities (rows follow the encoder's input order)."""

    node_mu: Tensor
    """Shape (n, H): mean of the node latents."""
    node_logvar: Tensor
    """Shape (n, H): log-variance of the node latents."""
    edge_mu: Tensor
    """Shape (e, H): mean of the edge latents."""
    edge_logvar: Tensor
    """Shape (e, H): log-variance of the edge latents."""
    node_skips: tuple[Tensor, ...]
    """L tensors of shape (n, H): node states after each layer."""
    edge_skips: tuple[Tensor, ...]
    """L tensors of shape (e, H): edge states after each layer."""
    node_projection: Tensor
    """Shape (n, H): the first layer's projection Θ₀ of each node's own input, before any propagation."""
    edge_projection: Tensor
    """Shape (e, H): the same for the edges (zero without the edge branch)."""


class GaussianHead(nn.Module):
    """Linear(H → H) → Linear(H → b) → ReLU → Linear(b → H), the released latent MLP (one per μ and log σ²)."""

    def __init__(self, channels: int, bottleneck: int) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(channels, channels), nn.Linear(channels, bottleneck), nn.ReLU(), nn.Linear(bottleneck, channels)
        )

    def forward(self, h: Tensor) -> Tensor:
        """Map states (M, H) to (M, H)."""
        return self.net(h)


class ProjectableGCNConv(GCNConv):
    """PyG's ``GCNConv`` that can read rows its caller has already projected by ``lin``.

    Same parameters, initialisation and checkpoint keys; the caller may have folded ``lin`` into an earlier map
    (:mod:`hmgdm_core.model.inference`).
    """

    def forward(  # type: ignore[override]
        self, x: Tensor, edge_index: Tensor, edge_weight: Tensor | None = None, project: bool = True
    ) -> Tensor:
        """GCN layer over (n, in) rows, or over (n, out) rows equal to ``self.lin(x)`` when ``project`` is False."""
        if project:
            return super().forward(x, edge_index, edge_weight)
        edge_index, edge_weight = gcn_norm(
            edge_index, edge_weight, x.size(0), self.improved, self.add_self_loops, self.flow, x.dtype
        )
        return self.propagate(edge_index, x=x, edge_weight=edge_weight) + self.bias


class GraphEncoder(nn.Module):
    r"""The tissue-GNN encoder: L co-updated layers over node and edge states (method-spec §6.2).

    For layer :math:`l`,

    .. math::
        h_v \leftarrow \mathrm{GCN}_l(h_v, \mathcal{E}, w_l), \qquad
        h_e \leftarrow \mathrm{HConv}_l(h_e; H^*), \qquad
        w_{l+1} = \mathrm{clamp}(\tanh \mathrm{HConv}'_l(h_e; H^*), 0, 1)

    with ReLU after every layer but the last, :math:`w_0 = 1`, and :math:`H^*` the dual hypergraph
    (:func:`~hmgdm_core.model.hypergraph.dual_hypergraph`). Separate Gaussian heads give μ and log σ² of the
    node and edge latents (fixing the released heads, bug #9).

    Parameters
    ----------
    in_channels : int
        Width of the input embeddings (512).
    hidden_channels : int
        H (256).
    num_layers : int
        L (3).
    latent_bottleneck : int
        Bottleneck of the Gaussian heads (64).
    edge_branch : bool
        Build the edge convolutions, learned edge weights and edge heads; without them the GCN uses unit edge
        weights and every edge state, latent and skip is zero (the "w/o edge latents" ablation).
    """

    def __init__(
        self, in_channels: int, hidden_channels: int, num_layers: int, latent_bottleneck: int, edge_branch: bool = True
    ) -> None:
        super().__init__()
        self.hidden_channels = hidden_channels
        self.edge_branch = edge_branch
        # Modules are built in the full model's order, so a seed gives the full model the same weights as before.
        edge_layers = num_layers if edge_branch else 0
        self.pre_node = nn.Linear(in_channels, in_channels)
        self.pre_edge = nn.Linear(in_channels, in_channels) if edge_branch else None
        widths = [in_channels] + [hidden_channels] * num_layers
        self.node_convs = nn.ModuleList(ProjectableGCNConv(a, b) for a, b in itertools.pairwise(widths))
        self.edge_convs = nn.ModuleList(
            MeanHypergraphConv(a, b) for a, b in itertools.pairwise(widths[: edge_layers + 1])
        )
        self.weight_convs = nn.ModuleList(MeanHypergraphConv(hidden_channels, 1) for _ in range(edge_layers - 1))
        self.node_mu = GaussianHead(hidden_channels, latent_bottleneck)
        self.node_logvar = GaussianHead(hidden_channels, latent_bottleneck)
        self.edge_mu = GaussianHead(hidden_channels, latent_bottleneck) if edge_branch else None
        self.edge_logvar = GaussianHead(hidden_channels, latent_bottleneck) if edge_branch else None

    def forward(
        self,
        h_node: Tensor,
        h_edge: Tensor,
        edge_index: Tensor,
        pairs: tuple[Tensor, Tensor] | None = None,
        projected: bool = False,
    ) -> EncoderOutput:
        """Encode a (sub)graph.

        Parameters
        ----------
        h_node : Tensor, shape (n, in_channels)
            Embedded node features.
        h_edge : Tensor, shape (e, in_channels), or (p, in_channels) with ``pairs``
            Embedded edge features, one row per directed edge of ``edge_index``, or per pair (the rows ``first``).
        edge_index : Tensor, shape (2, e), int64
            Edges between the n nodes (local indices).
        pairs : tuple of Tensor, optional
            ``(first, inverse)`` as :func:`~hmgdm_core.model.edge_pairs.pair_rows` gives them for ``edge_index``
            (one edge per undirected pair; the pair of every edge), when ``h_edge`` holds one row per pair for both
            directions. Their states then stay equal through every layer (same hyperedges, symmetric weights), so
            the edge branch runs once per pair and copies the result to both directions: the same function up to
            float rounding, at half the edge cost.
        projected : bool
            ``h_node`` and ``h_edge`` already passed the ``pre_*`` layers and the first layer's projection
            (shapes (n, H) and (e or p, H)); needs the edge branch.

        Returns
        -------
        EncoderOutput
        """
        if not self.edge_branch:
            if projected:
                raise ValueError("projected rows need the edge branch")
            return self._nodes_only(h_node, edge_index)
        if pairs is None:
            hypergraph = DualHypergraph.of(edge_index, h_node.shape[0])
        else:
            hypergraph = DualHypergraph.of(edge_index[:, pairs[0]], h_node.shape[0], min_size=1)
        if not projected:
            h_node = self.node_convs[0].lin(self.pre_node(h_node))
            h_edge = self.edge_convs[0].lin(self.pre_edge(h_edge))
        node_projection, edge_projection = h_node, h_edge
        weight = None
        node_skips, edge_skips = [], []
        last = len(self.node_convs) - 1
        for layer, (node_conv, edge_conv) in enumerate(zip(self.node_convs, self.edge_convs, strict=True)):
            h_node = node_conv(h_node, edge_index, weight, project=layer > 0)
            h_edge = edge_conv(h_edge, hypergraph, project=layer > 0)
            if layer < last:
                h_node, h_edge = torch.relu(h_node), torch.relu(h_edge)
                weight = self.weight_convs[layer](h_edge, hypergraph)
                weight = torch.tanh(weight.squeeze(-1)).clamp(0.0, 1.0)
                if pairs is not None:
                    weight = weight[pairs[1]]
            node_skips.append(h_node)
            edge_skips.append(h_edge)
        edge_mu, edge_logvar = self.edge_mu(h_edge), self.edge_logvar(h_edge)
        if pairs is not None:
            edge_mu, edge_logvar, edge_projection = edge_mu[pairs[1]], edge_logvar[pairs[1]], edge_projection[pairs[1]]
            edge_skips = [h[pairs[1]] for h in edge_skips]
        return EncoderOutput(
            node_mu=self.node_mu(h_node),
            node_logvar=self.node_logvar(h_node),
            edge_mu=edge_mu,
            edge_logvar=edge_logvar,
            node_skips=tuple(node_skips),
            edge_skips=tuple(edge_skips),
            node_projection=node_projection,
            edge_projection=edge_projection,
        )

    def _nodes_only(self, h_node: Tensor, edge_index: Tensor) -> EncoderOutput:
        # Zero edge states keep every shape of the full model, so the decoder and the loss need no special case;
        # with μ = log σ² = 0 their KL term is exactly 0.
        h_node = projection = self.node_convs[0].lin(self.pre_node(h_node))
        node_skips = []
        for layer, node_conv in enumerate(self.node_convs):
            h_node = node_conv(h_node, edge_index, project=layer > 0)
            if layer < len(self.node_convs) - 1:
                h_node = torch.relu(h_node)
            node_skips.append(h_node)
        zeros = h_node.new_zeros((edge_index.shape[1], self.hidden_channels))
        return EncoderOutput(
            node_mu=self.node_mu(h_node),
            node_logvar=self.node_logvar(h_node),
            edge_mu=zeros,
            edge_logvar=zeros,
            node_skips=tuple(node_skips),
            edge_skips=(zeros,) * len(node_skips),
            node_projection=projection,
            edge_projection=zeros,
        )
