"""Timestep embedding τ(t): sinusoidal code → MLP (method-spec §6.3)."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

__all__ = ["TimeEmbedding", "sinusoidal_timestep_code"]


def sinusoidal_timestep_code(t: Tensor, channels: int) -> Tensor:
    """DDPM/fairseq code [sin(t·f_k), cos(t·f_k)] with f_k = exp(-ln(10⁴)·k/(C/2 - 1)).

    Parameters
    ----------
    t : Tensor, shape (G,), int64
        Timesteps.
    channels : int
        C (even).

    Returns
    -------
    Tensor, shape (G, C), float32
    """
    half = channels // 2
    freqs = torch.exp(-math.log(1e4) * torch.arange(half, device=t.device, dtype=torch.float32) / max(half - 1, 1))
    angle = t.to(torch.float32).unsqueeze(-1) * freqs
    return torch.cat([torch.sin(angle), torch.cos(angle)], dim=-1)


class TimeEmbedding(nn.Module):
    """τ(t) = Linear(Hm → H)(ReLU(Linear(Hm → Hm)(ReLU(Linear(H → Hm)(code(t)))))).

    Parameters
    ----------
    channels : int
        H, the width of the code and of the output (256).
    mlp_channels : int
        Hm, the hidden width (1024).
    """

    def __init__(self, channels: int, mlp_channels: int) -> None:
        super().__init__()
        self.channels = channels
        self.mlp = nn.Sequential(
            nn.Linear(channels, mlp_channels),
            nn.ReLU(),
            nn.Linear(mlp_channels, mlp_channels),
            nn.ReLU(),
            nn.Linear(mlp_channels, channels),
        )

    def forward(self, t: Tensor) -> Tensor:
        """Embed timesteps (G,) into (G, H)."""
        return self.mlp(sinusoidal_timestep_code(t, self.channels))
