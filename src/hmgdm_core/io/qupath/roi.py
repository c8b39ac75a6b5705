"""QuPath annotations as regions of interest: their bounding region and their pixel mask.

QuPath writes rectangles and ellipses as polygons (an ellipse as ~100 vertices, flagged
``isEllipse`` since 0.4), so every area annotation is a Polygon or MultiPolygon, possibly with
holes. Points and lines are annotations too but bound no area, so they are not regions.
"""

from __future__ import annotations

import math

import numpy as np
from skimage.draw import polygon as fill_polygon

from hmgdm_core.errors import GeoJSONError
from hmgdm_core.io.qupath.read import QuPathObject
from hmgdm_core.io.region import Region

__all__ = ["polygon_rings", "roi_mask", "roi_region", "rois"]


def polygon_rings(geometry: dict) -> list[tuple[np.ndarray, list[np.ndarray]]]:
    """``(exterior, holes)`` of each polygon of a geometry, rings as ``(K, 2)`` level-0 ``(x, y)``.

    Parameters
    ----------
    geometry : dict
        A GeoJSON geometry; Polygon, MultiPolygon and GeometryCollection give rings, other
        types none.

    Returns
    -------
    list of (ndarray, list of ndarray)
        float64 rings, first point repeated last as in the file.
    """
    kind = geometry.get("type")
    if kind == "GeometryCollection":
        return [rings for part in geometry["geometries"] for rings in polygon_rings(part)]
    if kind not in ("Polygon", "MultiPolygon"):
        return []
    polygons = [geometry["coordinates"]] if kind == "Polygon" else geometry["coordinates"]
    as_array = [[np.asarray(ring, dtype=np.float64).reshape(-1, 2) for ring in poly] for poly in polygons if poly]
    return [(rings[0], rings[1:]) for rings in as_array]


def rois(objects: list[QuPathObject]) -> list[QuPathObject]:
    """The annotations of ``objects`` that enclose an area (polygon, rectangle, ellipse, brush)."""
    return [o for o in objects if o.object_type == "annotation" and polygon_rings(o.geometry)]


def roi_region(roi: QuPathObject, base_mpp: float, mpp: float | None = None) -> Region:
    """The level-0 box that bounds an annotation, read at ``mpp``.

    Parameters
    ----------
    roi : QuPathObject
        An area annotation (see :func:`rois`).
    base_mpp : float
        µm per pixel of the slide's level 0.
    mpp : float, optional
        µm per pixel to read the region at (default: ``base_mpp``).

    Returns
    -------
    Region
        From the floor of the smallest to the ceiling of the largest coordinate.
    """
    rings = polygon_rings(roi.geometry)
    if not rings:
        raise GeoJSONError(f"Annotation {roi.name or roi.id or ''!s} is a {roi.geometry['type']}, not an area.")
    xy = np.concatenate([exterior for exterior, _ in rings])
    x0, y0 = math.floor(xy[:, 0].min()), math.floor(xy[:, 1].min())
    x1, y1 = math.ceil(xy[:, 0].max()), math.ceil(xy[:, 1].max())
    return Region(y0, x0, max(1, y1 - y0), max(1, x1 - x0), base_mpp, mpp)


def roi_mask(roi: QuPathObject, region: Region) -> np.ndarray:
    """Which pixels of a region's image lie inside an annotation.

    Parameters
    ----------
    roi : QuPathObject
        An area annotation.
    region : Region
        The region read; its pixel centres are tested.

    Returns
    -------
    ndarray, shape region.shape, bool
        True inside the exterior rings and outside their holes.
    """
    mask = np.zeros(region.shape, dtype=bool)
    for exterior, holes in polygon_rings(roi.geometry):
        for ring, value in [(exterior, True)] + [(hole, False) for hole in holes]:
            yx = region.from_level0(ring[:, ::-1])
            rr, cc = fill_polygon(yx[:, 0], yx[:, 1], shape=region.shape)
            mask[rr, cc] = value
    return mask
