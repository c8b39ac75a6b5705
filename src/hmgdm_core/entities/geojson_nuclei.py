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
from hmgdm_core.io.qupath import parse_qupath, polygon_ring_arrays, read_qupath
from hmgdm_core.io.qupath.raster import polygon_labels
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
    outlines = [obj.nucleus_geometry or obj.geometry for obj in objects if obj.object_type in _NUCLEI]
    xy, sizes, ring_polygon, is_hole, polygon_outline = polygon_ring_arrays(outlines)
    yx = region.from_level0(xy[:, ::-1])
    # Labels rise in file order (the parts of a MultiPolygon share one), so the later outline wins.
    labels = polygon_labels(yx, sizes, ring_polygon, is_hole, polygon_outline + 1, region.shape)
    return nuclei_from_labels(labels, rgb, float(region.mpp))
