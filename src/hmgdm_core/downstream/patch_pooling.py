"""One vector per image or slide: the patch embeddings of a dataset file pooled (``hmgdm embed --pool``).

Slide-level labels (a region's or slide's class) belong to the whole image, not to each patch; pooling
its patch embeddings gives ``hmgdm classify`` one sample per image, as the label is meant.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np

from hmgdm_core.errors import InputError

__all__ = ["POOLS", "pool_patches", "stack_rows"]

POOLS = ("mean", "max")
_PER_ROW = ("labels", "groups", "label_names")


def pool_patches(arrays: dict[str, np.ndarray], how: Literal["mean", "max"], name: str) -> dict[str, np.ndarray]:
    """Pool one dataset's patch embeddings into a single row.

    Parameters
    ----------
    arrays : dict of str to ndarray
        ``embeddings`` (G, d) and optional per-patch ``labels``, ``groups``, ``label_names`` (G,).
    how : {'mean', 'max'}
        Element-wise mean or maximum over the G patches.
    name : str
        The image or slide (e.g. the dataset file's stem), written as ``names``.

    Returns
    -------
    dict of str to ndarray
        ``embeddings`` (1, d), ``names`` (1,), and each per-patch key whose value is the same for all
        patches (a label that differs between patches of one image is not the image's label: it is left out).
    """
    if how not in POOLS:
        raise InputError(f"pool must be one of {', '.join(POOLS)}, got {how!r}")
    embeddings = np.asarray(arrays["embeddings"])
    if embeddings.ndim != 2 or len(embeddings) == 0:
        raise InputError(f"{name}: no patch embedding to pool")
    pooled = embeddings.mean(axis=0) if how == "mean" else embeddings.max(axis=0)
    out = {"embeddings": pooled[None].astype(embeddings.dtype), "names": np.array([name], dtype=str)}
    for key in _PER_ROW:
        values = arrays.get(key)
        if values is not None and len(np.unique(values)) == 1:
            out[key] = np.asarray(values)[:1]
    return out


def stack_rows(parts: Sequence[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Concatenate the arrays of several datasets; a key is kept only where every part has it."""
    keys = [k for k in parts[0] if all(k in p for p in parts)] if parts else []
    return {k: np.concatenate([p[k] for p in parts]) for k in keys}
