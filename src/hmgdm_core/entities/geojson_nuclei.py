"""Nuclei from QuPath GeoJSON detections (StarDist, QuPath cell detection, other tools' exports).

QuPath writes level-0 pixel coordinates as ``(x, y)``. A cell carries its nucleus outline in
``nucleusGeometry`` beside the cell outline in ``geometry``; a plain detection has only
``geometry``. Annotations (regions drawn by hand) are not nuclei and are skipped. Both the
0.2–0.3 form (``"id": "PathCellObject"``, ``properties.object_type``) and the 0.4+ form
(``properties.objectType``) are read. Outlines are filled into a label image of the region in
file order, a later outline overwriting an earlier one where they overlap.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from hmgdm_core.entities.nuclei import nuclei_from_labels
from hmgdm_core.entities.table import Entities
from hmgdm_core.io.qupath import parse_qupath, polygon_rings, read_qupath
from hmgdm_core.io.region import Region

__all__ = ["nuclei_from_geojson"]

_NUCLEI = {"detection", "cell"}


def nuclei_from_geojson(source: str | Path | dict | list, rgb: np.ndarray, region: Region) -> Entities:
    """Nuclei outlined in a QuPath GeoJSON export, as entities of ``region``.

    Parameters
    ----------
    source : str, Path, dict or list
        A ``.geojson`` file, or its parsed content (a FeatureCollection or a list of features).
    rgb : ndarray, shape region.shape + (3,), uint8
        The region's image (for the colour measurements).
    region : Region
        The region the image shows; outlines are mapped from level-0 ``(x, y)`` to its read
        pixels, and outlines outside it are ignored (those crossing its border are clipped).

    Returns
    -------
    Entities
        ``kind='nuclei'``, one entity per outline that keeps at least one pixel.

    Raises
    ------
    GeoJSONError
        If the file is missing, too large, or not valid QuPath GeoJSON
        (:func:`~hmgdm_core.io.qupath.read_qupath`).
    """
    objects = read_qupath(source) if isinstance(source, (str, Path)) else parse_qupath(source)
    rows, cols = region.shape
    labels = np.zeros((rows, cols), dtype=np.int64)
    next_id = 1
    for obj in objects:
        if obj.object_type not in _NUCLEI:
            continue
        for exterior, holes in polygon_rings(obj.nucleus_geometry or obj.geometry):
            mask = _fill(exterior, region, (rows, cols))
            if mask is None:
                continue
            rr, cc = mask
            if holes:  # clear holes in a box around this outline only: O(outline area), not O(image)
                y0, x0 = rr.min(), cc.min()
                inside = np.zeros((rr.max() - y0 + 1, cc.max() - x0 + 1), dtype=bool)
                inside[rr - y0, cc - x0] = True
                for hole in holes:
                    hole_mask = _fill(hole, region, (rows, cols))
                    if hole_mask is not None:
                        hy, hx = hole_mask[0] - y0, hole_mask[1] - x0
                        ok = (hy >= 0) & (hx >= 0) & (hy < inside.shape[0]) & (hx < inside.shape[1])
                        inside[hy[ok], hx[ok]] = False
                ry, rx = np.nonzero(inside)
                rr, cc = ry + y0, rx + x0
            labels[rr, cc] = next_id
        next_id += 1
    return nuclei_from_labels(labels, rgb, float(region.mpp))


def _fill(xy: np.ndarray, region: Region, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray] | None:
    """Pixels (rows, cols) of the region image inside one ring given in level-0 ``(x, y)``."""
    from skimage.draw import polygon

    if len(xy) < 3:
        return None
    yx = region.from_level0(xy[:, ::-1])
    if yx[:, 0].max() < 0 or yx[:, 1].max() < 0 or yx[:, 0].min() >= shape[0] or yx[:, 1].min() >= shape[1]:
        return None
    rr, cc = polygon(yx[:, 0], yx[:, 1], shape=shape)
    return (rr, cc) if len(rr) else None
