"""Reading real QuPath exports (0.2–0.4) and synthetic edge cases: object types, classes, measurements, ROIs."""

import json
import math

import numpy as np
import pytest
from skimage.draw import polygon

from hmgdm_core.errors import InputError
from hmgdm_core.io import Region
from hmgdm_core.io.qupath import parse_qupath, read_qupath, roi_mask, roi_region, rois


def test_every_annotation_shape_of_qupath_03(qupath_dir):
    objects = read_qupath(qupath_dir / "napari-geojson_qp_all_shapes.geojson")
    assert [o.object_type for o in objects] == ["annotation"] * 7
    assert [o.geometry["type"] for o in objects] == [
        "Polygon",
        "Polygon",
        "Polygon",
        "MultiPoint",
        "Point",
        "LineString",
        "LineString",
    ]
    areas = rois(objects)  # rectangle, ellipse, polygon; points and lines bound no area
    assert len(areas) == 3
    rect = roi_region(areas[0], base_mpp=0.25)
    assert (rect.y, rect.x, rect.y + rect.height, rect.x + rect.width) == (320, 298, 609, 613)
    mask = roi_mask(areas[0], rect)
    assert mask.mean() > 0.98  # a rectangle fills its own bounding box


def test_ellipse_mask_has_an_ellipse_area(qupath_dir):
    ellipse = rois(read_qupath(qupath_dir / "napari-geojson_qp_all_shapes.geojson"))[1]
    region = roi_region(ellipse, base_mpp=0.25, mpp=0.5)  # read at half resolution
    mask = roi_mask(ellipse, region)
    assert mask.shape == region.shape
    assert mask.mean() == pytest.approx(math.pi / 4, abs=0.02)


def test_legacy_multipolygon_with_hole_and_packed_colour(qupath_dir):
    objects = read_qupath(qupath_dir / "histoqc_geojson_example.json")  # a bare list, QuPath 0.2
    assert [(o.object_type, o.classification) for o in objects] == [
        ("annotation", "Tumor"),
        ("annotation", "Invborder"),
    ]
    assert objects[0].color == (200, 0, 0)  # colorRGB -3670016 = 0xFFC80000
    assert objects[1].color == (0, 255, 0)
    assert objects[0].measurements == {} and objects[0].id is None  # legacy "PathAnnotationObject" is no id
    holed = objects[1]
    hole = np.asarray(holed.geometry["coordinates"][0][1])  # the one hole, in the first part
    x0, y0 = hole.min(axis=0).astype(int) - 200
    x1, y1 = hole.max(axis=0).astype(int) + 200
    region = Region(int(y0), int(x0), int(y1 - y0), int(x1 - x0), base_mpp=0.5, mpp=8.0)
    yx = region.from_level0(hole[:, ::-1])
    in_hole = np.zeros(region.shape, bool)
    in_hole[polygon(yx[:, 0], yx[:, 1], shape=region.shape)] = True
    mask = roi_mask(holed, region)
    assert in_hole.sum() > 20
    assert not mask[in_hole].any()  # the hole is not part of the region of interest
    assert mask[~in_hole].mean() > 0.2  # the tissue around it is


@pytest.mark.parametrize(
    ("name", "first_id"),
    [("luna_test_object_classification.geojson", None), ("luna_test_cell_detections.geojson", "5868af7c")],
)
def test_cells_old_list_and_new_dict_measurements(qupath_dir, name, first_id):
    objects = read_qupath(qupath_dir / name)
    assert all(o.object_type == "cell" and o.nucleus_geometry is not None for o in objects)
    cell = objects[0]
    assert len(cell.measurements) == 54
    assert {"Detection probability", "Nucleus: Area µm^2", "Eosin: Membrane: Std.Dev."} <= set(cell.measurements)
    assert all(isinstance(v, float) for v in cell.measurements.values())
    assert (cell.classification, cell.color) == ("Other", (0, 128, 128))
    assert (cell.id or "").startswith(first_id or "")
    assert (cell.id is None) == (first_id is None)


def _feature(measurements, **extra):
    props = {"objectType": "detection", "measurements": measurements} | extra
    return {"type": "Feature", "geometry": {"type": "Point", "coordinates": [1, 2]}, "properties": props}


def test_non_finite_measurements_in_every_dialect():
    text = json.dumps([_feature({"a": float("nan"), "b": float("inf"), "c": float("-inf")})])  # bare tokens (≤ 0.4)
    modern = _feature({"a": "NaN", "b": "Infinity", "c": "-Infinity", "d": "inf", "e": "2.5", "f": None})
    legacy = _feature([{"name": "a", "value": "NaN"}, {"name": "b", "value": 3}])
    for obj in parse_qupath(json.loads(text)) + parse_qupath(modern) + parse_qupath([legacy]):
        m = obj.measurements
        assert math.isnan(m["a"])
        assert m["b"] in (math.inf, 3.0)
    m = parse_qupath(modern)[0].measurements
    assert (m["c"], m["d"], m["e"]) == (-math.inf, math.inf, 2.5) and math.isnan(m["f"])


def test_child_objects_are_flattened_after_their_parent():
    child = _feature({"x": 1}, name="child")
    grandchild = _feature({}, name="grandchild")
    parent = {
        "type": "Feature",
        "geometry": {"type": "Polygon", "coordinates": [[[0, 0], [9, 0], [9, 9], [0, 0]]]},
        "properties": {"objectType": "annotation", "name": "parent", "childObjects": [child]},
    }
    old_style = {**child, "properties": {**child["properties"], "name": "c2", "children": [grandchild]}}
    names = [o.name for o in parse_qupath({"type": "FeatureCollection", "features": [parent, old_style]})]
    assert names == ["parent", "child", "c2", "grandchild"]


def test_derived_class_and_missing_type_default_to_qupath_rules():
    feature = {
        "type": "Feature",
        "geometry": {"type": "Polygon", "coordinates": [[[0, 0], [4, 0], [4, 4], [0, 0]]]},
        "properties": {"classification": {"names": ["Tumor", "Positive"], "color": [255, 0, 0]}},
    }
    (obj,) = parse_qupath(feature)  # a single Feature is accepted, as QuPath does
    assert obj.object_type == "annotation" and obj.classification == "Tumor: Positive"
    assert issubclass(type(obj.locked), bool) and not obj.locked


def test_qupath_nuclei_feed_the_entity_importer(qupath_dir, tmp_path):
    from hmgdm_core.entities import nuclei_from_geojson

    ents = nuclei_from_geojson(
        qupath_dir / "luna_test_cell_detections.geojson",
        np.full((1100, 1100, 3), 180, np.uint8),
        Region(0, 0, 1100, 1100, base_mpp=0.5),
    )
    assert ents.n == 2
    with pytest.raises(InputError, match="geometry type"):
        nuclei_from_geojson(
            [{"type": "Feature", "geometry": {"type": "Circle"}}],
            np.zeros((4, 4, 3), np.uint8),
            Region(0, 0, 4, 4, 1.0),
        )
