"""Reading QuPath GeoJSON (0.2–0.5+) into validated objects, refusing untrusted input clearly.

QuPath has written three dialects: 0.2 (``"id": "PathCellObject"``, ``colorRGB``, measurements
as a list of ``{name, value}``), 0.3 (``properties.object_type``) and 0.4+ (UUID ``id``,
``properties.objectType``, ``classification.color``, measurements as a dict). Non-finite
measurements are bare ``NaN``/``Infinity`` tokens before 0.5 and the strings ``"NaN"``,
``"Infinity"``, ``"-Infinity"`` since. The top level is a FeatureCollection, a bare list of
features or a single Feature. Children (``properties.childObjects`` or ``children``) are
flattened after their parent. Coordinates are level-0 pixels, ``(x, y)``.

Validating coordinates feature by feature costs ~100 µs each (numpy conversions), seconds for
100k nuclei; so the features are first walked without converting coordinates, their positions
collected into one list and checked in one numpy pass. Only if that finds a problem are the
features validated one by one again, to name the first offending one.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from itertools import chain
from pathlib import Path

import numpy as np

from hmgdm_core.errors import GeoJSONError
from hmgdm_core.io.jsonio import gc_paused, loads

__all__ = ["MAX_BYTES", "QuPathObject", "parse_qupath", "read_qupath"]

MAX_BYTES = 1 << 30
"""Default size limit of a file :func:`read_qupath` accepts (1 GiB ≈ 700k nucleus outlines)."""

_TYPES = {"annotation", "detection", "cell", "tile", "tmacore", "root"}
_LEGACY_IDS = {
    "pathannotationobject": "annotation",
    "pathdetectionobject": "detection",
    "pathcellobject": "cell",
    "pathtileobject": "tile",
    "tmacoreobject": "tmacore",
    "pathrootobject": "root",
}
# Nesting depth of ``coordinates`` arrays per geometry type (a Point is one position: depth 1).
_DEPTH = {"Point": 1, "MultiPoint": 2, "LineString": 2, "MultiLineString": 3, "Polygon": 3, "MultiPolygon": 4}


@dataclass(frozen=True)
class QuPathObject:
    """One QuPath object (a GeoJSON Feature), validated.

    Parameters
    ----------
    object_type : str
        ``'annotation'``, ``'detection'``, ``'cell'``, ``'tile'``, ``'tmacore'`` or ``'root'``.
    geometry : dict
        GeoJSON geometry, coordinates level-0 ``(x, y)`` pixels (lists of floats).
        An ellipse QuPath drew (0.4+) keeps ``"isEllipse": True`` beside its polygon.
    nucleus_geometry : dict or None
        The nucleus outline of a cell.
    id : str or None
        The feature id (a UUID since QuPath 0.4; absent or a legacy class name before).
    name : str or None
        The object's name.
    classification : str or None
        Class name (a derived class's names joined with ``': '``, as QuPath shows them).
    color : tuple of int or None
        Class colour ``(r, g, b)``, 0–255.
    measurements : dict of str to float
        Measurements; non-finite values are float NaN/±inf.
    locked : bool
        Whether QuPath locks the object.
    """

    object_type: str
    geometry: dict
    nucleus_geometry: dict | None = None
    id: str | None = None
    name: str | None = None
    classification: str | None = None
    color: tuple[int, int, int] | None = None
    measurements: dict[str, float] = field(default_factory=dict)
    locked: bool = False


def read_qupath(
    path: str | os.PathLike[str], image_shape: tuple[int, int] | None = None, max_bytes: int = MAX_BYTES
) -> list[QuPathObject]:
    """Read and validate a QuPath GeoJSON file.

    Parameters
    ----------
    path : str or PathLike
        A ``.geojson``/``.json`` file as QuPath exports it (UTF-8).
    image_shape : tuple of int, optional
        Level-0 ``(rows, cols)`` of the image the objects belong to; coordinates outside
        ``[0, cols] × [0, rows]`` are refused.
    max_bytes : int
        Files larger than this are refused before reading (parsing needs ~10× the file size).

    Returns
    -------
    list of QuPathObject
        In file order, each parent followed by its children.

    Raises
    ------
    GeoJSONError
        If the file is missing, too large, not UTF-8 JSON, or not QuPath GeoJSON.
    """
    path = Path(path)
    if not path.is_file():
        raise GeoJSONError(f"No GeoJSON file at {path}.")
    size = path.stat().st_size
    if size > max_bytes:
        raise GeoJSONError(
            f"{path} is {size / 2**20:.0f} MiB, above the {max_bytes / 2**20:.0f} MiB limit; export a smaller "
            "region from QuPath or raise max_bytes if the machine has the memory (~10× the file size)."
        )
    try:
        content = loads(path.read_bytes())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise GeoJSONError(f"{path} is not a JSON file: {exc}.") from exc
    except RecursionError:  # arrays or objects nested thousands deep: no GeoJSON is
        raise GeoJSONError(f"{path} nests JSON arrays or objects too deeply to be GeoJSON.") from None
    try:
        return parse_qupath(content, image_shape)
    except RecursionError:
        raise GeoJSONError(f"{path} nests its geometry too deeply to be QuPath GeoJSON.") from None


def parse_qupath(content: object, image_shape: tuple[int, int] | None = None) -> list[QuPathObject]:
    """Validate parsed QuPath GeoJSON (see :func:`read_qupath`).

    Parameters
    ----------
    content : dict or list
        A FeatureCollection, a single Feature, or a list of features.
    image_shape : tuple of int, optional
        Level-0 ``(rows, cols)``; coordinates outside the image are refused.

    Returns
    -------
    list of QuPathObject

    Raises
    ------
    GeoJSONError
        Naming the offending feature (its index) and what is wrong.
    """
    if isinstance(content, dict) and content.get("type") == "Feature":
        features = [content]
    elif isinstance(content, dict) and content.get("type") == "FeatureCollection":
        features = content.get("features")
    else:
        features = content
    if not isinstance(features, list):
        raise GeoJSONError("GeoJSON must be a FeatureCollection, a Feature, or a list of features.")
    objects: list[QuPathObject] = []
    positions: list = []
    with gc_paused():
        try:
            for index, feature in enumerate(features):
                _append(feature, str(index), partial(_collect, positions=positions), objects)
            if _positions_valid(positions, image_shape):
                return objects
        except GeoJSONError:
            pass
        objects = []  # one by one, to name the first bad feature
        for index, feature in enumerate(features):
            _append(feature, str(index), partial(_geometry, image_shape=image_shape), objects)
    return objects


def _collect(geometry: object, where: str, positions: list) -> dict:
    """The geometry, its positions appended to ``positions`` unchecked (see :func:`_positions_valid`)."""
    _check_type(geometry, where)
    if geometry["type"] == "GeometryCollection":
        parts = geometry.get("geometries")
        if not isinstance(parts, list):
            raise GeoJSONError(f"{where.capitalize()}: a GeometryCollection needs a 'geometries' list.")
        return {"type": "GeometryCollection", "geometries": [_collect(g, where, positions) for g in parts]}
    coords = geometry.get("coordinates")
    if not _leaves(coords, _DEPTH[geometry["type"]], positions):
        raise GeoJSONError(f"{where.capitalize()}: coordinates are not nested {_DEPTH[geometry['type']]} deep.")
    return _flagged(geometry, {"type": geometry["type"], "coordinates": coords})


def _flagged(source: dict, geometry: dict) -> dict:
    """``geometry`` with QuPath's ``isEllipse`` flag (0.4+, beside ``coordinates``) kept when set."""
    if source.get("isEllipse") is True:
        geometry["isEllipse"] = True
    return geometry


def _leaves(coords: object, depth: int, out: list) -> bool:
    """Append the depth-1 items of a nested list to ``out``; False if a level is not a list."""
    if depth == 1:
        out.append(coords)
        return True
    if not isinstance(coords, list):
        return False
    if depth == 2:
        out.extend(coords)
        return True
    return all(_leaves(part, depth - 1, out) for part in coords)


def _positions_valid(positions: list, image_shape: tuple[int, int] | None) -> bool:
    """Whether all positions are finite ``[x, y]`` number pairs (inside the image if its shape is given)."""
    if not positions:
        return True
    try:
        if set(map(len, positions)) != {2}:
            return False  # [x, y, z] positions: the one-by-one path reads those
    except TypeError:  # a number where a position belongs
        return False
    if not set(map(type, chain.from_iterable(positions))) <= {int, float}:
        return False  # strings, nested lists, JSON objects (whose keys are strings)
    xy = np.fromiter(chain.from_iterable(positions), np.float64, count=2 * len(positions)).reshape(-1, 2)
    if not np.isfinite(xy).all():
        return False
    if image_shape is None:
        return True
    rows, cols = image_shape
    return bool(xy.min() >= 0 and xy[:, 0].max() <= cols and xy[:, 1].max() <= rows)


def _append(feature: object, where: str, geometry: Callable[[object, str], dict], out: list[QuPathObject]) -> None:
    if not isinstance(feature, dict) or feature.get("type", "Feature") != "Feature":
        raise GeoJSONError(f"Feature {where} is not a GeoJSON Feature object.")
    props = feature.get("properties") or {}
    if not isinstance(props, dict):
        raise GeoJSONError(f"Feature {where}: 'properties' must be an object.")
    object_type = _object_type(feature, props, where)
    shape = geometry(feature.get("geometry"), f"feature {where}")
    nucleus = feature.get("nucleusGeometry")
    nucleus = None if nucleus is None else geometry(nucleus, f"feature {where} nucleusGeometry")
    name, colour = _classification(props.get("classification"), where)
    legacy_id = str(feature.get("id", "")).lower() in _LEGACY_IDS
    out.append(
        QuPathObject(
            object_type=object_type,
            geometry=shape,
            nucleus_geometry=nucleus,
            id=None if legacy_id or feature.get("id") is None else str(feature["id"]),
            name=None if props.get("name") is None else str(props["name"]),
            classification=name,
            color=colour,
            measurements=_measurements(props.get("measurements"), where),
            locked=bool(props.get("isLocked", False)),
        )
    )
    children = props.get("childObjects", props.get("children")) or []
    if not isinstance(children, list):
        raise GeoJSONError(f"Feature {where}: 'childObjects' must be a list of features.")
    for k, child in enumerate(children):
        _append(child, f"{where}.{k}", geometry, out)


def _object_type(feature: dict, props: dict, where: str) -> str:
    raw = props.get("objectType") or props.get("object_type") or props.get("type")
    if raw is None:  # 0.2 put the Java class in the feature id; QuPath reads a missing type as annotation
        return _LEGACY_IDS.get(str(feature.get("id", "")).lower(), "annotation")
    kind = str(raw).lower().replace("_", "")
    if kind not in _TYPES:
        raise GeoJSONError(f"Feature {where}: unknown objectType {raw!r}; expected one of {sorted(_TYPES)}.")
    return kind


def _check_type(geometry: object, where: str) -> None:
    if not isinstance(geometry, dict) or geometry.get("type") not in (*_DEPTH, "GeometryCollection"):
        kind = geometry.get("type") if isinstance(geometry, dict) else type(geometry).__name__
        raise GeoJSONError(f"{where.capitalize()}: geometry type {kind!r} is not one of {[*_DEPTH]}.")


def _geometry(geometry: object, where: str, image_shape: tuple[int, int] | None) -> dict:
    _check_type(geometry, where)
    if geometry["type"] == "GeometryCollection":
        parts = geometry.get("geometries")
        if not isinstance(parts, list):
            raise GeoJSONError(f"{where.capitalize()}: a GeometryCollection needs a 'geometries' list.")
        return {"type": "GeometryCollection", "geometries": [_geometry(g, where, image_shape) for g in parts]}
    try:
        xy = _positions(geometry.get("coordinates"), _DEPTH[geometry["type"]])
    except (TypeError, ValueError) as exc:
        raise GeoJSONError(
            f"{where.capitalize()}: {geometry['type']} coordinates must be nested lists of [x, y] numbers ({exc})."
        ) from exc
    xy = xy.reshape(-1, 2)
    if not np.isfinite(xy).all():
        raise GeoJSONError(f"{where.capitalize()}: coordinates must be finite numbers.")
    if image_shape is not None and len(xy):
        rows, cols = image_shape
        if xy.min() < 0 or xy[:, 0].max() > cols or xy[:, 1].max() > rows:
            raise GeoJSONError(
                f"{where.capitalize()}: coordinates span x {xy[:, 0].min():.0f}–{xy[:, 0].max():.0f}, "
                f"y {xy[:, 1].min():.0f}–{xy[:, 1].max():.0f}, outside the {cols} × {rows} (x × y) image; "
                "was the file exported from another image?"
            )
    return _flagged(geometry, {"type": geometry["type"], "coordinates": geometry["coordinates"]})


def _positions(coords: object, depth: int) -> np.ndarray:
    """``(K, 2)`` float64 positions of a coordinates array nested ``depth`` deep; ValueError otherwise.

    numpy converts a regular array (one ring, or rings of equal length) in one C pass; ragged
    arrays (holes, multi-part shapes) and anything it rejects are walked in Python.
    """
    try:
        array = np.asarray(coords)
    except ValueError:  # ragged
        array = None
    if array is not None and array.dtype.kind in "iuf" and array.ndim == depth and array.shape[-1] in (2, 3):
        return array.reshape(-1, array.shape[-1])[:, :2].astype(np.float64)
    return np.asarray(_flatten(coords, depth), dtype=np.float64)


def _flatten(coords: object, depth: int) -> list:
    """The ``[x, y]`` positions of a coordinates array nested ``depth`` deep; raises ValueError otherwise."""
    if depth == 1:
        if not (isinstance(coords, list) and len(coords) in (2, 3)):
            raise ValueError(f"a position must be [x, y], got {coords!r:.40}")
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in coords):
            raise ValueError(f"a position must hold numbers, got {coords!r:.40}")
        return [coords[:2]]
    if not isinstance(coords, list):
        raise ValueError(f"expected a list, got {type(coords).__name__}")
    return [p for part in coords for p in _flatten(part, depth - 1)]


