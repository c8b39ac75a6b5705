"""The fast JSON and validation paths decide exactly as the careful ones: tokens, nulls, odd positions, errors."""

import json
import math
import uuid

import numpy as np
import pytest

from hmgdm_core.errors import GeoJSONError
from hmgdm_core.io.qupath import entity_features, parse_qupath, read_qupath, write_qupath
from hmgdm_core.io.qupath.write import new_ids


def _detection(coordinates, kind="Polygon", **props):
    return {"type": "Feature", "geometry": {"type": kind, "coordinates": coordinates}, "properties": props}


SQUARE = [[[0, 0], [4, 0], [4, 4], [0, 4], [0, 0]]]


def test_bare_nan_tokens_of_old_qupath_files_are_read(tmp_path):
    path = tmp_path / "old.geojson"
    path.write_text('[{"type": "Feature", "geometry": {"type": "Point", "coordinates": [1, 2]}, '
                    '"properties": {"measurements": {"a": NaN, "b": -Infinity}}}]')  # fmt: skip
    (obj,) = read_qupath(path)
    assert math.isnan(obj.measurements["a"]) and obj.measurements["b"] == -math.inf


def test_nulls_and_huge_integers_are_written_as_json_writes_them(tmp_path):
    feature = _detection(SQUARE, name=None, count=2**70)
    path = write_qupath([feature], tmp_path / "x.geojson")
    content = json.loads(path.read_text(encoding="utf-8"))
    assert content["features"][0]["properties"] == {"name": None, "count": 2**70}


def test_written_file_is_strict_utf8_json(tmp_path):
    rings = [np.array([[0.004, 1.0], [3.0, 1.0], [3.0, 4.0], [0.004, 1.0]])]
    features = entity_features(rings, measurements={"Area µm²": np.array([np.nan])}, classes=["Tumör"])
    text = write_qupath(features, tmp_path / "u.geojson").read_text(encoding="utf-8")
    content = json.loads(text, parse_constant=lambda token: pytest.fail(f"bare {token}"))
    props = content["features"][0]["properties"]
    assert props["measurements"] == {"Area µm²": "NaN"} and props["classification"]["name"] == "Tumör"
    assert content["features"][0]["geometry"]["coordinates"][0][0] == [0.0, 1.0]  # rounded to 0.01 px


def test_three_coordinate_positions_and_mixed_geometries_read_like_before():
    content = [
        _detection([[[0, 0, 5], [4, 0, 5], [4, 4, 5], [0, 0, 5]]]),
        _detection([1.5, 2], "Point"),
        {"type": "Feature", "geometry": {"type": "GeometryCollection", "geometries": [
            {"type": "LineString", "coordinates": [[0, 0], [3, 3]]}]}, "properties": {}},
    ]  # fmt: skip
    objects = parse_qupath(content, image_shape=(10, 10))
    assert [o.geometry["type"] for o in objects] == ["Polygon", "Point", "GeometryCollection"]
    assert objects[0].geometry["coordinates"][0][1] == [4, 0, 5]  # kept as in the file


@pytest.mark.parametrize(
    ("bad", "where"),
    [([[[0, 0], [40, 0], [4, 4], [0, 0]]], "outside the 10 × 10"), ([[[0, 0], ["a", 0], [4, 4]]], "nested lists")],
)
def test_the_first_bad_feature_is_named_after_good_ones(bad, where):
    content = [_detection(SQUARE), _detection(SQUARE), _detection(bad), _detection(SQUARE, objectType="blob")]
    with pytest.raises(GeoJSONError, match=f"Feature 2: .*{where}"):
        parse_qupath(content, image_shape=(10, 10))


def test_non_finite_coordinates_are_refused():
    with pytest.raises(GeoJSONError, match="Feature 1: coordinates must be finite"):
        parse_qupath([_detection(SQUARE), _detection([1.0, float("nan")], "Point")])


def test_new_ids_are_version_4_uuids():
    ids = new_ids(200)
    assert len(set(ids)) == 200
    for text in ids[:20]:
        parsed = uuid.UUID(text)
        assert str(parsed) == text and parsed.version == 4 and parsed.variant == uuid.RFC_4122
