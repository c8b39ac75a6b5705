"""Which entities touch, and along how many pixel edges, from shifted label comparisons.

Comparing the label image with itself shifted by one row and by one column finds every
4-connected boundary between two different labels in O(pixels), with no per-label dilation
(histocartography's RAG builder dilates a full-image mask per label: O(N·pixels)).
"""

from __future__ import annotations

import numpy as np

__all__ = ["label_adjacency"]


def label_adjacency(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pairs of touching entities and the length of their shared boundary.

    Parameters
    ----------
    labels : ndarray, shape (rows, cols), integer
        Label image; 0 is background and never part of a pair.

    Returns
    -------
    pairs : ndarray, shape (P, 2), int64
        Label pairs ``(a, b)`` with ``0 < a < b``, sorted lexicographically, each once.
    boundary : ndarray, shape (P,), int64
        Number of 4-neighbour pixel pairs (one from each entity) along their boundary,
        i.e. the shared boundary length in pixels.
    """
    labels = np.asarray(labels)
    keys = []
    big = np.int64(int(labels.max(initial=0)) + 1)
    for a, b in ((labels[:, :-1], labels[:, 1:]), (labels[:-1, :], labels[1:, :])):
        touch = (a != b) & (a > 0) & (b > 0)
        la = a[touch].astype(np.int64)
        lb = b[touch].astype(np.int64)
        keys.append(np.minimum(la, lb) * big + np.maximum(la, lb))
    key, boundary = np.unique(np.concatenate(keys), return_counts=True)
    pairs = np.stack([key // big, key % big], axis=1)
    return pairs.astype(np.int64), boundary.astype(np.int64)
