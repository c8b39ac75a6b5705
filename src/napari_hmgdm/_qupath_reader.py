"""npe2 reader: QuPath GeoJSON (``.geojson``) as layers over the slide.

Annotations that enclose an area or draw a line become one Shapes layer (rectangles stay
rectangles, ellipses QuPath flagged ``isEllipse`` stay ellipses, each part of a MultiPolygon
one polygon; holes are not drawn), point annotations a Points layer, and detections, cells and
tiles a Points layer at their outline's centroid, carrying the measurements in ``features``.
Class colours come from the file (QuPath's ``classification.color``), else a fixed palette.

QuPath coordinates are level-0 ``(x, y)`` pixels; the layers hold level-0 ``(y, x)`` pixels
with ``scale`` = the open slide's µm/px, so they land on a slide opened with this plugin (in
pixels when no such slide is open).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from hmgdm_core.io.qupath import QuPathObject, read_qupath

__all__ = ["get_geojson_reader", "qupath_layer_data", "read_geojson"]

# Matplotlib's tab10, for classes the file gives no colour.
_PALETTE = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75),
            (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207)]  # fmt: skip
_UNCLASSIFIED = "Unclassified"
_OBJECT_LAYERS = ("detection", "cell", "tile")


def _looks_like_geojson(path: str) -> bool:
    """``.geojson``, or a ``.json`` file whose first bytes hold GeoJSON features (QuPath 0.2 wrote ``.json``)."""
    name = str(path).lower()
    if name.endswith(".geojson"):
        return True
    if not name.endswith(".json"):
        return False
    try:
        with open(path, "rb") as handle:
            head = handle.read(4096)
    except OSError:
        return False
    return b'"Feature' in head and b'"geometry"' in head


def get_geojson_reader(path: str | list[str]) -> Callable[[str | list[str]], list[tuple]] | None:
    """Return :func:`read_geojson` for QuPath GeoJSON files, else ``None`` (napari asks other readers)."""
    paths = [path] if isinstance(path, str) else list(path)
    if paths and all(_looks_like_geojson(p) for p in paths):
        return read_geojson
    return None


def _slide_mpp() -> float | None:
    """Level-0 µm/px of a slide opened with this plugin in the current viewer, if any."""
    import napari

    viewer = napari.current_viewer()
    for layer in viewer.layers if viewer is not None else ():
        if layer.metadata.get("hmgdm_mpp"):
            return float(layer.metadata["hmgdm_mpp"])
    return None


def read_geojson(path: str | list[str]) -> list[tuple]:
    """Read QuPath GeoJSON files as layer data (see the module docstring).

    Raises
    ------
    GeoJSONError
        If a file is not QuPath GeoJSON (napari shows the message).
    """
    paths = [path] if isinstance(path, str) else list(path)
    mpp = _slide_mpp()
    return [layer for p in paths for layer in qupath_layer_data(read_qupath(p), Path(p).stem, mpp)]


def _colours(objects: Sequence[QuPathObject]) -> dict[str, tuple[int, int, int]]:
    """Class name → (r, g, b): the file's colour for the class, else the next palette colour; grey unclassified."""
    colours: dict[str, tuple[int, int, int]] = {_UNCLASSIFIED: (160, 160, 160)}
    for obj in objects:
        if obj.classification and obj.color and obj.classification not in colours:
            colours[obj.classification] = obj.color
    for name in dict.fromkeys(obj.classification for obj in objects if obj.classification):
        colours.setdefault(name, _PALETTE[(len(colours) - 1) % len(_PALETTE)])
    return colours


def _yx(coords) -> np.ndarray:
    return np.asarray(coords, dtype=np.float64).reshape(-1, 2)[:, ::-1]


def _shape(ring_xy, is_ellipse: bool) -> tuple[np.ndarray, str]:
    """A closed QuPath ring as napari shape data (y, x) and its shape type."""
    yx = _yx(ring_xy)
    if len(yx) > 1 and np.allclose(yx[0], yx[-1]):
        yx = yx[:-1]
    lo, hi = yx.min(axis=0), yx.max(axis=0)
    corners = np.array([[lo[0], lo[1]], [lo[0], hi[1]], [hi[0], hi[1]], [hi[0], lo[1]]])
    if is_ellipse:
        return corners, "ellipse"
    if len(yx) == 4 and (np.isclose(yx, lo) | np.isclose(yx, hi)).all():
        return corners, "rectangle"
    return yx, "polygon"


def _parts(geometry: dict) -> list[tuple[np.ndarray, str]]:
    """The napari shapes of one annotation geometry (outer rings only); points are left to :func:`_points`."""
    kind, coords = geometry["type"], geometry.get("coordinates")
    ellipse = bool(geometry.get("isEllipse"))
    if kind == "Polygon":
        return [_shape(coords[0], ellipse)] if coords else []
    if kind == "MultiPolygon":
        return [_shape(part[0], ellipse) for part in coords if part]
    if kind == "LineString":
        return [(_yx(coords), "line" if len(coords) == 2 else "path")]
    if kind == "MultiLineString":
        return [(_yx(line), "line" if len(line) == 2 else "path") for line in coords]
    if kind == "GeometryCollection":
        return [part for g in geometry["geometries"] for part in _parts(g)]
    return []


