"""Writing QuPath GeoJSON: entity outlines, patch predictions and graph edges as QuPath objects.

The file is what QuPath 0.5+ writes and imports by drag-and-drop: a FeatureCollection of
Features with a UUID ``id``, ``properties.objectType``, ``classification {name, color}``,
``measurements`` as a dict (non-finite values as the strings ``"NaN"``, ``"Infinity"``,
``"-Infinity"``, never bare tokens, so strict JSON parsers read it), and ``isLocked`` only when
true. Coordinates are level-0 pixels ``(x, y)``, rounded to 0.01 px.

Entity outlines come from :func:`~hmgdm_core.io.qupath.outline.entity_outlines`.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from hmgdm_core.errors import GeoJSONError
from hmgdm_core.io.atomic import atomic_path
from hmgdm_core.io.jsonio import dumps, gc_paused

__all__ = [
    "COORDINATE_DECIMALS",
    "edge_feature",
    "entity_features",
    "feature_collection",
    "new_ids",
    "patch_features",
    "write_qupath",
]

COORDINATE_DECIMALS = 2
"""Coordinates are written rounded to 0.01 level-0 pixel."""
_OBJECT_TYPES = ("detection", "cell", "tile", "annotation")


def new_ids(n: int) -> list[str]:
    """``n`` random (version 4) UUID strings, as ``str(uuid.uuid4())`` gives them, made in one pass."""
    raw = np.frombuffer(os.urandom(16 * n), np.uint8).reshape(n, 16).copy()
    raw[:, 6] = raw[:, 6] & 0x0F | 0x40  # version 4
    raw[:, 8] = raw[:, 8] & 0x3F | 0x80  # RFC 4122 variant
    h = raw.tobytes().hex()
    return [
        f"{h[i : i + 8]}-{h[i + 8 : i + 12]}-{h[i + 12 : i + 16]}-{h[i + 16 : i + 20]}-{h[i + 20 : i + 32]}"
        for i in range(0, 32 * n, 32)
    ]


def _ring_coordinates(rings: Sequence[np.ndarray | None]) -> list[list | None]:
    """Each ring as nested lists rounded to 0.01 px: one rounding and one ``tolist`` for all rings."""
    present = [ring for ring in rings if ring is not None]
    if not present:
        return [None] * len(rings)
    points = np.round(np.concatenate(present).reshape(-1, 2), COORDINATE_DECIMALS).tolist()
    ends = iter(np.cumsum([len(ring) for ring in present]).tolist())
    out, start = [], 0
    for ring in rings:
        if ring is None:
            out.append(None)
            continue
        end = next(ends)
        out.append(points[start:end])
        start = end
    return out


def measurement_rows(measurements: Mapping[str, np.ndarray] | None, n: int) -> list[dict[str, float | str]]:
    """Per-object QuPath ``measurements`` dicts from per-measurement columns.

    Parameters
    ----------
    measurements : mapping of str to ndarray, shape (n,), or None
        Columns by measurement name.
    n : int
        Number of objects.

    Returns
    -------
    list of dict
        ``n`` dicts; non-finite values as ``"NaN"``, ``"Infinity"``, ``"-Infinity"``.
    """
    if not measurements:
        return [{} for _ in range(n)]
    names = list(measurements)
    columns = []
    for name in names:
        column = np.asarray(measurements[name], dtype=np.float64).reshape(-1)
        if len(column) != n:
            raise GeoJSONError(f"Measurement {name!r} has {len(column)} values for {n} objects.")
        values = column.tolist()
        columns.append(values if np.isfinite(column).all() else [_json_number(v) for v in values])
    return [dict(zip(names, row, strict=True)) for row in zip(*columns, strict=True)]


def _json_number(value: float) -> float | str:
    """QuPath 0.5+'s form: finite numbers as numbers, NaN/±inf as ``"NaN"``/``"Infinity"``/``"-Infinity"``."""
    if math.isfinite(value):
        return value
    if math.isnan(value):
        return "NaN"
    return "Infinity" if value > 0 else "-Infinity"


