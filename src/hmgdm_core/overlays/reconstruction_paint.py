"""Diffusion reconstructions painted back onto the region: entity windows pasted at their points, error maps.

Windows follow :func:`~hmgdm_core.graph.gather_windows`: a ``w × w`` window centred on the point ``(y, x)``
(rounded) covers rows ``y - w//2 … y - w//2 + w - 1`` and the same columns, so pasting the windows a graph was
built from at its points gives back the image they were cut from.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from hmgdm_core.embed import Reconstruction
from hmgdm_core.errors import InputError
from hmgdm_core.io.region import Region

__all__ = ["ReconstructionViews", "entity_value_map", "node_errors", "node_window_errors", "paint_reconstruction",
           "paint_windows"]


def _to_uint8(values: np.ndarray) -> np.ndarray:
    """[-1, 1] floats to 0..255 (the inverse of ``unit_range``, clipped)."""
    return np.clip(np.rint((values + 1.0) * 127.5), 0, 255).astype(np.uint8)


def paint_windows(
    canvas_shape: tuple[int, int],
    centres_yx: np.ndarray,
    windows: np.ndarray | Tensor,
    background: np.ndarray | None = None,
) -> np.ndarray:
    """Paste pixel windows at their centres into an RGB image, averaging where windows overlap.

    Parameters
    ----------
    canvas_shape : tuple of int
        ``(rows, cols)`` of the canvas, in read pixels of the region (``region.shape``).
    centres_yx : ndarray, shape (N, 2), float
        ``(y, x)`` window centres in canvas pixels (``region.from_level0(graph.pos)``), rounded to the nearest
        pixel. Parts of windows outside the canvas are clipped.
    windows : ndarray or Tensor, shape (N, 3, w, w), float
        Channel-first windows with values in [-1, 1] (the graph's features, or the VAE's decoded windows).
    background : ndarray, shape (rows, cols, 3), uint8, optional
        Pixels no window covers (e.g. the region's original image); black when omitted.

    Returns
    -------
    ndarray, shape (rows, cols, 3), uint8
        Covered pixels hold the mean of the covering windows mapped to 0..255 by ``(v + 1)·127.5``.
    """
    if isinstance(windows, Tensor):
        windows = windows.detach().float().cpu().numpy()
    windows = np.asarray(windows, dtype=np.float64)
    centres = np.asarray(centres_yx, dtype=np.float64).reshape(-1, 2)
    if windows.ndim != 4 or windows.shape[1] != 3 or windows.shape[2] != windows.shape[3]:
        raise InputError(f"windows must have shape (N, 3, w, w), got {windows.shape}.")
    if len(windows) != len(centres):
        raise InputError(f"{len(windows)} windows for {len(centres)} centres.")
    rows, cols = canvas_shape
    total = np.zeros((rows, cols, 3))
    count = np.zeros((rows, cols))
    size = windows.shape[2]
    for (cy, cx), window in zip(np.rint(centres).astype(np.int64), windows, strict=True):
        y0, x0 = cy - size // 2, cx - size // 2
        # Clip the window to the canvas: canvas [ya, yb) takes window rows [ya - y0, yb - y0).
        ya, yb, xa, xb = max(y0, 0), min(y0 + size, rows), max(x0, 0), min(x0 + size, cols)
        if ya >= yb or xa >= xb:
            continue
        total[ya:yb, xa:xb] += window[:, ya - y0 : yb - y0, xa - x0 : xb - x0].transpose(1, 2, 0)
        count[ya:yb, xa:xb] += 1
    if background is None:
        out = np.zeros((rows, cols, 3), dtype=np.uint8)
    else:
        if background.shape != (rows, cols, 3):
            raise InputError(f"background must have shape {(rows, cols, 3)}, got {background.shape}.")
        out = np.array(background, dtype=np.uint8)
    covered = count > 0
    out[covered] = _to_uint8(total[covered] / count[covered, None])
    return out


def entity_value_map(labels: np.ndarray, entity_id: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Paint one value per entity on the entity's pixels (reconstruction errors, attention weights).

    Parameters
    ----------
    labels : ndarray, shape (rows, cols), int
        Entity label image of the region (``entities_for(image, mpp, config).labels``); 0 is background.
    entity_id : ndarray, shape (N,), int
        The label of each node (the graph's ``entity_id``).
    values : ndarray, shape (N,), float
        One value per node; NaN for nodes without one (e.g. condition nodes, which are not reconstructed).

    Returns
    -------
    ndarray, shape (rows, cols), float32
        ``values[i]`` on the pixels labelled ``entity_id[i]``; NaN on background and on labels of no node.
    """
    labels = np.asarray(labels)
    entity_id = np.asarray(entity_id, dtype=np.int64).reshape(-1)
    values = np.asarray(values, dtype=np.float32).reshape(-1)
    if len(entity_id) != len(values):
        raise InputError(f"{len(values)} values for {len(entity_id)} entities.")
    out = np.full(labels.shape, np.nan, dtype=np.float32)
    if not len(entity_id):
        return out
    order = np.argsort(entity_id, kind="stable")
    sorted_ids = entity_id[order]
    slot = np.clip(np.searchsorted(sorted_ids, labels), 0, len(sorted_ids) - 1)
    found = (sorted_ids[slot] == labels) & (labels != 0)
    out[found] = values[order[slot[found]]]
    return out


def node_errors(x: Tensor, reconstruction: Reconstruction) -> np.ndarray:
    """Per-node reconstruction error: mean squared error of the predicted x0 against the clean features.

    Parameters
    ----------
    x : Tensor, shape (N, F)
        The graph's clean node features.
    reconstruction : Reconstruction
        A reconstruction of that graph (:func:`~hmgdm_core.embed.reconstruct`).

    Returns
    -------
    ndarray, shape (N,), float32
        The error of each target node; NaN for condition nodes.
    """
    target = reconstruction.mask.node_target.cpu()
    errors = np.full(x.shape[0], np.nan, dtype=np.float32)
    predicted = reconstruction.node_predicted.detach().float().cpu()
    errors[target.numpy()] = ((predicted - x[target].float()) ** 2).mean(dim=1).numpy()
    return errors


def node_window_errors(windows: Tensor, reconstruction: Reconstruction) -> np.ndarray:
    """Per-node pixel error: mean squared error of the predicted window against the entity's own window.

    With raw-window features this equals :func:`node_errors`; with VAE latents it compares the decoded
    prediction with the pixels, so both modes are on one scale.

    Parameters
    ----------
    windows : Tensor, shape (N, 3·w·w)
        The pixel graph's clean node features (channel-first windows in [-1, 1], flattened).
    reconstruction : Reconstruction
        A reconstruction of that graph (or of its VAE latents) with ``node_windows``.

    Returns
    -------
    ndarray, shape (N,), float32
        The error of each target node, in squared [-1, 1] units; NaN for condition nodes.
    """
    if reconstruction.node_windows is None:
        raise InputError("the reconstruction has no pixel windows: pass the entity VAE to reconstruct(..., vae=...)")
    target = reconstruction.mask.node_target.cpu()
    predicted = reconstruction.node_windows[1].detach().float().cpu().flatten(1)
    clean = windows[target].float().cpu()
    if predicted.shape != clean.shape:
        raise InputError(f"windows of {clean.shape[1]} values but the reconstruction decodes {predicted.shape[1]}.")
    errors = np.full(windows.shape[0], np.nan, dtype=np.float32)
    errors[target.numpy()] = ((predicted - clean) ** 2).mean(dim=1).numpy()
    return errors


@dataclass(frozen=True)
class ReconstructionViews:
    """Aligned views of one reconstruction over the region's read pixels (rows, cols)."""

    noised: np.ndarray
    """(rows, cols, 3) uint8: the original image with the noised target windows pasted at their points."""
    reconstructed: np.ndarray
    """(rows, cols, 3) uint8: the original image with the predicted target windows pasted at their points."""


def paint_reconstruction(
    reconstruction: Reconstruction, pos: Tensor | np.ndarray, region: Region, image: np.ndarray
) -> ReconstructionViews:
    """Paint the noised and the reconstructed target nodes of a reconstruction onto the region's image.

    Parameters
    ----------
    reconstruction : Reconstruction
        With node windows (raw-window features, or decoded through the entity VAE).
    pos : Tensor or ndarray, shape (N, 2)
        The graph's node points, level-0 ``(y, x)`` pixels.
    region : Region
        The region the image was read for; maps ``pos`` to its read pixels.
    image : ndarray, shape region.shape + (3,), uint8
        The original image; pixels no target window covers keep it, so the three views align.

    Returns
    -------
    ReconstructionViews
    """
    if reconstruction.node_windows is None:
        raise InputError(
            "the reconstruction has no pixel windows: its features are VAE latents, so pass the entity VAE to "
            "reconstruct(..., vae=...)"
        )
    points = region.from_level0(torch.as_tensor(pos).cpu().numpy())
    centres = points[reconstruction.mask.node_target.cpu().numpy()]
    noised, predicted = reconstruction.node_windows
    shape = region.shape
    return ReconstructionViews(
        noised=paint_windows(shape, centres, noised.clamp(-1, 1), image),
        reconstructed=paint_windows(shape, centres, predicted.clamp(-1, 1), image),
    )
