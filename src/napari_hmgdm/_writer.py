"""Writers: File ▸ Save Selected Layer(s) to QuPath GeoJSON (overlays) and pyramidal OME-TIFF (rasters).

The conversion lives in :mod:`hmgdm_core.io.qupath.arrays`; here each layer's data, type and
metadata are read off its layer-data tuple. Layers are in world units (µm, the slide layer's
level-0 pixel centres at ``index · base_mpp``): ``base_mpp`` comes from the layer's
``hmgdm_region`` metadata (the plugin's own overlays), else from the slide opened with this
plugin (its ``hmgdm_mpp``; a slide without a known resolution is shown in level-0 pixels), else,
for a layer whose units are pixels, world units are taken as level-0 pixels.
"""

from __future__ import annotations

import numpy as np

from hmgdm_core.errors import InputError
from hmgdm_core.io.ome_tiff import write_ome_tiff
from hmgdm_core.io.qupath import (
    label_features,
    point_features,
    segment_feature,
    shape_features,
    write_qupath,
)

__all__ = ["layer_features", "write_geojson", "write_image"]

_OBJECT_TYPES = {"nuclei": "detection", "tissue": "tile"}


def _slide_mpp() -> float | None:
    """Level-0 µm/px of a slide opened with this plugin in the current viewer (1.0 when unknown)."""
    import napari

    viewer = napari.current_viewer()
    for layer in viewer.layers if viewer is not None else ():
        if "hmgdm_mpp" in layer.metadata:
            return float(layer.metadata["hmgdm_mpp"] or 1.0)
    return None


def _base_mpp(meta: dict) -> float:
    region = (meta.get("metadata") or {}).get("hmgdm_region")
    if region:
        return float(region["base_mpp"])
    mpp = _slide_mpp()
    if mpp is not None:
        return mpp
    if all(str(unit) in ("pixel", "px") for unit in meta.get("units") or ("pixel",)):
        return 1.0
    raise InputError(
        f"Layer {meta.get('name')!r} has no slide resolution: open the slide with napari-hmgdm "
        "(its µm per pixel places the layer on level-0 pixels), then save again."
    )


def _level0(data, meta: dict) -> np.ndarray:
    """Level 0 of possibly multiscale layer data, in memory."""
    return np.asarray(data[0] if meta.get("multiscale") else data)


def _kind(meta: dict) -> str | None:
    return (meta.get("metadata") or {}).get("hmgdm_kind")


def _is_node_table(meta: dict, layer_type: str) -> bool:
    table = meta.get("features")
    return layer_type == "points" and table is not None and "entity_id" in table.columns


def _node_measurements(table, count: int) -> dict[str, np.ndarray]:
    """Numeric node features as label-indexed columns (row ``k`` = label ``k + 1``, NaN without a node)."""
    ids = table["entity_id"].to_numpy(np.int64)
    keep = (ids >= 1) & (ids <= count)
    columns = {}
    for name in table.select_dtypes("number").columns.drop("entity_id"):
        column = np.full(count, np.nan)
        column[ids[keep] - 1] = table[name].to_numpy(np.float64)[keep]
        columns[str(name)] = column
    return columns