def _classification(value: object, where: str) -> tuple[str | None, tuple[int, int, int] | None]:
    if value is None:
        return None, None
    if not isinstance(value, dict):
        raise GeoJSONError(f"Feature {where}: 'classification' must be an object with a name.")
    name = value.get("name")
    if name is None and isinstance(value.get("names"), list):
        name = ": ".join(str(n) for n in value["names"])
    if "color" in value:
        rgb = value["color"]
        if not (isinstance(rgb, list) and len(rgb) == 3 and all(isinstance(c, int) for c in rgb)):
            raise GeoJSONError(f"Feature {where}: classification color must be [r, g, b] integers.")
        colour = tuple(int(c) & 255 for c in rgb)
    elif isinstance(value.get("colorRGB"), int):  # packed signed ARGB int (QuPath 0.2/0.3)
        packed = value["colorRGB"] & 0xFFFFFF
        colour = (packed >> 16, (packed >> 8) & 255, packed & 255)
    else:
        colour = None
    return (None if name is None else str(name)), colour


def _measurements(value: object, where: str) -> dict[str, float]:
    if value is None:
        return {}
    if isinstance(value, list):  # the 0.2/0.3 list of {name, value}
        try:
            value = {item["name"]: item["value"] for item in value}
        except (TypeError, KeyError) as exc:
            raise GeoJSONError(f"Feature {where}: measurements list items need 'name' and 'value'.") from exc
    if not isinstance(value, dict):
        raise GeoJSONError(f"Feature {where}: 'measurements' must be an object or a list.")
    return {str(k): _number(v, k, where) for k, v in value.items()}


def _number(value: object, name: str, where: str) -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if value is None:  # some writers emit null for a missing value; QuPath treats it as NaN
        return math.nan
    if isinstance(value, str):  # "NaN", "Infinity", "-Infinity" (0.5+), "inf", or a number as text
        try:
            return float(value)
        except ValueError:
            pass
    raise GeoJSONError(f"Feature {where}: measurement {name!r} is {value!r:.40}, not a number.")
