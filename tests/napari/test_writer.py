"""The npe2 writers in a real viewer: overlays saved as QuPath GeoJSON land on the slide's level-0 pixels."""

import math
import re

import numpy as np
import pytest
import tifffile
from napari.layers import Layer

from hmgdm_core.entities import nuclei_from_geojson
from hmgdm_core.errors import InputError
from hmgdm_core.io import Region, open_slide
from hmgdm_core.io.qupath import read_qupath, rois
from napari_hmgdm._layers import entity_labels_layer_data, patch_layer_data
from napari_hmgdm._widgets.graph_widget import GraphWidget
from napari_hmgdm._writer import layer_features


def _save(viewer, layers, path):
    viewer.layers.selection = set(layers)
    return viewer.layers.save(str(path), selected=True, plugin="napari-hmgdm")


def _discs(shape, count, seed=0):
    """Separate discs (no pinches), ids 1..count."""
    rng = np.random.default_rng(seed)
    labels = np.zeros(shape, np.int32)
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    for k, (cy, cx) in enumerate(rng.permutation([(y, x) for y in range(12, shape[0] - 8, 24)
                                                  for x in range(12, shape[1] - 8, 24)])[:count], 1):  # fmt: skip
        labels[(yy - cy) ** 2 + (xx - cx) ** 2 <= rng.integers(3, 9) ** 2] = k
    return labels


def test_entity_labels_round_trip_through_qupath_geojson(make_napari_viewer, tmp_path):
    viewer = make_napari_viewer()
    region = Region(1500, 800, 512, 448, base_mpp=0.499, mpp=0.998)  # read at half resolution
    labels = _discs(region.shape, 40)
    layer = viewer.add_layer(Layer.create(*entity_labels_layer_data(labels, region.to_dict(), "nuclei")))
    (written,) = _save(viewer, [layer], tmp_path / "nuclei.geojson")
    objects = read_qupath(written)
    assert len(objects) == 40 and {o.object_type for o in objects} == {"detection"}
    assert sorted(int(o.name) for o in objects) == list(range(1, 41))
    again = nuclei_from_geojson(written, np.zeros((*region.shape, 3), np.uint8), region)
    assert again.n == 40
    np.testing.assert_array_equal(again.labels > 0, labels > 0)  # pixel-edge outlines refill exactly
    for obj in objects[:10]:  # level-0 centre of the outline = level-0 centre of the entity's pixels
        ring = np.asarray(obj.geometry["coordinates"][0])[:-1]
        yx = region.to_level0(np.argwhere(labels == int(obj.name)))
        np.testing.assert_allclose(ring.mean(axis=0)[::-1], yx.mean(axis=0), atol=region.downsample)