def _properties(object_type: str, classification: str | None, colors: Mapping[str, Sequence[int]] | None) -> dict:
    props: dict = {"objectType": object_type}
    if classification is not None:
        colour = (colors or {}).get(classification)
        props["classification"] = {"name": classification} | ({"color": [int(c) for c in colour]} if colour else {})
    return props


def entity_features(
    outlines: Sequence[np.ndarray | None],
    *,
    object_type: str = "detection",
    nucleus_outlines: Sequence[np.ndarray | None] | None = None,
    measurements: Mapping[str, np.ndarray] | None = None,
    classes: Sequence[str | None] | None = None,
    colors: Mapping[str, Sequence[int]] | None = None,
) -> list[dict]:
    """QuPath features of entities, one per outline.

    Parameters
    ----------
    outlines : sequence of (ndarray, shape (K, 2)) or None
        Level-0 ``(x, y)`` closed rings (:func:`~hmgdm_core.io.qupath.outline.entity_outlines`);
        ``None`` entries are skipped.
    object_type : str
        ``'detection'`` (nuclei), ``'cell'`` (needs ``nucleus_outlines``), ``'tile'``
        (superpixels, patches) or ``'annotation'``.
    nucleus_outlines : sequence of ndarray or None, optional
        For cells, the nucleus ring of each entity (same order as ``outlines``).
    measurements : mapping of str to ndarray, shape (N,), optional
        Per-entity measurements (e.g. the entity table's ``area_um2``); NaN/±inf allowed.
    classes : sequence of str or None, optional
        Per-entity class name (``None`` for unclassified).
    colors : mapping of str to (r, g, b), optional
        Class colours, 0–255.

    Returns
    -------
    list of dict
        GeoJSON Features with fresh UUID ids.
    """
    if object_type not in _OBJECT_TYPES:
        raise GeoJSONError(f"object_type must be one of {_OBJECT_TYPES}, got {object_type!r}.")
    if (object_type == "cell") != (nucleus_outlines is not None):
        raise GeoJSONError("Cells need nucleus_outlines, and only cells take them.")
    n = len(outlines)
    if classes is not None and len(classes) != n:
        raise GeoJSONError(f"{len(classes)} classes for {n} outlines.")
    with gc_paused():  # ~10 containers per feature: see jsonio
        return _features(outlines, object_type, nucleus_outlines, measurements, classes, colors)


def _features(
    outlines: Sequence[np.ndarray | None],
    object_type: str,
    nucleus_outlines: Sequence[np.ndarray | None] | None,
    measurements: Mapping[str, np.ndarray] | None,
    classes: Sequence[str | None] | None,
    colors: Mapping[str, Sequence[int]] | None,
) -> list[dict]:
    n = len(outlines)
    rows = measurement_rows(measurements, n)
    rings = _ring_coordinates(outlines)
    nuclei = [None] * n if nucleus_outlines is None else _ring_coordinates(nucleus_outlines)
    ids = iter(new_ids(sum(ring is not None for ring in rings)))
    features = []
    for i, ring in enumerate(rings):
        if ring is None:
            continue
        feature = {"type": "Feature", "id": next(ids), "geometry": {"type": "Polygon", "coordinates": [ring]}}
        if nuclei[i] is not None:
            feature["nucleusGeometry"] = {"type": "Polygon", "coordinates": [nuclei[i]]}
        feature["properties"] = _properties(object_type, None if classes is None else classes[i], colors) | {
            "measurements": rows[i]
        }
        features.append(feature)
    return features


