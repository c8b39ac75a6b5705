"""Turn what the user selected in the viewer (a drawn shape, the field of view) into a Region.

Only viewer state is read here, on the GUI thread; the result is a plain
:class:`hmgdm_core.io.Region` that workers can take.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from hmgdm_core.errors import RegionError
from hmgdm_core.io import Region

if TYPE_CHECKING:
    import napari

__all__ = ["region_from_box", "region_from_shape", "region_from_view", "slide_of"]


def slide_of(image_layer: napari.layers.Image) -> tuple[str, float, tuple[int, int]]:
    """The slide behind an image layer opened by this plugin.

    Returns
    -------
    tuple
        ``(path, level-0 µm/px, level-0 (rows, cols))``.

    Raises
    ------
    RegionError
        If the layer was not opened by napari-hmgdm or its resolution is unknown.
    """
    path = image_layer.metadata.get("hmgdm_path")
    mpp = image_layer.metadata.get("hmgdm_mpp")
    if path is None:
        raise RegionError(f"Layer {image_layer.name!r} was not opened with napari-hmgdm; open the slide with it.")
    if mpp is None:
        raise RegionError(f"{path}: the resolution (µm/px) is unknown; reopen it with a known mpp.")
    level0 = image_layer.data[0] if image_layer.multiscale else image_layer.data
    return path, float(mpp), (int(level0.shape[0]), int(level0.shape[1]))


def region_from_box(
    world_min: np.ndarray, world_max: np.ndarray, image_layer: napari.layers.Image, mpp: float | None
) -> Region:
    """The region of ``image_layer`` under a world-coordinate box, clipped to the slide.

    Parameters
    ----------
    world_min, world_max : ndarray, shape (2,)
        Opposite corners in world (y, x) units (µm for slides opened by this plugin).
    image_layer : napari.layers.Image
        The slide layer.
    mpp : float, optional
        Resolution to analyse at (µm/px); default level 0.

    Returns
    -------
    Region
    """
    _, base_mpp, shape = slide_of(image_layer)
    corners = np.array([image_layer.world_to_data(world_min), image_layer.world_to_data(world_max)])[:, -2:]
    # Pixel i spans [i - 0.5, i + 0.5) in data coordinates; the tolerance absorbs the float32
    # round-off of shape vertices (~1e-4 px).
    lo, hi = np.floor(corners.min(axis=0) + 0.5 + 1e-3), np.ceil(corners.max(axis=0) + 0.5 - 1e-3)
    y0, x0 = int(lo[0]), int(lo[1])
    h, w = max(1, int(hi[0]) - y0), max(1, int(hi[1]) - x0)
    return Region(y0, x0, h, w, base_mpp, mpp).clipped(shape)


def region_from_shape(
    shapes_layer: napari.layers.Shapes, index: int, image_layer: napari.layers.Image, mpp: float | None
) -> tuple[Region, np.ndarray]:
    """The bounding region of shape ``index`` and its outline in level-0 pixels.

    Returns
    -------
    region : Region
        Bounding box of the shape, clipped to the slide.
    polygon : ndarray, shape (V, 2)
        The shape's vertices in level-0 (y, x) pixels (a rectangle has 4).
    """
    if not 0 <= index < len(shapes_layer.data):
        raise RegionError(f"Shapes layer {shapes_layer.name!r} has no shape {index}; draw a rectangle or polygon.")
    vertices = np.asarray(shapes_layer.data[index])[:, -2:]
    world = np.array([shapes_layer.data_to_world(v) for v in vertices])[:, -2:]
    region = region_from_box(world.min(axis=0), world.max(axis=0), image_layer, mpp)
    polygon = np.array([image_layer.world_to_data(p) for p in world])[:, -2:]
    return region, polygon


def region_from_view(image_layer: napari.layers.Image, mpp: float | None) -> Region:
    """The region of the slide currently visible in the canvas.

    Uses the layer's ``corner_pixels`` (data pixels of the displayed pyramid level), scaled
    to level 0 with that level's downsample factor.
    """
    corners = np.asarray(image_layer.corner_pixels, dtype=np.float64)[:, -2:]
    if image_layer.multiscale:
        corners = corners * np.asarray(image_layer.downsample_factors[image_layer.data_level])[-2:]
    world = np.array([image_layer.data_to_world(c) for c in corners])[:, -2:]
    return region_from_box(world.min(axis=0), world.max(axis=0), image_layer, mpp)
