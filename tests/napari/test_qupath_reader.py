"""QuPath GeoJSON opens through napari's reader, on the slide, with counts, classes and measurements kept."""

import json

import numpy as np
import pytest
from napari.layers import Points, Shapes

from hmgdm_core.io.qupath import read_qupath

MPP = 0.499


@pytest.fixture
def slide(make_napari_viewer, sample_svs):
    viewer = make_napari_viewer()
    viewer.open(str(sample_svs), plugin="napari-hmgdm")
    return viewer


def _open(viewer, path):
    # No plugin named: napari picks the reader from the file name, as when a file is dropped on the window.
    return viewer.open(str(path), plugin=None)


def test_every_qupath_drawing_tool(slide, qupath_dir):
    shapes, points = _open(slide, qupath_dir / "napari-geojson_qp_all_shapes.geojson")
    assert isinstance(shapes, Shapes) and isinstance(points, Points)
    # rectangle, ellipse (a 0.3 polygon: no isEllipse flag), polygon, line, polyline; 3 + 1 points.
    assert shapes.shape_type == ["rectangle", "polygon", "polygon", "line", "path"]
    assert len(points.data) == 4
    assert list(shapes.features["class"]) == ["Unclassified"] * 5
    # Level-0 (x, y) pixels land on the slide's µm: the rectangle spans x 298–613, y 320–609.
    np.testing.assert_allclose(shapes.scale, [MPP, MPP])
    np.testing.assert_allclose(shapes.data[0].min(axis=0), [320, 298])
    np.testing.assert_allclose(shapes.data[0].max(axis=0), [609, 613])


def test_classified_annotations_keep_classes_as_colours(slide, qupath_dir):
    (shapes,) = _open(slide, qupath_dir / "histoqc_geojson_example.json")
    assert set(shapes.features["class"]) == {"Tumor", "Invborder"}
    tumour = shapes.edge_color[list(shapes.features["class"]).index("Tumor")]
    np.testing.assert_allclose(tumour[:3], np.array([200, 0, 0]) / 255)  # QuPath's class colour


@pytest.mark.parametrize(
    ("name", "count"), [("luna_test_cell_detections.geojson", 2), ("luna_test_object_classification.geojson", 1)]
)
def test_cells_become_points_with_measurements(slide, qupath_dir, name, count):
    (cells,) = _open(slide, qupath_dir / name)
    objects = read_qupath(qupath_dir / name)
    assert isinstance(cells, Points) and len(cells.data) == count
    assert list(cells.features["class"]) == [o.classification for o in objects] == ["Other"] * count
    assert list(cells.features["object_type"]) == ["cell"] * count
    assert len(objects[0].measurements) == 54
    for key, value in objects[0].measurements.items():
        assert cells.features[key][0] == pytest.approx(value, nan_ok=True)
    np.testing.assert_allclose(cells.face_color[0, :3], np.array(objects[0].color) / 255)
    # At the nucleus centroid, inside its outline.
    ring = np.asarray(objects[0].nucleus_geometry["coordinates"][0])[:, ::-1]
    assert (ring.min(axis=0) <= cells.data[0]).all() and (cells.data[0] <= ring.max(axis=0)).all()


def test_other_files_are_left_to_other_readers(tmp_path):
    from napari_hmgdm._qupath_reader import get_geojson_reader

    assert get_geojson_reader(str(tmp_path / "a.geojson")) is not None
    assert get_geojson_reader(str(tmp_path / "a.svs")) is None
    settings = tmp_path / "settings.json"
    settings.write_text('{"theme": "dark"}')
    assert get_geojson_reader(str(settings)) is None
    exported = tmp_path / "qupath02.json"
    exported.write_text('[{"type": "Feature", "geometry": {"type": "Point", "coordinates": [1, 2]}}]')
    assert get_geojson_reader(str(exported)) is not None


def test_ellipse_round_trip_keeps_is_ellipse(make_napari_viewer, tmp_path):
    viewer = make_napari_viewer()
    box = np.array([[10.0, 20.0], [10.0, 90.0], [50.0, 90.0], [50.0, 20.0]])
    drawn = viewer.add_shapes([box, box + 100], shape_type=["ellipse", "rectangle"], name="drawn")
    drawn.features = {"name": ["oval", "box"], "class": ["Tumor", "Stroma"]}
    first = tmp_path / "first.geojson"
    viewer.layers.selection = {drawn}
    viewer.layers.save(str(first), selected=True, plugin="napari-hmgdm")
    written = json.loads(first.read_text())["features"]
    assert written[0]["geometry"]["isEllipse"] is True and "isEllipse" not in written[1]["geometry"]
    assert [f["properties"]["classification"]["name"] for f in written] == ["Tumor", "Stroma"]

    (again,) = viewer.open(str(first), plugin=None)
    assert again.shape_type == ["ellipse", "rectangle"]
    assert list(again.features["name"]) == ["oval", "box"] and list(again.features["class"]) == ["Tumor", "Stroma"]
    np.testing.assert_allclose(np.sort(again.data[0], axis=0), np.sort(box, axis=0), atol=0.02)
    second = tmp_path / "second.geojson"
    viewer.layers.selection = {again}
    viewer.layers.save(str(second), selected=True, plugin="napari-hmgdm")
    assert [o.geometry.get("isEllipse", False) for o in read_qupath(second)] == [True, False]