def patch_features(
    boxes: np.ndarray,
    class_names: Sequence[str],
    probabilities: np.ndarray,
    *,
    embeddings: np.ndarray | None = None,
    colors: Mapping[str, Sequence[int]] | None = None,
) -> list[dict]:
    """Patch predictions as QuPath tiles, classified by their most probable class.

    Parameters
    ----------
    boxes : ndarray, shape (P, 4)
        Patch boxes ``(y0, x0, y1, x1)`` in level-0 pixels, end exclusive.
    class_names : sequence of str
        The C class names, in the column order of ``probabilities``.
    probabilities : ndarray, shape (P, C), float
        Class probabilities per patch; written as ``"Probability: <class>"`` measurements.
    embeddings : ndarray, shape (P, D), optional
        Patch embeddings, summarised as ``"Embedding: L2 norm"``, ``"Embedding: mean"`` and
        ``"Embedding: std"`` (a D-vector per tile would swamp QuPath's measurement table).
    colors : mapping of str to (r, g, b), optional
        Class colours, 0–255.

    Returns
    -------
    list of dict
        One ``tile`` Feature per patch.
    """
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    probabilities = np.asarray(probabilities, dtype=np.float64)
    if probabilities.shape != (len(boxes), len(class_names)):
        raise GeoJSONError(
            f"probabilities have shape {probabilities.shape}; expected (patches, classes) = "
            f"({len(boxes)}, {len(class_names)})."
        )
    y0, x0, y1, x1 = boxes.T
    rings = np.stack([np.stack(c, axis=1) for c in ((x0, y0), (x1, y0), (x1, y1), (x0, y1), (x0, y0))], axis=1)
    measurements = {f"Probability: {name}": probabilities[:, k] for k, name in enumerate(class_names)}
    if embeddings is not None:
        embeddings = np.asarray(embeddings, dtype=np.float64).reshape(len(boxes), -1)
        measurements |= {
            "Embedding: L2 norm": np.linalg.norm(embeddings, axis=1),
            "Embedding: mean": embeddings.mean(axis=1),
            "Embedding: std": embeddings.std(axis=1),
        }
    classes = [class_names[k] for k in probabilities.argmax(axis=1)] if len(class_names) else None
    return entity_features(list(rings), object_type="tile", measurements=measurements, classes=classes, colors=colors)


def edge_feature(points_yx: np.ndarray, pairs: np.ndarray, name: str = "Graph edges") -> dict:
    """All graph edges as one locked annotation with a MultiLineString geometry.

    One object keeps QuPath's hierarchy small (100k edges as objects would each be
    selectable and resolved against the hierarchy); locking stops accidental edits.

    Parameters
    ----------
    points_yx : ndarray, shape (N, 2)
        Node points in level-0 ``(y, x)`` pixels.
    pairs : ndarray, shape (P, 2), int
        Undirected node pairs, each drawn once.
    name : str
        The annotation's name in QuPath.

    Returns
    -------
    dict
        A GeoJSON Feature.
    """
    xy = np.round(np.asarray(points_yx, dtype=np.float64).reshape(-1, 2)[:, ::-1], COORDINATE_DECIMALS)
    pairs = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    return {
        "type": "Feature",
        "id": new_ids(1)[0],
        "geometry": {"type": "MultiLineString", "coordinates": xy[pairs].tolist()},
        "properties": {"objectType": "annotation", "name": name, "isLocked": True},
    }


def feature_collection(features: Sequence[dict]) -> dict:
    """A GeoJSON FeatureCollection of ``features``."""
    return {"type": "FeatureCollection", "features": list(features)}


def write_qupath(features: Sequence[dict], path: str | os.PathLike[str]) -> Path:
    """Write features as a ``.geojson`` FeatureCollection that QuPath imports, atomically.

    Parameters
    ----------
    features : sequence of dict
        From :func:`entity_features`, :func:`patch_features`, :func:`edge_feature`.
    path : str or PathLike
        Output file (``.geojson``).

    Returns
    -------
    Path
        The written file.

    Raises
    ------
    GeoJSONError
        If a value is a bare NaN/inf (strict JSON, as QuPath 0.5+ writes it, has none).
    """
    try:
        data = dumps(feature_collection(features))
    except ValueError as exc:
        raise GeoJSONError(f"Features hold a non-finite number outside the measurements: {exc}.") from exc
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)
