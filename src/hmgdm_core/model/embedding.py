"""Input embedding of node or edge features: optional index RoPE, LayerNorm, projection, optional centroids."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

__all__ = ["EntityEmbedding", "index_in_graph"]


def index_in_graph(graph: Tensor, num_graphs: int) -> Tensor:
    """0-based position of every entity inside its graph.

    Parameters
    ----------
    graph : Tensor, shape (M,), int64
        Sorted graph id of each entity.
    num_graphs : int
        G.

    Returns
    -------
    Tensor, shape (M,), int64
    """
    sizes = torch.bincount(graph, minlength=num_graphs)
    starts = torch.cumsum(sizes, 0) - sizes
    return torch.arange(graph.numel(), device=graph.device) - starts[graph]


class EntityEmbedding(nn.Module):
    r"""LayerNorm(F) → Linear(F → D), with the released model's index RoPE and our optional centroid code.

    .. math::
        h = W\,\mathrm{LN}(R_m x) + b \;[+\; \mathrm{PE}(p / s)]

    where :math:`R_m` rotates each feature pair :math:`(x_{2k}, x_{2k+1})` by :math:`m\,\theta^{-2k/F}` for the
    entity's index :math:`m` in its graph, and PE is a fixed sinusoidal code of the (y, x) centroid :math:`p`
    in pixels over scale :math:`s` (D/2 channels per axis).

    Parameters
    ----------
    in_channels : int
        F.
    out_channels : int
        D.
    index_rope : bool
        Apply :math:`R_m` (the released code's only positional signal).
    rope_theta : float
        θ.
    centroid_encoding : bool
        Add PE of the centroid.
    centroid_scale : float
        s, in pixels.
    layernorm : bool
        Apply LN (without it the projection reads the features as they are).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        index_rope: bool,
        rope_theta: float,
        centroid_encoding: bool,
        centroid_scale: float,
        layernorm: bool = True,
    ) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(in_channels) if layernorm else nn.Identity()
        self.lin = nn.Linear(in_channels, out_channels)
        self.index_rope = index_rope
        self.rope_theta = rope_theta
        self.centroid_encoding = centroid_encoding
        self.centroid_scale = centroid_scale

    def reset_parameters(self) -> None:
        """Re-initialise the LayerNorm and the projection."""
        if isinstance(self.norm, nn.LayerNorm):
            self.norm.reset_parameters()
        self.lin.reset_parameters()

    def _rotate(self, x: Tensor, index: Tensor) -> Tensor:
        half = x.shape[-1] // 2
        freqs = self.rope_theta ** (-torch.arange(half, device=x.device, dtype=torch.float32) * 2 / x.shape[-1])
        angle = index.to(torch.float32).unsqueeze(-1) * freqs
        # One complex product rotates every (x_2k, x_2k+1) pair; an odd last feature is left as is.
        pairs = torch.view_as_complex(x[:, : 2 * half].float().reshape(-1, half, 2).contiguous())
        rotated = torch.view_as_real(pairs * torch.polar(torch.ones_like(angle), angle)).flatten(1).to(x.dtype)
        return rotated if 2 * half == x.shape[-1] else torch.cat([rotated, x[:, 2 * half :]], dim=1)

    def _centroid_code(self, pos: Tensor) -> Tensor:
        quarter = self.lin.out_features // 4
        freqs = torch.exp(-math.log(1e4) * torch.arange(quarter, device=pos.device, dtype=torch.float32) / quarter)
        angle = (pos.to(torch.float32) / self.centroid_scale).unsqueeze(-1) * freqs  # (M, 2, D/4)
        code = torch.cat([torch.sin(angle), torch.cos(angle)], dim=-1).flatten(1)
        return nn.functional.pad(code, (0, self.lin.out_features - code.shape[1]))

    def forward(
        self, x: Tensor, index: Tensor, pos: Tensor | None, standardisation: tuple[Tensor, Tensor] | None = None
    ) -> Tensor:
        """Embed features.

        Parameters
        ----------
        x : Tensor, shape (M, F), float32
            Node or edge features.
        index : Tensor, shape (M,), int64
            Index of each entity in its graph (see :func:`index_in_graph`).
        pos : Tensor, shape (M, 2), float32, optional
            (y, x) centroids in level-0 pixels; required when ``centroid_encoding`` is on.
        standardisation : tuple of Tensor, optional
            Per-feature mean and std, each (F,), to apply to ``x`` first, x ← (x − m) / s.

        Returns
        -------
        Tensor, shape (M, D)
        """
        if standardisation is not None:
            mean, std = standardisation
            if self.index_rope or isinstance(self.norm, nn.LayerNorm):
                x = (x - mean) / std
            else:
                # Folded into the projection, W (x - m)/s + b = (W/s) x + (b - (W/s) m): two passes over the
                # (M, F) rows fewer, which cost a third of the embedding pass on CPU.
                weight = self.lin.weight / std
                h = nn.functional.linear(x, weight, self.lin.bias - weight @ mean)
                return self._add_centroids(h, pos)
        if self.index_rope:
            x = self._rotate(x, index)
        return self._add_centroids(self.lin(self.norm(x)), pos)

    def _add_centroids(self, h: Tensor, pos: Tensor | None) -> Tensor:
        if self.centroid_encoding:
            if pos is None:
                raise ValueError("centroid_encoding needs the graph's pos")
            h = h + self._centroid_code(pos)
        return h

    def __repr__(self) -> str:
        return (
            f"{self.__class__.__name__}({self.lin.in_features}, {self.lin.out_features}, "
            f"index_rope={self.index_rope}, centroid_encoding={self.centroid_encoding})"
        )