def test_graph_widget_overlays_save_to_one_qupath_file(qtbot, slide_viewer, roi_box, tmp_path):
    viewer, image, shapes = slide_viewer
    widget = GraphWidget(viewer)
    viewer.window.add_dock_widget(widget)
    widget.picker.image.value, widget.picker.shapes.value, widget.picker.mpp.value = image, shapes, 0.5
    widget.run_button.native.click()
    qtbot.waitUntil(lambda: not widget.running, timeout=120_000)
    graph = widget.last_result.graph
    labels, points, vectors = (viewer.layers[f"nuclei {name}"] for name in ("entities", "nodes", "edges"))
    points.features.loc[0, "area_um2"] = np.nan  # a missing measurement
    (written,) = _save(viewer, [labels, points, vectors, shapes], tmp_path / "graph.geojson")

    objects = read_qupath(written, image_shape=open_slide(image.metadata["hmgdm_path"]).shape)
    cells = [o for o in objects if o.object_type == "detection" and o.geometry["type"] == "Polygon"]
    (edges,) = [o for o in objects if o.geometry["type"] == "MultiLineString"]
    (roi,) = rois(objects)
    # One object per nucleus: its outline, carrying the node's measurements and its centroid; no extra point.
    assert not [o for o in objects if o.geometry["type"] == "Point"]
    assert len(cells) == len(np.unique(labels.data)) - 1 == graph.num_nodes
    by_name = {int(o.name): o for o in cells}
    assert sorted(by_name) == sorted(graph.entity_id.tolist())
    first, second = (by_name[int(graph.entity_id[k])] for k in (0, 1))
    assert math.isnan(first.measurements["area_um2"])
    assert second.measurements["area_um2"] == pytest.approx(float(points.features["area_um2"][1]))
    assert set(points.features.columns.drop("entity_id")) <= set(second.measurements)
    for k in range(0, graph.num_nodes, max(1, graph.num_nodes // 10)):
        cell = by_name[int(graph.entity_id[k])]
        centre_um = np.array([cell.measurements["Centroid Y µm"], cell.measurements["Centroid X µm"]])
        np.testing.assert_allclose(centre_um / image.metadata["hmgdm_mpp"], graph.pos.numpy()[k], atol=1.5)
    lines = np.asarray(edges.geometry["coordinates"])
    assert edges.locked and len(lines) == len(vectors.data)
    src, dst = vectors.features["source"].to_numpy(), vectors.features["target"].to_numpy()
    np.testing.assert_allclose(lines[:, 0, ::-1], graph.pos.numpy()[src], atol=0.01)
    np.testing.assert_allclose(lines[:, 1, ::-1], graph.pos.numpy()[dst], atol=0.01)
    # The user-drawn rectangle (no region metadata) lands on level-0 pixels through the slide's mpp.
    (y, x, h, w), _ = roi_box
    ring = np.asarray(roi.geometry["coordinates"][0])
    np.testing.assert_allclose(ring.min(axis=0), [x - 0.5, y - 0.5], atol=0.01)
    np.testing.assert_allclose(ring.max(axis=0), [x + w - 0.5, y + h - 0.5], atol=0.01)
    # Each nucleus's outline holds its node.
    by_id = {int(o.name): np.asarray(o.geometry["coordinates"][0]) for o in cells}
    for k in range(0, graph.num_nodes, max(1, graph.num_nodes // 10)):
        ring = by_id[int(graph.entity_id[k])]
        px, py = graph.pos.numpy()[k, ::-1]
        assert ring[:, 0].min() - 1 <= px <= ring[:, 0].max() + 1 and ring[:, 1].min() - 1 <= py <= ring[:, 1].max() + 1


def test_heatmap_image_layer_saves_as_pyramidal_ome_tiff(make_napari_viewer, tmp_path):
    viewer = make_napari_viewer()
    region = Region(1000, 500, 1024, 768, base_mpp=0.25, mpp=1.0)
    heat = np.random.default_rng(1).random(region.shape, dtype=np.float32)
    layer = viewer.add_layer(Layer.create(*patch_layer_data(heat, region.to_dict(), "tumour heatmap", "image")))
    (written,) = _save(viewer, [layer], tmp_path / "heat.ome.tif")
    with tifffile.TiffFile(written) as tif:
        np.testing.assert_array_equal(tif.series[0].asarray(), heat)
        size = re.search(r'PhysicalSizeX="([0-9.eE+-]+)"', tif.ome_metadata)
    assert float(size.group(1)) == pytest.approx(region.mpp)


def test_layers_without_a_slide_need_pixel_units(make_napari_viewer):
    viewer = make_napari_viewer()
    box = np.array([[10.0, 20.0], [10.0, 60.0], [30.0, 60.0], [30.0, 20.0]])
    in_um = viewer.add_shapes([box], shape_type="polygon", units=("µm", "µm"))
    with pytest.raises(InputError, match="open the slide"):
        layer_features(*in_um.as_layer_data_tuple())
    in_px = viewer.add_shapes([box], shape_type="polygon", scale=(2.0, 2.0))
    (feature,) = layer_features(*in_px.as_layer_data_tuple())
    assert feature["geometry"]["coordinates"][0][:2] == [[40.0, 20.0], [120.0, 20.0]]  # (x, y) = 2 × data