def _points(geometry: dict) -> np.ndarray:
    kind = geometry["type"]
    if kind == "Point":
        return _yx(geometry["coordinates"])
    if kind == "MultiPoint":
        return _yx(geometry["coordinates"])
    if kind == "GeometryCollection":
        return np.concatenate([_points(g) for g in geometry["geometries"]] + [np.zeros((0, 2))])
    return np.zeros((0, 2))


def _centroid(geometry: dict) -> np.ndarray:
    """The area centroid (y, x) of a polygon's outer ring (a point's position; a line's vertex mean)."""
    if geometry["type"] == "MultiPolygon":
        geometry = {"type": "Polygon", "coordinates": max(geometry["coordinates"], key=lambda p: len(p[0]))}
    if geometry["type"] != "Polygon":
        points = np.concatenate([_points(geometry), *[yx for yx, _ in _parts(geometry)], np.zeros((0, 2))])
        return points.mean(axis=0) if len(points) else np.full(2, np.nan)
    yx = _yx(geometry["coordinates"][0])
    y, x = yx[:, 0], yx[:, 1]
    cross = x[:-1] * y[1:] - x[1:] * y[:-1]
    area = cross.sum() / 2
    if abs(area) < 1e-9:
        return yx.mean(axis=0)
    return np.array([((y[:-1] + y[1:]) * cross).sum(), ((x[:-1] + x[1:]) * cross).sum()]) / (6 * area)


def _rgba(colours: dict, names: Sequence[str], alpha: float = 1.0) -> np.ndarray:
    return np.array([[*(np.asarray(colours[n]) / 255.0), alpha] for n in names]).reshape(-1, 4)


def qupath_layer_data(objects: Sequence[QuPathObject], stem: str, mpp: float | None) -> list[tuple]:
    """Layer data tuples of QuPath objects (see the module docstring).

    Parameters
    ----------
    objects : sequence of QuPathObject
        As :func:`~hmgdm_core.io.qupath.read_qupath` reads them.
    stem : str
        Prefix of the layer names (the file name).
    mpp : float or None
        Level-0 µm/px of the slide they belong to; ``None``: shown in level-0 pixels.

    Returns
    -------
    list of tuple
        ``(data, kwargs, layer_type)``: a Shapes layer of annotations (features ``name``, ``class``),
        a Points layer of point annotations, and a Points layer of detections/cells/tiles (features
        ``name``, ``class``, ``object_type``, ``id`` and every measurement), each only when not empty.
    """
    import pandas as pd

    colours = _colours(objects)
    common = {"scale": (mpp or 1.0, mpp or 1.0), "units": ("µm", "µm") if mpp else ("pixel", "pixel"),
              "metadata": {"hmgdm_qupath_colours": {k: list(v) for k, v in colours.items()}}}  # fmt: skip
    shapes, types, rows, marks, mark_rows, centres, object_rows = [], [], [], [], [], [], []
    for obj in objects:
        row = {"name": obj.name or "", "class": obj.classification or _UNCLASSIFIED}
        if obj.object_type in _OBJECT_LAYERS:
            centres.append(_centroid(obj.nucleus_geometry or obj.geometry))
            object_rows.append(row | {"object_type": obj.object_type, "id": obj.id or ""} | obj.measurements)
            continue
        for data, kind in _parts(obj.geometry):
            shapes.append(data)
            types.append(kind)
            rows.append(row)
        for point in _points(obj.geometry):
            marks.append(point)
            mark_rows.append(row)
    layers = []
    if shapes:
        classes = [r["class"] for r in rows]
        layers.append((shapes, common | {
            "name": f"{stem} annotations", "shape_type": types, "features": pd.DataFrame(rows),
            "edge_color": _rgba(colours, classes), "face_color": _rgba(colours, classes, 0.15), "edge_width": 3,
        }, "shapes"))  # fmt: skip
    if marks:
        classes = [r["class"] for r in mark_rows]
        layers.append((np.array(marks), common | {
            "name": f"{stem} points", "features": pd.DataFrame(mark_rows), "face_color": _rgba(colours, classes),
            "size": 12, "border_color": "white",
        }, "points"))  # fmt: skip
    if centres:
        classes = [r["class"] for r in object_rows]
        layers.append((np.array(centres), common | {
            "name": f"{stem} detections", "features": pd.DataFrame(object_rows), "face_color": _rgba(colours, classes),
            "size": 8, "border_width": 0,
        }, "points"))  # fmt: skip
    return layers
