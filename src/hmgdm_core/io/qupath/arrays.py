"""QuPath features from plain arrays on any pixel grid: label images, points, shapes, line segments.

Viewer overlays (napari layers, but nothing here knows napari) hold their data in their own grid:
data coordinates ``(y, x)`` that a ``scale`` and ``translate`` place in world units (µm), where
level-0 pixel centres lie at ``index · base_mpp``. So a data point maps to level-0 pixels as
``(data · scale + translate) / base_mpp``; with the defaults (scale 1, translate 0, base_mpp 1)
the data are level-0 pixels already. Only the last two axes are spatial: leading axes (a step
or time axis) are dropped. Features are written as
:mod:`~hmgdm_core.io.qupath.write` writes them, coordinates level-0 ``(x, y)``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from hmgdm_core.errors import GeoJSONError
from hmgdm_core.io.jsonio import gc_paused
from hmgdm_core.io.qupath.outline import entity_outlines
from hmgdm_core.io.qupath.write import (
    COORDINATE_DECIMALS,
    edge_feature,
    entity_features,
    measurement_rows,
    new_ids,
)
from hmgdm_core.io.region import Region

__all__ = ["ELLIPSE_VERTICES", "label_features", "point_features", "segment_feature", "shape_features"]

ELLIPSE_VERTICES = 64
"""Vertices of the polygon an ellipse is written as (QuPath writes its ellipses as polygons too)."""
_AREA_SHAPES = ("rectangle", "polygon", "ellipse")
_LINE_SHAPES = ("line", "path")


def _level0_xy(yx: np.ndarray, scale: Sequence[float], translate: Sequence[float], base_mpp: float) -> np.ndarray:
    """Data ``(..., y, x)`` (last axis) to level-0 ``(x, y)`` pixels."""
    yx = np.asarray(yx, dtype=np.float64)[..., -2:]
    scale = np.asarray(scale, dtype=np.float64)[-2:]
    translate = np.asarray(translate, dtype=np.float64)[-2:]
    if not (np.isfinite(base_mpp) and base_mpp > 0):
        raise GeoJSONError(f"base_mpp must be a positive number of µm per level-0 pixel, got {base_mpp!r}.")
    return ((yx * scale + translate) / base_mpp)[..., ::-1]


def label_features(
    labels: np.ndarray,
    *,
    scale: Sequence[float] = (1.0, 1.0),
    translate: Sequence[float] = (0.0, 0.0),
    base_mpp: float = 1.0,
    object_type: str = "detection",
    measurements: Mapping[str, np.ndarray] | None = None,
) -> list[dict]:
    """One feature per label of an instance label image, outlined along its pixel edges.

    Each object is written once, as its outline, with its centroid among the measurements
    (``"Centroid X µm"``, ``"Centroid Y µm"``: the mean level-0 position of its pixels times
    ``base_mpp``, as QuPath names them), so QuPath counts one object per nucleus.

    Parameters
    ----------
    labels : ndarray, shape (rows, cols), integer
        0 background; each other value one object (its outer ring is written, as
        :func:`~hmgdm_core.io.qupath.outline.entity_outlines` traces it).
    scale, translate : sequence of float
        World units per data pixel and the world position of pixel ``(0, 0)``'s centre, ``(y, x)``.
    base_mpp : float
        World units per level-0 pixel (µm per pixel of the slide's level 0).
    object_type : str
        ``'detection'`` (nuclei), ``'tile'`` (superpixels) or ``'annotation'``.
    measurements : mapping of str to ndarray, shape (labels.max(),), optional
        More per-object values, row ``k`` for label ``k + 1`` (e.g. a graph's node measurements);
        NaN for labels without a value.

    Returns
    -------
    list of dict
        Features in label order, each named by its label value (absent labels skipped).
    """
    labels = np.asarray(labels)
    if labels.ndim != 2 or not np.issubdtype(labels.dtype, np.integer):
        raise GeoJSONError(f"A label image must be 2-D integers, got shape {labels.shape}, {labels.dtype}.")
    # Traced in data pixels (an identity region), then mapped like any other coordinates.
    outlines = entity_outlines(labels, Region(0, 0, *labels.shape, base_mpp=1.0))
    mapped = [None if ring is None else _level0_xy(ring[:, ::-1], scale, translate, base_mpp) for ring in outlines]
    present = np.array([ring is not None for ring in mapped], dtype=bool)
    columns = {name: np.asarray(values, dtype=np.float64)[present] for name, values in (measurements or {}).items()}
    centre_xy = _level0_xy(_label_centroids(labels, len(mapped))[present], scale, translate, base_mpp) * base_mpp
    columns = {"Centroid X µm": centre_xy[:, 0], "Centroid Y µm": centre_xy[:, 1]} | columns
    features = entity_features([ring for ring in mapped if ring is not None], object_type=object_type,
                               measurements=columns)  # fmt: skip
    for feature, value in zip(features, [i + 1 for i, ring in enumerate(mapped) if ring is not None], strict=True):
        feature["properties"]["name"] = str(value)
    return features


def _label_centroids(labels: np.ndarray, n: int, block_rows: int = 1024) -> np.ndarray:
    """``(n, 2)`` mean data ``(y, x)`` of the pixels of labels 1..n (NaN for absent ones).

    Summed in row blocks, so a whole-slide label image needs no per-pixel coordinate arrays.
    """
    sums = np.zeros((n + 1, 3))
    cols = np.arange(labels.shape[1], dtype=np.float64)
    for start in range(0, labels.shape[0], block_rows):
        block = labels[start : start + block_rows]
        flat = block.ravel()
        row_of = np.repeat(np.arange(start, start + len(block), dtype=np.float64), block.shape[1])
        sums[:, 0] += np.bincount(flat, minlength=n + 1)[: n + 1]
        sums[:, 1] += np.bincount(flat, weights=row_of, minlength=n + 1)[: n + 1]
        sums[:, 2] += np.bincount(flat, weights=np.tile(cols, len(block)), minlength=n + 1)[: n + 1]
    with np.errstate(invalid="ignore", divide="ignore"):
        return sums[1:, 1:] / sums[1:, :1]


def point_features(
    points: np.ndarray,
    *,
    scale: Sequence[float] = (1.0, 1.0),
    translate: Sequence[float] = (0.0, 0.0),
    base_mpp: float = 1.0,
    object_type: str = "detection",
    names: Sequence[str] | None = None,
    measurements: Mapping[str, np.ndarray] | None = None,
) -> list[dict]:
    """One Point feature per point (graph nodes, patch centres, clicked points).

    Parameters
    ----------
    points : ndarray, shape (N, D), D ≥ 2
        Data coordinates, the last two ``(y, x)``.
    scale, translate, base_mpp
        The data-to-level-0 mapping (see :func:`label_features`).
    object_type : str
        ``'detection'``, ``'tile'`` or ``'annotation'``.
    names : sequence of str, optional
        Per-point object names (e.g. entity ids).
    measurements : mapping of str to ndarray, shape (N,), optional
        Per-point values; NaN/±inf are written as QuPath 0.5+ does (``"NaN"``...).

    Returns
    -------
    list of dict
        N features.
    """
    points = np.asarray(points, dtype=np.float64).reshape(len(points), -1)
    if points.shape[1] < 2:
        raise GeoJSONError(f"Points need (y, x) coordinates, got shape {points.shape}.")
    if names is not None and len(names) != len(points):
        raise GeoJSONError(f"{len(names)} names for {len(points)} points.")
    rows = measurement_rows(measurements, len(points))
    with gc_paused():
        xy = np.round(_level0_xy(points, scale, translate, base_mpp), COORDINATE_DECIMALS).tolist()
    features = []
    for k, (uid, point, row) in enumerate(zip(new_ids(len(xy)), xy, rows, strict=True)):
        props: dict = {"objectType": object_type}
        if names is not None:
            props["name"] = str(names[k])
        features.append(
            {
                "type": "Feature",
                "id": uid,
                "geometry": {"type": "Point", "coordinates": point},
                "properties": props | {"measurements": row},
            }
        )
    return features


def _ellipse(corners_yx: np.ndarray) -> np.ndarray:
    """The ring of the ellipse inscribed in a box given by its 4 corners (napari's ellipse data)."""
    centre = corners_yx.mean(axis=0)
    half_a = (corners_yx[1] - corners_yx[0]) / 2  # along the first side
    half_b = (corners_yx[3] - corners_yx[0]) / 2
    angle = np.linspace(0, 2 * np.pi, ELLIPSE_VERTICES, endpoint=False)[:, None]
    return centre + np.cos(angle) * half_a + np.sin(angle) * half_b


def shape_features(
    shapes: Sequence[np.ndarray],
    shape_types: Sequence[str],
    *,
    scale: Sequence[float] = (1.0, 1.0),
    translate: Sequence[float] = (0.0, 0.0),
    base_mpp: float = 1.0,
    names: Sequence[str | None] | None = None,
    classes: Sequence[str | None] | None = None,
    colors: Mapping[str, Sequence[int]] | None = None,
) -> list[dict]:
    """Drawn shapes as QuPath annotations: areas as Polygons, lines and paths as LineStrings.

    Parameters
    ----------
    shapes : sequence of ndarray, shape (K, D), D ≥ 2
        Vertices in data coordinates, the last two ``(y, x)``; an ellipse as the 4 corners of
        its bounding box (napari's form).
    shape_types : sequence of str
        ``'rectangle'``, ``'polygon'``, ``'ellipse'`` (written as a
        :data:`ELLIPSE_VERTICES`-gon), ``'line'`` or ``'path'``.
    scale, translate, base_mpp
        The data-to-level-0 mapping (see :func:`label_features`).
    names : sequence of str or None, optional
        Annotation names.
    classes : sequence of str or None, optional
        Annotation class names (``None``: unclassified).
    colors : mapping of str to (r, g, b), optional
        Class colours, 0–255.

    Returns
    -------
    list of dict
        One ``annotation`` feature per shape, in order; ellipses flagged ``isEllipse`` as QuPath 0.4+ flags them.
    """
    counts = {
        len(shape_types),
        len(names if names is not None else shapes),
        len(classes if classes is not None else shapes),
    }
    if counts != {len(shapes)}:
        raise GeoJSONError(
            f"{len(shapes)} shapes, {len(shape_types)} shape types, names for {len(names or [])}, "
            f"classes for {len(classes or [])}."
        )
    features = []
    for k, (vertices, kind, uid) in enumerate(zip(shapes, shape_types, new_ids(len(shapes)), strict=True)):
        yx = np.asarray(vertices, dtype=np.float64)[:, -2:]
        if kind == "ellipse":
            yx = _ellipse(yx)
        if kind in _AREA_SHAPES:
            ring = np.concatenate([yx, yx[:1]])
            geometry = {"type": "Polygon", "coordinates": [_rounded(ring, scale, translate, base_mpp)]}
            if kind == "ellipse":  # as QuPath 0.4+ flags its ellipses, so they stay ellipses there
                geometry["isEllipse"] = True
        elif kind in _LINE_SHAPES:
            geometry = {"type": "LineString", "coordinates": _rounded(yx, scale, translate, base_mpp)}
        else:
            raise GeoJSONError(f"Shape type {kind!r} is not one of {_AREA_SHAPES + _LINE_SHAPES}.")
        props: dict = {"objectType": "annotation"}
        if names is not None and names[k] is not None:
            props["name"] = str(names[k])
        if classes is not None and classes[k] is not None:
            colour = (colors or {}).get(classes[k])
            props["classification"] = {"name": str(classes[k])} | (
                {"color": [int(c) for c in colour]} if colour else {}
            )
        features.append({"type": "Feature", "id": uid, "geometry": geometry, "properties": props})
    return features


def _rounded(yx: np.ndarray, scale: Sequence[float], translate: Sequence[float], base_mpp: float) -> list:
    return np.round(_level0_xy(yx, scale, translate, base_mpp), COORDINATE_DECIMALS).tolist()


def segment_feature(
    segments: np.ndarray,
    *,
    scale: Sequence[float] = (1.0, 1.0),
    translate: Sequence[float] = (0.0, 0.0),
    base_mpp: float = 1.0,
    name: str = "Graph edges",
) -> dict:
    """Line segments (graph edges) as one locked MultiLineString annotation.

    Parameters
    ----------
    segments : ndarray, shape (E, 2, D), D ≥ 2
        Per segment its start and its end in data coordinates, the last two ``(y, x)``.
    scale, translate, base_mpp
        The data-to-level-0 mapping (see :func:`label_features`).
    name : str
        The annotation's name.

    Returns
    -------
    dict
        As :func:`~hmgdm_core.io.qupath.write.edge_feature` writes a graph's edges.
    """
    segments = np.asarray(segments, dtype=np.float64)
    if segments.ndim != 3 or segments.shape[1] != 2 or segments.shape[2] < 2:
        raise GeoJSONError(f"Segments must be (E, 2, D≥2) start/end points, got shape {segments.shape}.")
    ends_yx = _level0_xy(segments.reshape(-1, segments.shape[2]), scale, translate, base_mpp)[:, ::-1]
    return edge_feature(ends_yx, np.arange(len(ends_yx)).reshape(-1, 2), name=name)
