"""Square pixel windows centred on points, gathered in one vectorised indexing operation.

Each node (and each edge) of an entity graph carries the ``w × w`` RGB window centred on its
point, flattened channel-first (``reshape(-1, 3, w, w)``) and scaled from 0–255 to [-1, 1]:
3 × 32 × 32 = 3072 values by default, the H-MGDM feature size. The image is reflect-padded
by the half window, so windows at the border mirror the image instead of showing zeros.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from hmgdm_core.entities.stain import as_rgb
from hmgdm_core.errors import InputError

__all__ = ["gather_pixel_groups", "gather_pixels", "gather_windows", "unit_range", "window_centres"]


def gather_windows(rgb: np.ndarray, points_yx: np.ndarray, size: int = 32) -> torch.Tensor:
    """Windows of ``size × size`` pixels centred on points.

    Parameters
    ----------
    rgb : ndarray, shape (rows, cols, 3), uint8
        The image the points refer to.
    points_yx : ndarray, shape (K, 2), float
        ``(y, x)`` window centres in pixels of ``rgb``; rounded to the nearest pixel and clipped
        into the image. For an even ``size`` the centre pixel is the one at ``size // 2``.
    size : int
        Window side ``w`` in pixels (≥ 1). It may exceed the image: reflection repeats.

    Returns
    -------
    Tensor, shape (K, 3 * size * size), float32
        Channel-first flattened windows, values in [-1, 1].
    """
    rgb = as_rgb(rgb)
    return unit_range(gather_pixels(rgb, window_centres(points_yx, rgb.shape[:2]), size))


def window_centres(points_yx: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """The pixel each window is centred on: ``(y, x)`` rounded to the nearest pixel and clipped into ``shape``.

    Returns
    -------
    ndarray, shape (K, 2), int32
    """
    points = np.asarray(points_yx, dtype=np.float64).reshape(-1, 2)
    y = np.clip(np.rint(points[:, 0]), 0, shape[0] - 1)
    x = np.clip(np.rint(points[:, 1]), 0, shape[1] - 1)
    return np.stack([y, x], axis=1).astype(np.int32)


def gather_pixels(rgb: np.ndarray, centres_yx: np.ndarray, size: int = 32) -> torch.Tensor:
    """The 8-bit windows of :func:`gather_windows` around integer centres (from :func:`window_centres`).

    Returns
    -------
    Tensor, shape (K, 3 * size * size), uint8
        Channel-first flattened windows of the source pixels.
    """
    return gather_pixel_groups(rgb, [centres_yx], size)[0]


def gather_pixel_groups(rgb: np.ndarray, groups: Sequence[np.ndarray], size: int = 32) -> list[torch.Tensor]:
    """:func:`gather_pixels` for several sets of centres of one image (a graph's nodes and its edges).

    The image is padded once for all of them, not once per set.

    Returns
    -------
    list of Tensor, shape (K_i, 3 * size * size), uint8
        One per group, in order.
    """
    if size < 1:
        raise InputError(f"Window size must be at least 1 pixel, got {size}.")
    half = size // 2
    padded = _reflect_pad(rgb, half, size - half)
    # In padded coordinates a window centred on (y, x) starts at (y, x): the pad is `half`.
    view = np.lib.stride_tricks.sliding_window_view(padded, (size, size), axis=(0, 1))  # (R, C, 3, w, w)
    out = []
    for centres_yx in groups:
        centres = np.asarray(centres_yx, dtype=np.intp).reshape(-1, 2)
        windows = view[centres[:, 0], centres[:, 1]]  # one fancy-indexing copy: (K, 3, w, w) uint8
        out.append(torch.from_numpy(np.ascontiguousarray(windows).reshape(len(centres), 3 * size * size)))
    return out


def unit_range(pixels: torch.Tensor) -> torch.Tensor:
    """Map uint8 pixel values 0..255 to float32 in [-1, 1] (``u · 2/255 − 1``).

    Parameters
    ----------
    pixels : Tensor, uint8
        Any shape.

    Returns
    -------
    Tensor, float32
        Same shape. The one conversion used by windows and by storage, so stored uint8
        windows expand to bit-identical floats.
    """
    return torch.mul(pixels, 2.0 / 255.0).sub_(1.0)


def _reflect_pad(rgb: np.ndarray, before: int, after: int) -> np.ndarray:
    """Reflect-pad the two image axes; repeats the reflection when the pad exceeds the image."""
    padded = rgb
    while before > 0 or after > 0:
        # numpy's 'reflect' needs pad < size per call; chain calls for windows larger than the image.
        b = min(before, padded.shape[0] - 1, padded.shape[1] - 1)
        a = min(after, padded.shape[0] - 1, padded.shape[1] - 1)
        if b == 0 and a == 0:
            return np.pad(padded, ((before, after), (before, after), (0, 0)), mode="edge")
        padded = np.pad(padded, ((b, a), (b, a), (0, 0)), mode="reflect")
        before, after = before - b, after - a
    return padded
