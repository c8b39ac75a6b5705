"""An encoder, gated-attention pooling and an MLP head: the paper's fine-tuned graph classifier.

The encoder is any :class:`torch.nn.Module` called as ``encoder(batch) -> (node_repr, batch_vector)``,
so the H-MGDM encoder, a baseline, or a test stand-in plug in alike; only the pooling and head
are defined here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn
from torch_geometric.data import Batch, Data

from hmgdm_core.downstream.pooling import GatedAttentionPooling

__all__ = ["GraphClassifier", "GraphPredictions", "predict_graphs"]


class GraphClassifier(nn.Module):
    """Classify whole graphs from their node representations.

    ``encoder(batch)`` gives node vectors ``h`` of shape (N, F) and the graph index of each node;
    :class:`GatedAttentionPooling` turns them into one vector per graph and an MLP
    F → ``hidden_channels`` → ReLU → C gives the logits (the official head is 256 → 128 → C).

    Parameters
    ----------
    encoder : nn.Module
        Called as ``encoder(batch)``; returns ``(node_repr, batch_vector)`` with shapes (N, F)
        and (N,). Its parameters are fine-tuned with the head.
    in_channels : int
        F, the size of the encoder's node vectors.
    num_classes : int
        C.
    hidden_channels : int
        Width of the MLP's hidden layer and of the attention MLP.
    dropout : float
        Dropout on the attention branches and before the last layer.
    """

    def __init__(
        self, encoder: nn.Module, in_channels: int, num_classes: int, hidden_channels: int = 128, dropout: float = 0.0
    ) -> None:
        super().__init__()
        self.encoder = encoder
        self.num_classes = num_classes
        self.pool = GatedAttentionPooling(in_channels, hidden_channels, dropout)
        self.head = nn.Sequential(
            nn.Linear(in_channels, hidden_channels),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(hidden_channels, num_classes),
        )

    def forward(self, batch: Batch) -> tuple[Tensor, Tensor]:
        """Return the logits of each graph and the attention weight of each node.

        Parameters
        ----------
        batch : torch_geometric.data.Batch
            B graphs, collated; passed unchanged to the encoder.

        Returns
        -------
        logits : Tensor, shape (B, C)
        attention : Tensor, shape (N,)
            Pooling weight of each node; they sum to 1 within each graph.
        """
        node_repr, batch_vector = self.encoder(batch)
        pooled, attention = self.pool(node_repr, batch_vector, batch.num_graphs)
        return self.head(pooled), attention


@dataclass(frozen=True)
class GraphPredictions:
    """Class probabilities and node attention of a list of graphs."""

    proba: np.ndarray
    """Shape (B, C), float32; each row sums to 1."""
    attention: list[np.ndarray]
    """B arrays; graph ``b``'s array has one pooling weight per node, in node order."""


def batches(graphs: Sequence[Data], order: np.ndarray, batch_size: int) -> list[tuple[np.ndarray, Batch]]:
    """Collate ``graphs`` in ``order`` into chunks of ``batch_size``.

    Parameters
    ----------
    graphs : sequence of Data
    order : np.ndarray, shape (n,), int
        Indices into ``graphs``, in the order wanted.
    batch_size : int

    Returns
    -------
    list of (np.ndarray, Batch)
        Each chunk's indices and its collated batch.
    """
    chunks = [order[start : start + batch_size] for start in range(0, len(order), batch_size)]
    return [(chunk, Batch.from_data_list([graphs[i] for i in chunk])) for chunk in chunks]


@torch.no_grad()
def predict_graphs(
    model: GraphClassifier, graphs: Sequence[Data], batch_size: int = 128, device: str | torch.device = "cpu"
) -> GraphPredictions:
    """Predict class probabilities in evaluation mode, keeping each graph's attention.

    Parameters
    ----------
    model : GraphClassifier
    graphs : sequence of Data
    batch_size : int
        Graphs per forward pass.
    device : str or torch.device
        Where to run; the model must already be there.

    Returns
    -------
    GraphPredictions
    """
    model.eval()
    probas, attentions = [], []
    for _, batch in batches(graphs, np.arange(len(graphs)), batch_size):
        batch = batch.to(device)
        logits, attention = model(batch)
        probas.append(torch.softmax(logits, dim=-1).cpu().numpy())
        attention = attention.cpu().numpy()
        attentions += [
            attention[start:stop] for start, stop in zip(batch.ptr[:-1].tolist(), batch.ptr[1:].tolist(), strict=True)
        ]
    return GraphPredictions(np.concatenate(probas), attentions)