def layer_features(data, meta: dict, layer_type: str, nodes=None) -> list[dict]:
    """QuPath features of one layer-data tuple (``layer.as_layer_data_tuple()``).

    Parameters
    ----------
    data : array or list
        The layer's data.
    meta : dict
        Its attributes (``scale``, ``translate``, ``metadata``, ``features``, ``shape_type``...).
    layer_type : str
        ``'labels'`` (one detection per label, tiles for tissue superpixels), ``'points'``
        (Point objects named by ``entity_id``, numeric features as measurements), ``'shapes'``
        (annotations, with their ``name`` and ``class`` features) or ``'vectors'`` (one locked
        MultiLineString annotation).
    nodes : pandas.DataFrame, optional
        For a Labels layer, the node table of the same entities (``entity_id`` = label): its numeric
        columns become the outlines' measurements, so each entity is one object.

    Returns
    -------
    list of dict
        Features in level-0 ``(x, y)`` pixels.
    """
    mapping = {"scale": meta.get("scale", (1.0, 1.0)), "translate": meta.get("translate", (0.0, 0.0))}
    mapping["base_mpp"] = _base_mpp(meta)
    kind = _kind(meta)
    if layer_type == "labels":
        labels = _level0(data, meta)
        if labels.ndim != 2:
            raise InputError(f"Labels layer {meta.get('name')!r} is {labels.ndim}-D; save a 2-D label image.")
        measurements = None if nodes is None else _node_measurements(nodes, int(labels.max(initial=0)))
        return label_features(
            labels, object_type=_OBJECT_TYPES.get(kind, "detection"), measurements=measurements, **mapping
        )
    if layer_type == "points":
        table = meta.get("features")
        names, measurements = None, {}
        if table is not None and len(table.columns):
            if "entity_id" in table.columns:
                names = [str(v) for v in table["entity_id"].tolist()]
            numeric = table.select_dtypes("number").drop(columns="entity_id", errors="ignore")
            measurements = {str(c): numeric[c].to_numpy(np.float64) for c in numeric.columns}
        return point_features(
            np.asarray(data), object_type=_OBJECT_TYPES.get(kind, "annotation"), names=names,
            measurements=measurements, **mapping,
        )  # fmt: skip
    if layer_type == "shapes":
        table = meta.get("features")
        names, classes = (
            [None if v in ("", None) else str(v) for v in table[column]]
            if table is not None and column in table.columns
            else None
            for column in ("name", "class")
        )
        colours = (meta.get("metadata") or {}).get("hmgdm_qupath_colours")
        shapes = list(data)
        return shape_features(
            shapes, list(meta.get("shape_type", [])), names=names, classes=classes, colors=colours, **mapping
        )
    if layer_type == "vectors":
        vectors = np.asarray(data, dtype=np.float64)  # (E, 2, D): start, then direction
        segments = np.stack([vectors[:, 0], vectors[:, 0] + vectors[:, 1]], axis=1)
        return [segment_feature(segments, name=str(meta.get("name", "Graph edges")), **mapping)]
    raise InputError(f"{layer_type} layers are not written to GeoJSON.")


def write_geojson(path: str, layer_data: list[tuple]) -> list[str]:
    """Write Labels, Points, Shapes and Vectors layers as one QuPath ``.geojson`` FeatureCollection.

    Parameters
    ----------
    path : str
        Output ``.geojson``.
    layer_data : list of (data, meta, layer_type)
        The selected layers.

    Returns
    -------
    list of str
        ``[path]``.
    """
    # A Labels layer of entities and the Points layer of their nodes make one object per entity: the
    # outline, with the node's measurements; the points are not written again.
    outlined = {_kind(meta) for _, meta, kind in layer_data if kind == "labels" and _kind(meta)}
    nodes = {_kind(meta): meta["features"] for _, meta, kind in layer_data
             if _is_node_table(meta, kind) and _kind(meta) in outlined}  # fmt: skip
    features = []
    for data, meta, kind in layer_data:
        if kind == "points" and _kind(meta) in nodes:
            continue
        features += layer_features(data, meta, kind, nodes.get(_kind(meta)) if kind == "labels" else None)
    return [str(write_qupath(features, path))]


def write_image(path: str, data, meta: dict) -> list[str]:
    """Write an Image layer (a heatmap, a class map, an RGB region) as a pyramidal OME-TIFF.

    The pixel size written is the layer's ``scale`` (µm per pixel when the layer is in µm);
    OME-TIFF keeps no position, so the layer's ``translate`` (its place on the slide) is not kept.

    Parameters
    ----------
    path : str
        Output ``.ome.tif``.
    data : array or list of arrays
        The layer's data (level 0 of a multiscale layer is written).
    meta : dict
        Its attributes.

    Returns
    -------
    list of str
        ``[path]``.
    """
    image = _level0(data, meta)
    scale = np.asarray(meta.get("scale", (1.0, 1.0)), dtype=np.float64)[:2]
    if not np.isclose(scale[0], scale[1]):
        raise InputError(f"Layer {meta.get('name')!r} has non-square pixels {tuple(scale)}; OME-TIFF needs one size.")
    return [str(write_ome_tiff(path, image, float(scale[1])))]
