"""Writing tiled, pyramidal OME-TIFF files (heatmaps, reconstructions, exported regions)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from hmgdm_core.errors import InputError
from hmgdm_core.io.atomic import atomic_path

__all__ = ["pyramid_levels", "write_ome_tiff"]


def pyramid_levels(image: np.ndarray, min_size: int) -> list[np.ndarray]:
    """Halve ``image`` by 2×2 area averaging until its longer side is ≤ ``min_size``.

    Parameters
    ----------
    image : ndarray, shape (rows, cols) or (rows, cols, channels)
        Level 0.
    min_size : int
        Stop once the longer side is at most this many pixels.

    Returns
    -------
    list of ndarray
        Level 0 first; each level has ``ceil(n / 2)`` rows and columns of the previous one
        and the input's dtype (integers are rounded).
    """
    levels = [image]
    while max(levels[-1].shape[:2]) > min_size:
        prev = levels[-1]
        pad = [(0, prev.shape[0] % 2), (0, prev.shape[1] % 2)] + [(0, 0)] * (prev.ndim - 2)
        padded = np.pad(prev, pad, mode="edge").astype(np.float64)
        mean = (padded[0::2, 0::2] + padded[1::2, 0::2] + padded[0::2, 1::2] + padded[1::2, 1::2]) / 4
        levels.append(np.rint(mean).astype(image.dtype) if np.issubdtype(image.dtype, np.integer) else
                      mean.astype(image.dtype))
    return levels


def write_ome_tiff(
    path: str | Path,
    image: np.ndarray,
    mpp: float,
    *,
    tile: int = 256,
    compression: str = "zlib",
) -> Path:
    """Write a tiled, pyramidal OME-TIFF atomically (temporary file, then rename).

    The sub-resolutions are stored as SubIFDs halving each time, as QuPath, napari and
    :func:`hmgdm_core.io.open_slide` expect.

    Parameters
    ----------
    path : str or Path
        Output file; an existing file is replaced only once the new one is complete.
    image : ndarray, shape (rows, cols, 3) uint8 RGB, or (rows, cols) numeric
        Level 0. Single-channel data (e.g. a float32 heatmap) is written as one plane.
    mpp : float
        Level-0 microns per pixel, stored as OME ``PhysicalSizeX/Y``.
    tile : int
        Tile edge in pixels (a multiple of 16).
    compression : str
        A tifffile compression name (``"zlib"``, ``"jpeg"``, ``"none"``...).

    Returns
    -------
    Path
        The written file.
    """
    import tifffile

    image = np.asarray(image)
    rgb = image.ndim == 3 and image.shape[2] == 3
    if not (image.ndim == 2 or rgb) or image.size == 0:
        raise InputError(f"write_ome_tiff needs a (rows, cols) or (rows, cols, 3) image, got shape {image.shape}.")
    if rgb and image.dtype != np.uint8:
        raise InputError(f"RGB images must be uint8, got {image.dtype}.")
    if tile % 16 or tile <= 0:
        raise InputError(f"tile must be a positive multiple of 16, got {tile}.")
    if not mpp > 0:
        raise InputError(f"mpp must be positive, got {mpp!r}.")
    path = Path(path)
    levels = pyramid_levels(image, tile)
    options = {
        "tile": (tile, tile),
        "compression": None if compression == "none" else compression,
        "photometric": "rgb" if rgb else "minisblack",
    }
    metadata = {"axes": "YXS" if rgb else "YX", "PhysicalSizeX": mpp, "PhysicalSizeY": mpp,
                "PhysicalSizeXUnit": "µm", "PhysicalSizeYUnit": "µm"}
    # TiffWriter closes before atomic_path renames the finished file into place.
    with atomic_path(path) as tmp, tifffile.TiffWriter(tmp, bigtiff=image.nbytes > 2**31, ome=True) as tif:
        tif.write(levels[0], subifds=len(levels) - 1, metadata=metadata, **options)
        for level in levels[1:]:
            tif.write(level, subfiletype=1, **options)
    return path
