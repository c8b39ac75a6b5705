"""The H-MGDM stage-2 network: input embeddings, graph encoder E_L and diffusion decoder D_L."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch_geometric.data import Data

from hmgdm_core.errors import InputError
from hmgdm_core.graph.dataset import feature_moments
from hmgdm_core.masking import EntityMask
from hmgdm_core.model.config import ModelConfig
from hmgdm_core.model.decoder import Decoder
from hmgdm_core.model.edge_pairs import compacted_rows, expand_pairs, pair_rows, shared_pairs
from hmgdm_core.model.embedding import EntityEmbedding, index_in_graph
from hmgdm_core.model.encoder import EncoderOutput, GraphEncoder
from hmgdm_core.model.entity_index import EntityIndex

__all__ = ["HMGDM", "Prediction", "graph_ids"]


def graph_ids(graph: Data) -> tuple[Tensor, Tensor, int]:
    """Graph of every node and edge of a PyG ``Data`` or ``Batch``, and the number of graphs.

    Returns
    -------
    node_graph : Tensor, shape (N,), int64
    edge_graph : Tensor, shape (E,), int64
    num_graphs : int
    """
    node_graph = getattr(graph, "batch", None)
    if node_graph is None:
        node_graph = torch.zeros(graph.num_nodes, dtype=torch.long, device=graph.edge_index.device)
    num_graphs = int(getattr(graph, "num_graphs", 1))
    return node_graph, node_graph[graph.edge_index[0]], num_graphs


@dataclass(frozen=True)
class Prediction:
    """Output of one denoising pass over a masked batch."""

    node: Tensor
    """Shape (n_t, F): prediction for the target nodes (ascending node order)."""
    edge: Tensor
    """Shape (e_t, F): prediction for the target edges (ascending edge order); (p_t, F), one row per target pair
    in the order of ``pairs[0]``, when :meth:`HMGDM.forward` was given ``pairs``."""
    encoded: EncoderOutput
    """Encoder output over the encoded entities (for the KL term)."""


def _edge_centroids(pos: Tensor | None, edge_index: Tensor) -> Tensor | None:
    return None if pos is None else (pos[edge_index[0]] + pos[edge_index[1]]) / 2


class HMGDM(nn.Module):
    """Dynamic entity-masked graph diffusion network (method-spec §6).

    Parameters
    ----------
    config : ModelConfig
        Widths and switches; the defaults are the released model.
    """

    def __init__(self, config: ModelConfig | None = None) -> None:
        super().__init__()
        config = config or ModelConfig()
        self.config = config

        def embedding() -> EntityEmbedding:
            return EntityEmbedding(
                config.feature_dim,
                config.embed_dim,
                config.index_rope,
                config.rope_theta,
                config.centroid_encoding,
                config.centroid_scale,
                config.input_layernorm,
            )

        self.node_embedding = embedding()
        self.edge_embedding = embedding() if config.edge_branch else None
        self.encoder = GraphEncoder(
            config.embed_dim, config.hidden_dim, config.num_layers, config.latent_mlp_dim, config.edge_branch
        )
        self.decoder = Decoder(config)
        if config.target_input == "mask_token":
            # GraphMAE's [MASK]: a learned feature vector in place of every target's features, so the decoder
            # cannot copy its target. Zero-initialised as in GraphMAE's enc_mask_token.
            self.node_mask_token = nn.Parameter(torch.zeros(config.feature_dim))
            self.edge_mask_token = nn.Parameter(torch.zeros(config.feature_dim))
        elif config.target_input != "noised":
            raise InputError(f"unknown target_input {config.target_input!r}: use 'noised' or 'mask_token'")
        if config.encoder_mask_token:
            # ``context`` masking: what the encoder reads in place of a target's embedding. Zero-initialised, so
            # building them draws no random number and a seed gives every other weight its old value.
            self.encoder_node_token = nn.Parameter(torch.zeros(config.embed_dim))
            if config.edge_branch:
                self.encoder_edge_token = nn.Parameter(torch.zeros(config.embed_dim))
        if config.standardise_inputs:
            # Identity statistics until fit_standardisation; buffers, so checkpoints carry the fitted ones.
            for name in ("node_mean", "edge_mean"):
                self.register_buffer(name, torch.zeros(config.feature_dim))
            for name in ("node_std", "edge_std"):
                self.register_buffer(name, torch.ones(config.feature_dim))

    @torch.no_grad()
    def fit_standardisation(self, graphs: Sequence[Data]) -> None:
        """Fit the per-feature mean and std of node and edge features over ``graphs`` (once, before training).

        Parameters
        ----------
        graphs : sequence of Data
            The training graphs (``x`` (N, F) and ``edge_attr`` (E, F)); a ``GraphDataset`` is summed in its stored
            form, without expanding its graphs (:func:`~hmgdm_core.graph.dataset.feature_moments`).
        """
        if not self.config.standardise_inputs:
            raise InputError("fit_standardisation needs ModelConfig(standardise_inputs=True)")
        moments = feature_moments(graphs, self.config.feature_dim)
        for kind, attr in (("node", "x"), ("edge", "edge_attr")):
            sums = moments[attr]
            if sums.count == 0:
                continue
            mean = sums.total / sums.count
            # A floor keeps constant features (e.g. padding) finite instead of dividing by zero.
            std = (sums.square / sums.count - mean.square()).clamp_min(0).sqrt().clamp_min(1e-3)
            getattr(self, f"{kind}_mean").copy_(mean)
            getattr(self, f"{kind}_std").copy_(std)

    def standardise(self, graph: Data, first: Tensor | None = None) -> Data:
        """A shallow copy of ``graph`` with standardised ``x`` and ``edge_attr`` (``graph`` itself when off).

        With ``first`` (P,), int64, the copy's ``edge_attr`` holds only those edges' rows (P, F), in that order:
        one row per undirected pair for the pair-wise training pass, which reads no other edge row.
        """
        if first is None and not self.config.standardise_inputs:
            return graph
        out = copy.copy(graph)
        if first is not None:
            out.edge_attr = graph.edge_attr.index_select(0, first)
        if not self.config.standardise_inputs:
            return out
        # Each difference is a fresh buffer, so the division runs in place: the same values, one (M, F) copy fewer.
        out.x = (graph.x - self.node_mean).div_(self.node_std)
        out.edge_attr = (out.edge_attr - self.edge_mean).div_(self.edge_std)
        return out

    def embed_inputs(
        self,
        graph: Data,
        x: Tensor,
        edge_attr: Tensor,
        first: Tensor | None = None,
        standardise: bool = False,
    ) -> tuple[Tensor, Tensor]:
        """Input embeddings of node and edge features laid out like ``graph``.

        Parameters
        ----------
        graph : Data or Batch
            Provides ``edge_index``, ``pos`` and the graph ids.
        x : Tensor, shape (N, F)
            Node features (possibly noised).
        edge_attr : Tensor, shape (E, F), or (P, F) with ``first``
            Edge features (possibly noised).
        first : Tensor, shape (P,), int64, optional
            The edges whose rows ``edge_attr`` holds, e.g. one per undirected pair (:func:`pair_rows`): only these
            are embedded (one row per pair is enough without index RoPE, whose angle differs per direction).
        standardise : bool
            ``x`` and ``edge_attr`` are in the data's units: apply the stored standardisation (when the model has
            it) inside the embeddings.

        Returns
        -------
        Tensor, shape (N, D), and Tensor, shape (E, D) or (P, D) with ``first``
        """
        _, edge_graph, num_graphs = graph_ids(graph)
        pos = getattr(graph, "pos", None)
        edge_stats = (self.edge_mean, self.edge_std) if standardise and self.config.standardise_inputs else None
        h_node = self.embed_nodes(graph, x, standardise)
        if self.edge_embedding is None:
            # Without the edge branch the edge features are never read; the encoder and decoder ignore these rows.
            return h_node, h_node.new_zeros((edge_attr.shape[0], self.config.embed_dim))
        index, edge_index = index_in_graph(edge_graph, num_graphs), graph.edge_index
        if first is not None:
            index, edge_index = index[first], edge_index[:, first]
        return h_node, self.edge_embedding(edge_attr, index, _edge_centroids(pos, edge_index), edge_stats)

    def embed_nodes(self, graph: Data, x: Tensor, standardise: bool = False) -> Tensor:
        """Input embeddings (N, D) of node features ``x`` (N, F), as :meth:`embed_inputs` makes them."""
        node_graph, _, num_graphs = graph_ids(graph)
        stats = (self.node_mean, self.node_std) if standardise and self.config.standardise_inputs else None
        return self.node_embedding(x, index_in_graph(node_graph, num_graphs), getattr(graph, "pos", None), stats)

    def decoder_pairs(self, edge_index: Tensor, mask: EntityMask) -> tuple[Tensor, Tensor] | None:
        """:func:`shared_pairs` of a batch where the decoder takes one token per undirected pair, else ``None``.

        That is with ``pair_tokens``, the edge branch, and a split that gives both directions of every pair the
        same fate (``strict`` and ``context`` masks).
        """
        if not (self.config.pair_tokens and self.edge_embedding is not None):
            return None
        return shared_pairs(edge_index, mask)

    def unstandardise(self, rows: Tensor, kind: str) -> Tensor:
        """Map standardised ``node`` or ``edge`` feature rows (M, F) back to the data's units."""
        if not self.config.standardise_inputs:
            return rows
        return rows * getattr(self, f"{kind}_std") + getattr(self, f"{kind}_mean")

    def encode_embedded(
        self,
        h_node: Tensor,
        h_edge: Tensor,
        edge_index: Tensor,
        mask: EntityMask,
        pairs: tuple[Tensor, Tensor] | None = None,
    ) -> EncoderOutput:
        """Run E_L on the entities that ``mask`` lets it see (rows in ascending entity order).

        Parameters
        ----------
        h_node : Tensor, shape (N, D)
            Embedded node features.
        h_edge : Tensor, shape (E, D), or (P, D) with ``pairs``
            Embedded edge features.
        edge_index : Tensor, shape (2, E), int64
            All edges.
        mask : EntityMask
            Which nodes and edges are encoded.
        pairs : tuple of Tensor, optional
            :func:`pair_rows` of ``edge_index`` when ``h_edge`` holds one row per pair (the rows ``first``),
            i.e. both directions read the same row. Where ``mask`` encodes both directions of every pair or
            neither, the encoder's edge branch then runs once per pair
            (:class:`~hmgdm_core.model.encoder.GraphEncoder`).

        Returns
        -------
        EncoderOutput
        """
        nodes = mask.node_encoded.nonzero().squeeze(1)
        edges = mask.edge_encoded.nonzero().squeeze(1)
        local = torch.full((h_node.shape[0],), -1, dtype=torch.long, device=h_node.device)
        local[nodes] = torch.arange(nodes.numel(), device=h_node.device)
        local_edges = local[edge_index[:, edges]]
        if pairs is not None:
            first, inverse = pairs
            kept = mask.edge_encoded[first]
            if self.encoder.edge_branch and torch.equal(kept[inverse], mask.edge_encoded):
                # The encoded pairs' rows, and where each encoded edge finds its pair among them.
                edge_row, pair_row = compacted_rows(mask.edge_encoded), compacted_rows(kept)
                local_pairs = (edge_row[first[kept]], pair_row[inverse[edges]])
                return self.encoder(h_node[nodes], h_edge[kept], local_edges, local_pairs)
            h_edge = h_edge[inverse]
        return self.encoder(h_node[nodes], h_edge[edges], local_edges)

    def check_feature_width(self, width: int) -> None:
        """Raise :class:`InputError` unless graphs with ``width`` numbers per entity are what the model reads."""
        if width != self.config.feature_dim:
            raise InputError(
                f"the graphs hold {width} numbers per entity but the model reads {self.config.feature_dim}: "
                "embed the graphs the checkpoint was trained on (window size, raw windows or the latents of its "
                "entity VAE)"
            )

    def encode(self, graph: Data, mask: EntityMask) -> EncoderOutput:
        """Encode the clean features of a graph or batch (no noise); with :func:`no_mask`, the embedding pass.

        Features are in the data's units: with ``standardise_inputs`` the stored statistics are applied here.
        """
        self.check_feature_width(graph.x.shape[1])
        # Both directions of a pair carry the same clean window (graph contract), so each pair is embedded once:
        # half the cost of the largest product of the pass, the (E, F) × (F, D) edge projection.
        pairs = None if self.config.index_rope else pair_rows(graph.edge_index)
        if pairs is None:
            h_node, h_edge = self.embed_inputs(graph, graph.x, graph.edge_attr, standardise=True)
        else:
            h_node, h_edge = self.embed_inputs(graph, graph.x, graph.edge_attr[pairs[0]], pairs[0], standardise=True)
        return self.encode_embedded(h_node, h_edge, graph.edge_index, mask, pairs)

    def forward(
        self,
        graph: Data,
        x_t: Tensor,
        edge_attr_t: Tensor,
        mask: EntityMask,
        t: Tensor,
        latent_noise: tuple[Tensor, Tensor] | None = None,
        pairs: tuple[Tensor, Tensor] | None = None,
    ) -> Prediction:
        """Denoise the targets of a masked batch.

        Parameters
        ----------
        graph : Data or Batch
            The batch's structure (``edge_index``, ``pos``, ``batch``) and its clean node features ``x`` (N, F),
            standardised (:meth:`standardise`) when ``standardise_inputs`` is on, like ``x_t`` and ``edge_attr_t``
            (``x`` is read in ``official`` mode only; ``edge_attr`` is not read).
        x_t : Tensor, shape (N, F)
            Node features with the target rows noised.
        edge_attr_t : Tensor, shape (E, F), or (P, F) with ``pairs``
            Edge features with the target rows noised. With ``pair_tokens`` and a split that keeps pairs together,
            only each pair's first direction is read: draw the noise with ``draw_noise(paired=True)``.
        mask : EntityMask
            The condition/target split.
        t : Tensor, shape (G,), int64
            Timestep of each graph.
        latent_noise : tuple of Tensor, optional
            ε of the latent reparameterisation z = μ + σ·ε of the encoded nodes (n_enc, H) and edges
            (e_enc, H); ``None`` decodes from μ (reconstructions).
        pairs : tuple of Tensor, optional
            :meth:`decoder_pairs` of the batch (not ``None``), when ``edge_attr_t`` holds one row per undirected
            pair in the order of ``pairs[0]``: ``Prediction.edge`` then holds one row per target pair too, and
            no edge row is ever handled per direction (what the training loss passes).

        Returns
        -------
        Prediction
        """
        node_graph, _, num_graphs = graph_ids(graph)
        if not self.config.edge_branch and bool(mask.edge_target.any()):
            raise InputError("a model without the edge branch has no edge target: use MaskConfig(edge_ratio=0)")
        per_pair = pairs is not None
        # One decoder token per undirected pair where the split keeps pairs together (``pair_tokens``): the step
        # then drew one noise per pair, so only each pair's first direction is read.
        if not per_pair:
            pairs = self.decoder_pairs(graph.edge_index, mask)
            if pairs is not None:
                edge_attr_t = edge_attr_t[pairs[0]]
        edge_target_rows = mask.edge_target if pairs is None else mask.edge_target[pairs[0]]
        if self.config.target_input == "mask_token":
            x_t = x_t.index_put((mask.node_target,), self.node_mask_token.to(x_t.dtype))
            edge_attr_t = edge_attr_t.index_put((edge_target_rows,), self.edge_mask_token.to(edge_attr_t.dtype))
        if pairs is None:
            h_node, h_edge = self.embed_inputs(graph, x_t, edge_attr_t)
        else:
            h_node, h_edge = self.embed_inputs(graph, x_t, edge_attr_t, pairs[0])
        enc_node, enc_edge = h_node, h_edge
        seen_target = (mask.node_encoded & mask.node_target).nonzero().squeeze(1)
        if seen_target.numel() and not mask.hide_targets:
            # ``official`` mode: the released encoder reads the targets' clean features (bug #6, kept on purpose).
            clean = self.embed_nodes(graph, graph.x)
            enc_node = h_node.index_put((seen_target,), clean[seen_target])
        if mask.hide_targets:
            if not self.config.encoder_mask_token:
                raise InputError("MaskConfig(mode='context') needs ModelConfig(encoder_mask_token=True)")
            # ``context`` mode: targets keep their place in the graph but show the encoder only a mask token.
            enc_node = enc_node.index_put((mask.node_target,), self.encoder_node_token.to(enc_node.dtype))
            if self.edge_embedding is not None:
                enc_edge = enc_edge.index_put((edge_target_rows,), self.encoder_edge_token.to(enc_edge.dtype))
        encoder_pairs = pairs
        # Directed decoder tokens: the encoder's edge rows are still equal per pair unless index RoPE rotates the
        # two directions by different angles or the encoder reads noised targets (``official``).
        if (
            pairs is None
            and not self.config.index_rope
            and (mask.hide_targets or not bool((mask.edge_encoded & mask.edge_target).any()))
        ):
            encoder_pairs = pair_rows(graph.edge_index)
            if encoder_pairs is not None:
                enc_edge = enc_edge[encoder_pairs[0]]
        encoded = self.encode_embedded(enc_node, enc_edge, graph.edge_index, mask, encoder_pairs)
        node_z, edge_z = encoded.node_mu, encoded.edge_mu
        if latent_noise is not None:
            node_z = node_z + torch.exp(0.5 * encoded.node_logvar) * latent_noise[0]
            edge_z = edge_z + torch.exp(0.5 * encoded.edge_logvar) * latent_noise[1]
        index = EntityIndex.build(graph.edge_index, node_graph, num_graphs, mask, pairs)
        node_rows = (~mask.node_target[mask.node_encoded]).nonzero().squeeze(1)
        if pairs is None:
            edge_rows = (~mask.edge_target[mask.edge_encoded]).nonzero().squeeze(1)
        else:
            # The encoder's row of each context pair's first direction.
            edge_rows = compacted_rows(mask.edge_encoded)[pairs[0][index.edge_context]]
        node, edge = self.decoder(h_node, h_edge, t, encoded, node_z, edge_z, (node_rows, edge_rows), index)
        if pairs is not None and not per_pair:
            edge = expand_pairs(edge, mask.edge_target, pairs)
        return Prediction(node=node, edge=edge, encoded=encoded)
