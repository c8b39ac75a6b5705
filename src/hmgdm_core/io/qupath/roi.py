"""QuPath annotations as regions of interest: their bounding region and their pixel mask.

QuPath writes rectangles and ellipses as polygons (an ellipse as ~100 vertices, flagged
``isEllipse`` since 0.4), so every area annotation is a Polygon or MultiPolygon, possibly with
holes. Points and lines are annotations too but bound no area, so they are not regions.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from itertools import chain

import numpy as np
from skimage.draw import polygon as fill_polygon

from hmgdm_core.errors import GeoJSONError
from hmgdm_core.io.qupath.read import QuPathObject
from hmgdm_core.io.region import Region

__all__ = ["polygon_ring_arrays", "polygon_rings", "roi_mask", "roi_region", "rois"]


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


def _polygons(geometry: dict) -> list:
    kind = geometry.get("type")
    if kind == "GeometryCollection":
        return [poly for part in geometry["geometries"] for poly in _polygons(part)]
    if kind == "Polygon":
        return [geometry["coordinates"]]
    return geometry["coordinates"] if kind == "MultiPolygon" else []


def polygon_ring_arrays(
    geometries: Sequence[dict],
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """All rings of many validated geometries as concatenated arrays (one conversion, not one per ring).

    Parameters
    ----------
    geometries : sequence of dict
        Validated GeoJSON geometries, as :class:`~hmgdm_core.io.qupath.read.QuPathObject` holds
        them; the rings of their polygons are taken, as by :func:`polygon_rings`.

    Returns
    -------
    vertices_xy : ndarray, shape (V, 2), float64
        Level-0 ``(x, y)`` of all rings' vertices, ring after ring.
    ring_sizes : ndarray, shape (R,), int64
        Vertices per ring.
    ring_polygon : ndarray, shape (R,), int64
        The polygon each ring belongs to, numbered over all geometries.
    ring_is_hole : ndarray, shape (R,), bool
        False for a polygon's exterior (its first ring), True for its holes.
    polygon_geometry : ndarray, shape (P,), int64
        The index in ``geometries`` of each polygon.
    """
    rings: list = []
    ring_polygon: list[int] = []
    is_hole: list[bool] = []
    polygon_geometry: list[int] = []
    for index, geometry in enumerate(geometries):
        for polygon in _polygons(geometry):
            if not polygon:
                continue
            ring_polygon.extend([len(polygon_geometry)] * len(polygon))
            is_hole.extend([False] + [True] * (len(polygon) - 1))
            polygon_geometry.append(index)
            rings.extend(polygon)
    sizes = np.fromiter(map(len, rings), np.int64, count=len(rings))
    xy = np.fromiter(chain.from_iterable(chain.from_iterable(rings)), np.float64)
    if len(xy) != 2 * sizes.sum():  # some [x, y, z] positions (validated positions hold 2 or 3 numbers)
        xy = np.asarray([p[:2] for p in chain.from_iterable(rings)], dtype=np.float64)
    return (
        xy.reshape(-1, 2),
        sizes,
        np.asarray(ring_polygon, np.int64),
        np.asarray(is_hole, bool),
        np.asarray(polygon_geometry, np.int64),
    )


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
