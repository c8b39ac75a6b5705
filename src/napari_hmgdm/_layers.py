"""Core objects to napari layer data (plain tuples; no viewer is touched here)."""

from __future__ import annotations

import dask.array as da
import numpy as np

from hmgdm_core.io import Slide

__all__ = ["slide_layer_data"]

# A level this large (pixels on its longer side) is not shown without coarser levels.
_MAX_UNPYRAMIDED = 4096


def _virtual_pyramid(level0: da.Array) -> list[da.Array]:
    """Lazily halved copies of a single-level image, so napari never loads level 0 whole."""
    levels = [level0]
    while max(levels[-1].shape[:2]) > _MAX_UNPYRAMIDED // 2:
        prev = levels[-1]
        half = da.coarsen(np.mean, prev.astype(np.float32), {0: 2, 1: 2}, trim_excess=True)
        levels.append(half.astype(np.uint8))
    return levels


def slide_layer_data(slide: Slide) -> tuple:
    """Layer data tuple showing ``slide`` as an RGB image in µm (or pixels when unknown).

    Parameters
    ----------
    slide : Slide
        An open slide; it must stay open while the layer exists.

    Returns
    -------
    tuple
        ``(data, kwargs, "image")`` where data is a list of lazy dask arrays, finest first,
        each ``(rows, cols, 3)`` uint8, and kwargs carry ``scale`` = level-0 µm/px.
    """
    levels = [lv.as_dask() for lv in slide.levels]
    if len(levels) == 1 and max(slide.shape) > _MAX_UNPYRAMIDED:
        levels = _virtual_pyramid(levels[0])
    scale = (slide.mpp, slide.mpp) if slide.mpp_known else (1.0, 1.0)
    kwargs = {
        "name": slide.path.name,
        "rgb": True,
        "multiscale": len(levels) > 1,
        "scale": scale,
        "units": ("µm", "µm") if slide.mpp_known else ("pixel", "pixel"),
        "metadata": {"hmgdm_path": str(slide.path), "hmgdm_mpp": slide.mpp if slide.mpp_known else None},
    }
    return (levels if len(levels) > 1 else levels[0], kwargs, "image")
