"""Dynamic diffusion decoder D_L: time embedding, per-graph joint transformers, decode blocks, output heads."""

from __future__ import annotations

from torch import Tensor, nn

from hmgdm_core.model.attention import GraphTransformer
from hmgdm_core.model.config import ModelConfig
from hmgdm_core.model.decode_block import DecodeBlock
from hmgdm_core.model.encoder import EncoderOutput
from hmgdm_core.model.entity_index import EntityIndex
from hmgdm_core.model.time_embedding import TimeEmbedding

__all__ = ["Decoder"]


def _head(config: ModelConfig) -> nn.Sequential:
    first, second = config.head_dims
    return nn.Sequential(
        nn.Linear(config.hidden_dim, first),
        nn.ReLU(),
        nn.Linear(first, second),
        nn.ReLU(),
        nn.Linear(second, config.feature_dim),
    )


def _tokens(config: ModelConfig) -> nn.Sequential:
    return nn.Sequential(
        nn.Linear(config.embed_dim, config.hidden_dim), nn.Linear(config.hidden_dim, config.hidden_dim)
    )


class Decoder(nn.Module):
    """Predicts the target entities from their noised embeddings and the encoder's latents (method-spec §6.4).

    Tokens u = P(embedding) for every entity. Joint stage: u += τ(t), context tokens ← sampled latents z, then
    one per-graph transformer over node tokens and one over edge tokens. Each of the L-1 decode blocks, from
    the deepest skip to the shallowest: u += τ(t), then :class:`DecodeBlock`. Heads H → 256 → 512 → F map the
    target tokens to the regression target.

    Parameters
    ----------
    config : ModelConfig
        Widths and depths.
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        edges = config.edge_branch
        self.feature_dim = config.feature_dim
        self.time_embedding = TimeEmbedding(config.hidden_dim, config.time_mlp_dim)
        self.node_tokens = _tokens(config)
        self.edge_tokens = _tokens(config) if edges else None
        self.node_joint = GraphTransformer(config.hidden_dim, config.joint_depth, config.num_heads)
        self.edge_joint = GraphTransformer(config.hidden_dim, config.joint_depth, config.num_heads) if edges else None
        self.blocks = nn.ModuleList(
            DecodeBlock(config.hidden_dim, config.num_heads, config.block_mlp_dim, edges, config.residual_decode)
            for _ in range(config.num_layers - 1)
        )
        self.node_head = _head(config)
        self.edge_head = _head(config) if edges else None

    def forward(
        self,
        node_embedding: Tensor,
        edge_embedding: Tensor,
        t: Tensor,
        encoded: EncoderOutput,
        node_z: Tensor,
        edge_z: Tensor,
        context_rows: tuple[Tensor, Tensor],
        index: EntityIndex,
    ) -> tuple[Tensor, Tensor]:
        """Predict the targets.

        Parameters
        ----------
        node_embedding : Tensor, shape (N, D)
            Input embeddings of all nodes (targets noised).
        edge_embedding : Tensor, shape (E, D)
            Input embeddings of all edge entities (targets noised): the directed edges, or one row per undirected
            pair when ``index`` counts pairs (``ModelConfig.pair_tokens``).
        t : Tensor, shape (G,), int64
            Timestep of each graph.
        encoded : EncoderOutput
            Encoder output over the encoded entities.
        node_z, edge_z : Tensor, shapes (n, H) and (e, H)
            Sampled (training) or mean latents of the encoded entities.
        context_rows : tuple of Tensor
            Rows of the encoder output that are context nodes / context edges (``index`` order).
        index : EntityIndex
            Batch bookkeeping.

        Returns
        -------
        node_prediction : Tensor, shape (n_t, F)
        edge_prediction : Tensor, shape (e_t, F)
        """
        node_rows, edge_rows = context_rows
        tau = self.time_embedding(t)
        node_tau, edge_tau = tau[index.node_graph], tau[index.edge_graph]
        node = self.node_tokens(node_embedding) + node_tau
        if self.edge_head is None:
            return self._nodes_only(node, node_tau, encoded, node_z[node_rows], node_rows, index)
        edge = self.edge_tokens(edge_embedding) + edge_tau
        # Under autocast the tokens come out of a Linear (bf16) and the states out of a LayerNorm (fp32): written
        # rows take the tokens' dtype here and in the decode blocks.
        node = node.index_put((index.node_context,), node_z[node_rows].to(node.dtype))
        edge = edge.index_put((index.edge_context,), edge_z[edge_rows].to(edge.dtype))
        # Every decode block replaces the context tokens by encoder states, and the heads read targets only: the
        # joint stage's last layer computes no output for them.
        node = self.node_joint(node, index.node_graph, index.num_graphs, index.node_context)
        edge = self.edge_joint(edge, index.edge_graph, index.num_graphs, index.edge_context)
        for depth in reversed(range(len(self.blocks))):
            node, edge = self.blocks[depth](
                node + node_tau,
                edge + edge_tau,
                encoded.node_skips[depth][node_rows],
                encoded.edge_skips[depth][edge_rows],
                index,
            )
        return self.node_head(node[index.node_target]), self.edge_head(edge[index.edge_target])

    def _nodes_only(
        self,
        node: Tensor,
        node_tau: Tensor,
        encoded: EncoderOutput,
        context_z: Tensor,
        rows: Tensor,
        index: EntityIndex,
    ) -> tuple[Tensor, Tensor]:
        # Without the edge branch there is no edge token and no edge target (the mask draws none).
        node = node.index_put((index.node_context,), context_z.to(node.dtype))
        node = self.node_joint(node, index.node_graph, index.num_graphs, index.node_context)
        for depth in reversed(range(len(self.blocks))):
            node = self.blocks[depth].node_step(node + node_tau, encoded.node_skips[depth][rows], index)
        return self.node_head(node[index.node_target]), node.new_zeros((0, self.feature_dim))
