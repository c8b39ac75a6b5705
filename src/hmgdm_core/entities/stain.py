"""Optical density and H&E colour deconvolution with lookup tables (float32, no log per pixel).

Beer–Lambert: a stain's optical density is additive, ``OD = -log10(I / I0)`` per channel,
and each stain has a fixed OD direction in RGB (Ruifrok & Johnston, Anal. Quant. Cytol.
Histol. 23(4), 2001; the vectors scikit-image uses). A uint8 channel has only 256 values, so
``OD`` times each unmixing coefficient is a 256-entry table per channel and a stain image
is three table lookups and two additions, instead of a float64 log of every pixel.
"""

from __future__ import annotations

import math

import numpy as np

from hmgdm_core.errors import InputError

__all__ = ["HED_FROM_RGB", "as_rgb", "stain_od"]

# Rows: haematoxylin, eosin, DAB optical-density directions in (R, G, B).
_RGB_FROM_HED = np.array([[0.65, 0.70, 0.29], [0.07, 0.99, 0.11], [0.27, 0.57, 0.78]])
HED_FROM_RGB: np.ndarray = np.linalg.inv(_RGB_FROM_HED)
"""Unmixing matrix, shape (3, 3): ``od_rgb @ HED_FROM_RGB`` gives (H, E, DAB) optical densities."""

# +1 keeps black pixels finite (OD of 0 is log10(256) ≈ 2.4, the darkest a uint8 image can say).
_OD = (-np.log10((np.arange(256) + 1.0) / 256.0)).astype(np.float32)
_TABLES = (_OD[:, None, None] * HED_FROM_RGB[None, :, :].astype(np.float32)).astype(np.float32)


def check_mpp(mpp: float) -> float:
    """Return ``mpp`` as a float if it is a finite positive number of µm per pixel.

    Raises
    ------
    InputError
        Otherwise.
    """
    if not (math.isfinite(mpp) and mpp > 0):
        raise InputError(f"mpp must be a positive number of µm per pixel, got {mpp!r}.")
    return float(mpp)


def as_rgb(image: np.ndarray, what: str = "image") -> np.ndarray:
    """Check that ``image`` is RGB uint8 and return it as a C-contiguous array.

    Parameters
    ----------
    image : ndarray, shape (rows, cols, 3), uint8
        The image.
    what : str
        Names the image in the error message.

    Returns
    -------
    ndarray, shape (rows, cols, 3), uint8

    Raises
    ------
    InputError
        For any other shape or dtype (grayscale, RGBA, 16-bit, float).
    """
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8 or min(image.shape[:2]) < 1:
        raise InputError(
            f"{what} must be a non-empty (rows, cols, 3) uint8 RGB array, got shape {image.shape} and dtype "
            f"{image.dtype}. Convert it first (drop alpha with image[..., :3]; scale 16-bit or float images to 0-255)."
        )
    return np.ascontiguousarray(image)


def stain_od(rgb: np.ndarray, stain: int = 0) -> np.ndarray:
    """Optical density of one stain, by colour deconvolution.

    Parameters
    ----------
    rgb : ndarray, shape (rows, cols, 3), uint8
        H&E image.
    stain : int
        0 haematoxylin (nuclei), 1 eosin (cytoplasm, stroma), 2 the residual (DAB) channel.

    Returns
    -------
    ndarray, shape (rows, cols), float32
        Optical density (unitless, ≈ 0 on glass, ≈ 0.3–1.5 in haematoxylin-stained nuclei).
    """
    rgb = as_rgb(rgb)
    table = _TABLES[:, :, stain]
    out = table[rgb[..., 0], 0]
    out += table[rgb[..., 1], 1]
    out += table[rgb[..., 2], 2]
    return out
