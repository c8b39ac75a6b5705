"""QuPath GeoJSON: import annotations and nuclei, export entities, predictions and graphs.

See :mod:`~hmgdm_core.io.qupath.read` for the dialects read and the checks made on untrusted
files, and :mod:`~hmgdm_core.io.qupath.write` for the form written.
"""

from hmgdm_core.io.qupath.arrays import label_features, point_features, segment_feature, shape_features
from hmgdm_core.io.qupath.graph import graph_features, write_graph_qupath
from hmgdm_core.io.qupath.outline import entity_outlines
from hmgdm_core.io.qupath.raster import polygon_labels, polygon_pixels, polygon_runs
from hmgdm_core.io.qupath.read import MAX_BYTES, QuPathObject, parse_qupath, read_qupath
from hmgdm_core.io.qupath.roi import polygon_ring_arrays, polygon_rings, roi_mask, roi_region, rois
from hmgdm_core.io.qupath.write import (
    edge_feature,
    entity_features,
    feature_collection,
    patch_features,
    write_qupath,
)

__all__ = [
    "MAX_BYTES",
    "QuPathObject",
    "edge_feature",
    "entity_features",
    "entity_outlines",
    "feature_collection",
    "graph_features",
    "label_features",
    "parse_qupath",
    "patch_features",
    "point_features",
    "polygon_labels",
    "polygon_pixels",
    "polygon_ring_arrays",
    "polygon_rings",
    "polygon_runs",
    "read_qupath",
    "roi_mask",
    "roi_region",
    "rois",
    "segment_feature",
    "shape_features",
    "write_graph_qupath",
    "write_qupath",
]
