"""Undirected edge pairs: both directions of every edge, one row per pair, and back to both directions."""

from __future__ import annotations

import torch
from torch import Tensor

from hmgdm_core.masking import EntityMask

__all__ = ["compacted_rows", "expand_pairs", "pair_rows", "shared_pairs"]


def compacted_rows(flags: Tensor) -> Tensor:
    """The row each flagged entry takes in ``values[flags]``; shape ``flags.shape``, int64.

    Entries that are not flagged get the row of the flagged entry before them (−1 before the first): index with
    flagged entries only.
    """
    return torch.cumsum(flags.long(), 0) - 1


def pair_rows(edge_index: Tensor) -> tuple[Tensor, Tensor] | None:
    """One directed edge per undirected pair, and where every directed edge finds its pair among them.

    Parameters
    ----------
    edge_index : Tensor, shape (2, E), int64
        Directed edges; the graph contract stores both directions of every pair.

    Returns
    -------
    first : Tensor, shape (P,), int64
        The edges with source < target, one per pair.
    inverse : Tensor, shape (E,), int64
        For each edge, the row of ``first`` holding its pair, so that ``rows[first][inverse]`` equals ``rows``
        whenever the two directions carry equal rows (the contract's ``edge_attr``).
    None
        If some edge's reverse is missing (not a contract graph), so that callers keep every row.
    """
    src, dst = edge_index
    first = (src < dst).nonzero().squeeze(1)
    if 2 * first.numel() != src.numel():
        return None
    span = int(edge_index.max()) + 1 if src.numel() else 1
    keys = src[first] * span + dst[first]
    order = torch.argsort(keys)
    wanted = torch.minimum(src, dst) * span + torch.maximum(src, dst)
    found = torch.searchsorted(keys[order], wanted).clamp_max(max(first.numel() - 1, 0))
    inverse = order[found]
    if not torch.equal(keys[inverse], wanted):
        return None
    return first, inverse


def shared_pairs(edge_index: Tensor, mask: EntityMask) -> tuple[Tensor, Tensor] | None:
    """:func:`pair_rows` of a batch whose split gives both directions of every pair the same fate, else ``None``.

    Parameters
    ----------
    edge_index : Tensor, shape (2, E), int64
        Directed edges of the batch.
    mask : EntityMask
        The split; ``strict`` and ``context`` masks keep pairs together, ``official`` ones do not.

    Returns
    -------
    tuple of Tensor or None
        ``(first, inverse)`` as in :func:`pair_rows`.
    """
    pairs = pair_rows(edge_index)
    if pairs is None:
        return None
    first, inverse = pairs
    for flags in (mask.edge_target, mask.edge_encoded):
        if not torch.equal(flags[first][inverse], flags):
            return None
    return pairs


def expand_pairs(rows: Tensor, flags: Tensor, pairs: tuple[Tensor, Tensor]) -> Tensor:
    """Rows of the flagged pairs copied to both of their directions.

    Parameters
    ----------
    rows : Tensor, shape (p, ...)
        One row per flagged pair, in ascending pair order (the order of ``first``).
    flags : Tensor, shape (E,), bool
        Flags of the directed edges, equal within every pair (:func:`shared_pairs`).
    pairs : tuple of Tensor
        :func:`pair_rows` of the edges.

    Returns
    -------
    Tensor, shape (e, ...)
        One row per flagged directed edge, in ascending edge order.
    """
    first, inverse = pairs
    position = compacted_rows(flags[first])
    return rows[position[inverse[flags]]]
