"""Per-graph attention: tokens attend only to tokens of their own graph (fixing the released bug #8).

Tokens of a batch are packed into a dense (G, L_max, C) tensor with PyG's ``to_dense_batch`` and attended with
``scaled_dot_product_attention`` under a key-padding mask, so memory and time grow with Σ_g N_g², never with
(Σ_g N_g)² as in the released batch-wide attention; on CPU PyTorch picks its flash kernel for this mask.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn.functional import scaled_dot_product_attention
from torch_geometric.utils import to_dense_batch

__all__ = ["GraphCrossAttention", "GraphTransformer", "dense_attention"]


def dense_attention(q: Tensor, k: Tensor, v: Tensor, key_valid: Tensor, num_heads: int) -> Tensor:
    """Multi-head attention of padded per-graph blocks.

    Parameters
    ----------
    q : Tensor, shape (G, Lq, C)
        Queries.
    k, v : Tensor, shape (G, Lk, C)
        Keys and values.
    key_valid : Tensor, shape (G, Lk), bool
        Which key slots hold a real token; every graph must have at least one.
    num_heads : int
        Heads; C must be divisible by it.

    Returns
    -------
    Tensor, shape (G, Lq, C)
    """
    g, lq, c = q.shape

    def split(t: Tensor) -> Tensor:
        return t.reshape(g, t.shape[1], num_heads, c // num_heads).transpose(1, 2)

    out = scaled_dot_product_attention(split(q), split(k), split(v), attn_mask=key_valid[:, None, None, :])
    return out.transpose(1, 2).reshape(g, lq, c)


class GraphTransformer(nn.Module):
    """Pre-LN transformer over the tokens of each graph: the decoder's joint stage (method-spec §6.4).

    Each layer is ``x + Attn(LN(x))`` (qkv without bias) followed by ``Linear(GELU(Linear(LN(x))))`` *without*
    a residual, as released; a final LayerNorm closes the stack.

    Parameters
    ----------
    channels : int
        Token width C.
    depth : int
        Number of layers.
    num_heads : int
        Attention heads.
    """

    def __init__(self, channels: int, depth: int, num_heads: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.attn_norms = nn.ModuleList(nn.LayerNorm(channels) for _ in range(depth))
        self.qkv = nn.ModuleList(nn.Linear(channels, 3 * channels, bias=False) for _ in range(depth))
        self.out = nn.ModuleList(nn.Linear(channels, channels) for _ in range(depth))
        self.ff = nn.ModuleList(
            nn.Sequential(
                nn.LayerNorm(channels), nn.Linear(channels, channels), nn.GELU(), nn.Linear(channels, channels)
            )
            for _ in range(depth)
        )
        self.final_norm = nn.LayerNorm(channels)

    def forward(self, x: Tensor, graph: Tensor, num_graphs: int, discard: Tensor | None = None) -> Tensor:
        """Attend within graphs.

        Parameters
        ----------
        x : Tensor, shape (M, C)
            Tokens, sorted by graph.
        graph : Tensor, shape (M,), int64
            Graph id of each token.
        num_graphs : int
            G.
        discard : Tensor, shape (k,), int64, optional
            Rows whose outputs the caller overwrites. They are still keys and values in every layer, but the last
            layer computes no query, feed-forward or norm for them (the decoder's context tokens: every decode
            block replaces them by encoder states), and their output rows are 0. The other rows are unchanged.

        Returns
        -------
        Tensor, shape (M, C)
        """
        if x.shape[0] == 0:
            return self.final_norm(x)
        dense, valid = to_dense_batch(x, graph, batch_size=num_graphs)
        # A graph without tokens would leave a fully masked row; give it one dummy key (its output is dropped).
        key_valid = valid.clone()
        key_valid[:, 0] = True
        layers = list(zip(self.attn_norms, self.qkv, self.out, self.ff, strict=True))
        full = layers if discard is None else layers[:-1]
        for norm, qkv, out, ff in full:
            q, k, v = qkv(norm(dense)).chunk(3, dim=-1)
            dense = dense + out(dense_attention(q, k, v, key_valid, self.num_heads))
            dense = ff(dense)
        if discard is None:
            return self.final_norm(dense[valid])
        norm, qkv, out, ff = layers[-1]
        c = x.shape[1]
        k, v = nn.functional.linear(norm(dense), qkv.weight[c:]).chunk(2, dim=-1)
        kept = torch.ones(x.shape[0], dtype=torch.bool, device=x.device)
        kept[discard] = False
        if not bool(kept.any()):
            return x.new_zeros(x.shape)
        rows, rows_graph = dense[valid][kept], graph[kept]
        q, q_valid = to_dense_batch(nn.functional.linear(norm(rows), qkv.weight[:c]), rows_graph, batch_size=num_graphs)
        rows = rows + out(dense_attention(q, k, v, key_valid, self.num_heads)[q_valid])
        kept_out = self.final_norm(ff(rows))
        return kept_out.new_zeros(x.shape).index_put((kept,), kept_out)


class GraphCrossAttention(nn.Module):
    """Queries of each graph attend to the keys of the same graph; one LayerNorm shared by q, k and v.

    Parameters
    ----------
    channels : int
        Width C of queries, keys and values.
    num_heads : int
        Attention heads.
    """

    def __init__(self, channels: int, num_heads: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.norm = nn.LayerNorm(channels)
        self.q = nn.Linear(channels, channels)
        self.k = nn.Linear(channels, channels)
        self.v = nn.Linear(channels, channels)
        self.out = nn.Linear(channels, channels)

    def forward(
        self, query: Tensor, query_graph: Tensor, memory: Tensor, memory_graph: Tensor, num_graphs: int
    ) -> tuple[Tensor, Tensor]:
        """Cross-attend.

        Parameters
        ----------
        query : Tensor, shape (Mq, C)
            Query tokens, sorted by graph.
        query_graph : Tensor, shape (Mq,), int64
            Graph of each query.
        memory : Tensor, shape (Mk, C)
            Key/value tokens, sorted by graph.
        memory_graph : Tensor, shape (Mk,), int64
            Graph of each key.
        num_graphs : int
            G.

        Returns
        -------
        out : Tensor, shape (Mq, C)
            Attention output (zeros for queries whose graph has no key).
        answered : Tensor, shape (Mq,), bool
            Whether the query's graph had at least one key.
        """
        has_key = torch.bincount(memory_graph, minlength=num_graphs) > 0
        answered = has_key[query_graph]
        if query.shape[0] == 0 or memory.shape[0] == 0:
            return torch.zeros_like(query), answered
        q_dense, q_valid = to_dense_batch(self.q(self.norm(query)), query_graph, batch_size=num_graphs)
        memory = self.norm(memory)
        k_dense, k_valid = to_dense_batch(self.k(memory), memory_graph, batch_size=num_graphs)
        v_dense, _ = to_dense_batch(self.v(memory), memory_graph, batch_size=num_graphs)
        k_valid = k_valid | ~has_key[:, None]  # keyless graphs attend to padding; their rows are zeroed below
        out = self.out(dense_attention(q_dense, k_dense, v_dense, k_valid, self.num_heads)[q_valid])
        return torch.where(answered[:, None], out, torch.zeros_like(out)), answered
