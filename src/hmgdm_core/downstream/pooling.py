"""Gated-attention pooling of a set of vectors per graph (or per bag), Ilse et al. 2018.

https://arxiv.org/abs/1802.04712. The official H-MGDM classifier gates with
Linear → BatchNorm → ReLU → Linear; BatchNorm mixes statistics of all graphs in a batch, so a
graph's attention would depend on its batch-mates. The Ilse gate used here is per vector, and
the softmax runs within each graph, so graphs never influence each other.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch_geometric.utils import scatter, softmax

__all__ = ["GatedAttentionPooling"]


class GatedAttentionPooling(nn.Module):
    r"""Attention-weighted sum of each graph's node vectors.

    .. math::
        a_i = \mathbf{w}^\top \left( \tanh(\mathbf{V} \mathbf{h}_i) \odot
              \sigma(\mathbf{U} \mathbf{h}_i) \right), \qquad
        \alpha_i = \frac{\exp a_i}{\sum_{j \in g(i)} \exp a_j}, \qquad
        \mathbf{z}_g = \sum_{i \in g} \alpha_i \mathbf{h}_i

    where :math:`\mathbf{h}_i` is node :math:`i`'s vector, :math:`g(i)` the graph it belongs
    to, :math:`\mathbf{V}, \mathbf{U}` are ``attention_channels × in_channels`` matrices (with
    biases), :math:`\mathbf{w}` a vector, :math:`\sigma` the logistic function.

    Parameters
    ----------
    in_channels : int
        Size F of each node vector.
    attention_channels : int
        Rows of V and U (the attention MLP width).
    dropout : float
        Dropout on the tanh and sigmoid branches during training.
    """

    def __init__(self, in_channels: int, attention_channels: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.attention_channels = attention_channels
        self.tanh_branch = nn.Sequential(nn.Linear(in_channels, attention_channels), nn.Tanh(), nn.Dropout(dropout))
        self.gate_branch = nn.Sequential(nn.Linear(in_channels, attention_channels), nn.Sigmoid(), nn.Dropout(dropout))
        self.score = nn.Linear(attention_channels, 1)

    def reset_parameters(self) -> None:
        """Re-initialise all weights."""
        for layer in (self.tanh_branch[0], self.gate_branch[0], self.score):
            layer.reset_parameters()

    def forward(self, x: Tensor, batch: Tensor | None = None, num_graphs: int | None = None) -> tuple[Tensor, Tensor]:
        """Pool node vectors into one vector per graph.

        Parameters
        ----------
        x : Tensor, shape (N, F)
            Node (or patch) vectors of all graphs, stacked.
        batch : Tensor, shape (N,), int64, optional
            Graph index in ``[0, B)`` of each row (PyG's ``batch`` vector); all rows belong to one
            graph when omitted.
        num_graphs : int, optional
            B; defaults to ``batch.max() + 1``. Pass it when trailing graphs may be empty.

        Returns
        -------
        pooled : Tensor, shape (B, F)
            Attention-weighted sum per graph (zeros for an empty graph).
        attention : Tensor, shape (N,)
            Each row's weight α; the weights of one graph sum to 1.
        """
        if batch is None:
            batch = torch.zeros(x.shape[0], dtype=torch.long, device=x.device)
        if num_graphs is None:
            num_graphs = int(batch.max()) + 1 if batch.numel() else 0
        scores = self.score(self.tanh_branch(x) * self.gate_branch(x)).squeeze(-1)
        attention = softmax(scores, batch, num_nodes=x.shape[0])
        pooled = scatter(attention.unsqueeze(-1) * x, batch, dim=0, dim_size=num_graphs, reduce="sum")
        return pooled, attention

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({self.in_channels}, attention_channels={self.attention_channels})"
