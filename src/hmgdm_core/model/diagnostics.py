"""Diagnostics of a pre-trained encoder's latents (is the representation alive?)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["active_units"]


def active_units(node_mu: Sequence[np.ndarray] | np.ndarray, threshold: float = 0.01) -> int:
    """Count the latent dimensions whose μ varies across entities (Burda et al.'s "active units").

    A dimension whose variance of μ over all entities stays below ``threshold`` carries (almost) no information
    about its input: its posterior has collapsed onto the prior or onto a constant.

    Parameters
    ----------
    node_mu : array (M, H) or sequence of arrays (M_g, H)
        Node latent means μ of M entities (e.g. ``embed_dataset(..., entities=True).node``).
    threshold : float
        Variance below which a dimension counts as inactive (0.01, as in the issue's definition).

    Returns
    -------
    int
        Number of active dimensions, in [0, H].
    """
    rows = np.concatenate(list(node_mu)) if not isinstance(node_mu, np.ndarray) else node_mu
    if rows.shape[0] < 2:
        return 0
    return int((rows.astype(np.float64).var(axis=0) > threshold).sum())
