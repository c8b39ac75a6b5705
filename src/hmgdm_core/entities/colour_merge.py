r"""Hierarchical merging of adjacent superpixels with similar colour (histocartography's recipe).

Each region is described by its L2-normalised mean RGB colour and three L2-normalised 4-bin
channel histograms (bin edges 0, 64, 128, 192, 256). The dissimilarity of two touching regions is

.. math::

    w(i, j) = w_h \frac{1}{3} \sum_c \frac{\lVert h_{i,c} - h_{j,c} \rVert}{2}
            + w_m \frac{\lVert m_i - m_j \rVert}{2}

and the most similar touching pair is merged while ``w < threshold``, recomputing the merged
region's weights to its neighbours (as ``skimage.graph.merge_hierarchical`` does). Differences
from histocartography 0.2.1, on purpose: its g and b histograms are overwritten by
``r / ‖g‖`` and ``r / ‖b‖`` (a bug), and its merge weight drops the ``/2`` of its initial weight;
here one formula is used throughout. The merge state is running sums (pixel count, RGB sums,
histogram counts), so a merge costs O(1) array work and never revisits pixels.
"""

from __future__ import annotations

import heapq

import numpy as np

__all__ = ["colour_stats", "merge_by_colour"]

_BINS = 4


def colour_stats(labels: np.ndarray, n: int, rgb: np.ndarray) -> np.ndarray:
    """Running-sum colour state of each region: count, RGB sums and histogram counts.

    Parameters
    ----------
    labels : ndarray, shape (rows, cols), int32
        Labels 0..N (0 is ignored).
    n : int
        Number of regions N.
    rgb : ndarray, shape (rows, cols, 3), uint8
        The image.

    Returns
    -------
    ndarray, shape (N + 1, 16), float64
        Row ``i``: pixel count, sums of R, G, B, then 3 × 4 histogram counts.
    """
    flat = labels.ravel()
    pix = rgb.reshape(-1, 3)
    size = n + 1
    cols = [np.bincount(flat, minlength=size).astype(np.float64)]
    cols += [np.bincount(flat, pix[:, c], size) for c in range(3)]
    for c in range(3):
        hist = np.bincount(flat * _BINS + (pix[:, c] >> 6), minlength=size * _BINS)
        cols += list(hist.reshape(size, _BINS).T.astype(np.float64))
    return np.stack(cols, axis=1)


def _descriptor(state: np.ndarray) -> np.ndarray:
    """Normalised mean colour (3) and histograms (3 × 4) from running sums, shape (..., 15)."""
    mean = state[..., 1:4] / np.maximum(state[..., :1], 1.0)
    mean = mean / np.maximum(np.linalg.norm(mean, axis=-1, keepdims=True), 1e-12)
    hist = state[..., 4:].reshape(*state.shape[:-1], 3, _BINS)
    hist = hist / np.maximum(np.linalg.norm(hist, axis=-1, keepdims=True), 1e-12)
    return np.concatenate([mean, hist.reshape(*state.shape[:-1], 3 * _BINS)], axis=-1)


def _weight(da: np.ndarray, db: np.ndarray, w_hist: float, w_mean: float) -> np.ndarray:
    dmean = np.linalg.norm(da[..., :3] - db[..., :3], axis=-1) / 2
    dh = (da[..., 3:] - db[..., 3:]).reshape(*da.shape[:-1], 3, _BINS)
    dhist = np.linalg.norm(dh, axis=-1).mean(axis=-1) / 2
    return w_hist * dhist + w_mean * dmean


def merge_by_colour(
    state: np.ndarray, pairs: np.ndarray, threshold: float, w_hist: float = 0.5, w_mean: float = 0.5
) -> np.ndarray:
    """Merge touching regions hierarchically while their colour dissimilarity is below ``threshold``.

    Parameters
    ----------
    state : ndarray, shape (N + 1, 16), float64
        From :func:`colour_stats` (row 0, the background, is ignored).
    pairs : ndarray, shape (P, 2), int64
        Touching region pairs ``(a, b)``, ids 1..N.
    threshold : float
        Merge while the smallest weight is below this (histocartography example: 0.02).
    w_hist, w_mean : float
        Weights of the histogram and mean-colour terms.

    Returns
    -------
    ndarray, shape (N + 1,), int32
        Lookup table old id → new id, new ids 1..M sequential in order of their smallest old
        id; entry 0 stays 0.
    """
    n = state.shape[0] - 1
    parent = np.arange(n + 1)
    if len(pairs) and threshold > 0:
        state = state.copy()
        desc = _descriptor(state)
        weights = _weight(desc[pairs[:, 0]], desc[pairs[:, 1]], w_hist, w_mean)
        neighbours: list[set[int]] = [set() for _ in range(n + 1)]
        for a, b in pairs.tolist():
            neighbours[a].add(b)
            neighbours[b].add(a)
        version = [0] * (n + 1)
        heap = [(w, a, b, 0, 0) for w, (a, b) in zip(weights.tolist(), pairs.tolist(), strict=True) if w < threshold]
        heapq.heapify(heap)
        while heap:
            _, a, b, va, vb = heapq.heappop(heap)
            if version[a] != va or version[b] != vb or parent[a] != a or parent[b] != b:
                continue  # stale: one side merged or changed since this weight was computed
            parent[b] = a
            state[a] += state[b]
            version[a] += 1
            others = (neighbours[a] | neighbours[b]) - {a, b}
            for c in neighbours[b]:
                neighbours[c].discard(b)
            neighbours[b] = set()
            neighbours[a] = others
            if not others:
                continue
            others_arr = np.fromiter(others, dtype=np.int64, count=len(others))
            desc_a = _descriptor(state[a])
            new_w = _weight(
                np.broadcast_to(desc_a, (len(others_arr), desc_a.shape[0])),
                _descriptor(state[others_arr]),
                w_hist,
                w_mean,
            )
            for c, w in zip(others_arr.tolist(), new_w.tolist(), strict=True):
                neighbours[c].add(a)
                if w < threshold:
                    heapq.heappush(heap, (w, a, c, version[a], version[c]))
    root = parent.copy()
    while True:  # path compression, vectorised
        nxt = root[root]
        if np.array_equal(nxt, root):
            break
        root = nxt
    is_root = root == np.arange(n + 1)
    is_root[0] = False
    new_id = np.cumsum(is_root).astype(np.int32)
    lut = new_id[root]
    lut[0] = 0
    return lut
