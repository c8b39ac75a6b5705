"""Untrusted GeoJSON: malformed files are refused with clear errors; writes round-trip (property-based)."""

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hmgdm_core.errors import GeoJSONError, InputError
from hmgdm_core.io.qupath import entity_features, parse_qupath, read_qupath, write_qupath


def _point(coordinates, kind="Point", **props):
    return {"type": "Feature", "geometry": {"type": kind, "coordinates": coordinates}, "properties": props}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ({"type": "Point", "coordinates": [1, 2]}, "FeatureCollection"),
        ({"type": "FeatureCollection", "features": {}}, "FeatureCollection"),
        ([42], "not a GeoJSON Feature"),
        ([_point([1, 2], "Circle")], "geometry type 'Circle'"),
        ([{"type": "Feature", "properties": {}}], "geometry type"),
        ([_point([[1, 2]], "Polygon")], "coordinates must be nested lists"),
        ([_point(["a", 2])], "coordinates must be nested lists"),
        ([_point([1, 2], objectType="blob")], "unknown objectType"),
        ([_point([1, 2], measurements=[{"value": 1}])], "'name' and 'value'"),
        ([_point([1, 2], measurements={"a": "lots"})], "not a number"),
        ([_point([1, 2], measurements=7)], "'measurements' must be"),
        ([_point([1, 2], classification="Tumor")], "'classification' must be"),
        ([_point([1, 2], classification={"name": "T", "color": "red"})], "color must be"),
        ([_point([1, 2], childObjects={"a": 1})], "'childObjects' must be a list"),
        ([_point([1, 2], childObjects=[_point([1], "Point")])], "Feature 0.0"),
    ],
)
def test_malformed_content_is_refused_naming_the_feature(content, message):
    with pytest.raises(GeoJSONError, match=message):
        parse_qupath(content)


def test_coordinates_outside_the_image_are_refused():
    parse_qupath([_point([99.5, 49])], image_shape=(50, 100))
    for bad in ([100.5, 10], [10, 50.5], [-1, 3]):
        with pytest.raises(GeoJSONError, match="outside the 100 × 50"):
            parse_qupath([_point(bad)], image_shape=(50, 100))


def test_bad_files_are_refused(tmp_path):
    with pytest.raises(GeoJSONError, match="No GeoJSON"):
        read_qupath(tmp_path / "missing.geojson")
    (tmp_path / "bad.geojson").write_text('{"type": "FeatureCollection", "features": [')
    with pytest.raises(GeoJSONError, match="not a JSON"):
        read_qupath(tmp_path / "bad.geojson")
    (tmp_path / "latin1.geojson").write_bytes(b'[{"name": "\xb5"}]')
    with pytest.raises(InputError, match="not a JSON"):
        read_qupath(tmp_path / "latin1.geojson")
    big = tmp_path / "big.geojson"
    big.write_text(json.dumps([_point([1, 2])] * 200))
    with pytest.raises(GeoJSONError, match="above the .* limit"):
        read_qupath(big, max_bytes=1000)  # refused before it is parsed
    assert len(read_qupath(big)) == 200


def test_non_finite_values_outside_measurements_cannot_be_written(tmp_path):
    feature = _point([1, 2])
    feature["properties"]["score"] = float("nan")
    with pytest.raises(GeoJSONError, match="non-finite"):
        write_qupath([feature], tmp_path / "x.geojson")
    assert not (tmp_path / "x.geojson").exists()  # atomic: nothing half-written


finite = st.floats(min_value=0, max_value=1e5, allow_nan=False, allow_infinity=False)
values = st.one_of(st.floats(allow_nan=True, allow_infinity=True, width=64), st.integers(-(2**40), 2**40))
names = st.text(min_size=1, max_size=12)


@settings(max_examples=40, deadline=None)
@given(
    rings=st.lists(st.lists(st.tuples(finite, finite), min_size=3, max_size=8), min_size=1, max_size=5),
    table=st.dictionaries(names, values, max_size=4),
    cls=st.one_of(st.none(), names),
    colour=st.tuples(*[st.integers(0, 255)] * 3),
)
def test_written_features_read_back_unchanged(tmp_path_factory, rings, table, cls, colour):
    outlines = [np.asarray([*ring, ring[0]], dtype=np.float64) for ring in rings]
    measurements = {name: np.full(len(outlines), value, dtype=np.float64) for name, value in table.items()}
    features = entity_features(
        outlines,
        object_type="tile",
        measurements=measurements,
        classes=[cls] * len(outlines),
        colors=None if cls is None else {cls: colour},
    )
    path = write_qupath(features, tmp_path_factory.mktemp("rt") / "f.geojson")
    json.loads(path.read_text(encoding="utf-8"), parse_constant=lambda token: pytest.fail(f"bare {token}"))
    back = read_qupath(path, image_shape=(100_001, 100_001))
    assert len(back) == len(outlines)
    for obj, ring, feature in zip(back, outlines, features, strict=True):
        assert obj.id == feature["id"] and obj.object_type == "tile"
        assert np.allclose(np.asarray(obj.geometry["coordinates"][0]), ring, atol=0.005)
        assert (obj.classification, obj.color) == (cls, None if cls is None else colour)
        assert set(obj.measurements) == set(table)
        for name, value in table.items():
            got, want = obj.measurements[name], float(value)
            assert (math.isnan(got) and math.isnan(want)) or got == want
