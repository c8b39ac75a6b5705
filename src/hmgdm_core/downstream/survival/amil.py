"""Attention-based multiple-instance risk model (AMIL): a slide is a bag of patch embeddings.

Layout as in the CLAM / Patch-GCN survival code the paper follows (method spec §8.2):
FC ``F → hidden`` + ReLU + dropout, gated attention (Ilse et al. 2018) over the slide's patches,
FC ``hidden → head`` + ReLU + dropout, linear ``head → 1``.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn

from hmgdm_core.downstream.pooling import GatedAttentionPooling

__all__ = ["AttentionMIL"]


class AttentionMIL(nn.Module):
    """Risk of each slide from its patch embeddings.

    Parameters
    ----------
    in_channels : int
        F, the size of a patch embedding.
    hidden_channels : int
        Width after the first FC (512 in the paper).
    attention_channels : int
        Width of the gated-attention MLP (256).
    head_channels : int
        Width of the FC before the risk output (128).
    dropout : float
        Dropout after each FC and on the attention branches (0.25).
    risk_activation : {"sigmoid", "linear"}
        ``sigmoid`` bounds the risk to (0, 1) as the official code does (so hazard ratios stay
        within e); ``linear`` gives the usual unbounded Cox log relative hazard.
    """

    def __init__(
        self,
        in_channels: int,
        hidden_channels: int = 512,
        attention_channels: int = 256,
        head_channels: int = 128,
        dropout: float = 0.25,
        risk_activation: Literal["sigmoid", "linear"] = "sigmoid",
    ) -> None:
        super().__init__()
        if risk_activation not in ("sigmoid", "linear"):
            raise ValueError(f"risk_activation must be 'sigmoid' or 'linear', got {risk_activation!r}")
        self.in_channels = in_channels
        self.risk_activation = risk_activation
        self.embed = nn.Sequential(nn.Linear(in_channels, hidden_channels), nn.ReLU(), nn.Dropout(dropout))
        self.pool = GatedAttentionPooling(hidden_channels, attention_channels, dropout)
        self.head = nn.Sequential(
            nn.Linear(hidden_channels, head_channels), nn.ReLU(), nn.Dropout(dropout), nn.Linear(head_channels, 1)
        )

    def forward(self, x: Tensor, bag: Tensor, num_bags: int) -> tuple[Tensor, Tensor]:
        """Predict one risk per bag.

        Parameters
        ----------
        x : Tensor, shape (N, F)
            Patch embeddings of all bags, stacked.
        bag : Tensor, shape (N,), int64
            Bag index in ``[0, B)`` of each row.
        num_bags : int
            B.

        Returns
        -------
        risk : Tensor, shape (B,)
            Predicted risk (higher = shorter expected survival).
        attention : Tensor, shape (N,)
            Attention weight of each patch; the weights of one bag sum to 1.
        """
        pooled, attention = self.pool(self.embed(x), bag, num_bags)
        risk = self.head(pooled).squeeze(-1)
        if self.risk_activation == "sigmoid":
            risk = torch.sigmoid(risk)
        return risk, attention

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({self.in_channels}, risk_activation={self.risk_activation!r})"
