"""QuPath flags and per-object measurements: isEllipse both ways, one object per nucleus with its centroid."""

import json

import numpy as np
import pytest

from hmgdm_core.io.qupath import label_features, parse_qupath, shape_features, write_qupath


def _feature(geometry):
    return {"type": "Feature", "geometry": geometry, "properties": {"objectType": "annotation"}}


def test_is_ellipse_is_kept_on_read_in_both_validation_passes():
    ring = [[0, 0], [10, 0], [10, 5], [0, 5], [0, 0]]
    ellipse = {"type": "Polygon", "coordinates": [ring], "isEllipse": True}
    plain = {"type": "Polygon", "coordinates": [ring]}
    objects = parse_qupath([_feature(ellipse), _feature(plain)])
    assert [o.geometry.get("isEllipse", False) for o in objects] == [True, False]
    # The slow, feature-by-feature pass (taken when a position is off the image) keeps it too.
    with pytest.raises(Exception, match="outside"):
        parse_qupath([_feature(ellipse)], image_shape=(4, 4))
    (again,) = parse_qupath([_feature(ellipse)], image_shape=(100, 100))
    assert again.geometry["isEllipse"] is True


def test_written_ellipses_are_flagged_and_classes_written(tmp_path):
    box = np.array([[10.0, 20.0], [10.0, 60.0], [30.0, 60.0], [30.0, 20.0]])
    features = shape_features([box, box], ["ellipse", "polygon"], names=["a", None], classes=["Tumor", None],
                              colors={"Tumor": (200, 0, 0)})  # fmt: skip
    assert features[0]["geometry"]["isEllipse"] is True and "isEllipse" not in features[1]["geometry"]
    assert features[0]["properties"]["classification"] == {"name": "Tumor", "color": [200, 0, 0]}
    assert "classification" not in features[1]["properties"] and "name" not in features[1]["properties"]
    path = write_qupath(features, tmp_path / "shapes.geojson")
    objects = parse_qupath(json.loads(path.read_text()))
    assert [o.geometry.get("isEllipse", False) for o in objects] == [True, False]
    assert objects[0].classification == "Tumor" and objects[0].color == (200, 0, 0)
    with pytest.raises(Exception, match="classes for 1"):
        shape_features([box, box], ["polygon", "polygon"], classes=["Tumor"])


def test_each_label_is_one_object_with_its_centroid_and_measurements():
    labels = np.zeros((40, 50), np.int32)
    labels[5:15, 10:30] = 1  # centre (9.5, 19.5)
    labels[20:36, 2:6] = 3  # centre (27.5, 3.5); label 2 absent
    scale, translate, base_mpp = (2.0, 2.0), (100.0, 50.0), 0.5  # data px -> µm -> level-0 px
    area = np.array([200.0, np.nan, 64.0])
    features = label_features(labels, scale=scale, translate=translate, base_mpp=base_mpp,
                              measurements={"area_um2": area})  # fmt: skip
    assert [f["properties"]["name"] for f in features] == ["1", "3"]
    for feature, (cy, cx), value in zip(features, [(9.5, 19.5), (27.5, 3.5)], [200.0, 64.0], strict=True):
        meas = feature["properties"]["measurements"]
        # Centroid in µm: the world position of the pixels' mean (data · scale + translate).
        assert meas["Centroid X µm"] == pytest.approx(cx * 2.0 + 50.0)
        assert meas["Centroid Y µm"] == pytest.approx(cy * 2.0 + 100.0)
        assert meas["area_um2"] == value
    assert all(f["geometry"]["type"] == "Polygon" for f in features)
