"""The entity graph widget in a real viewer: layers, sizes, alignment with the slide, screenshot."""

import numpy as np
import pytest
from napari.layers import Labels, Points, Vectors

from napari_hmgdm._widgets.graph_widget import GraphWidget


def _build(qtbot, viewer, image, shapes, kind="nuclei", mpp=0.5):
    widget = GraphWidget(viewer)
    viewer.window.add_dock_widget(widget)
    widget.picker.image.value = image
    widget.picker.shapes.value = shapes
    widget.picker.mpp.value = mpp
    widget.settings.kind.value = kind
    widget.run_button.native.click()
    assert widget.running and widget.run_button.text == "Cancel"
    qtbot.waitUntil(lambda: not widget.running, timeout=120_000)
    assert widget.last_result is not None, widget.status.value
    return widget


@pytest.mark.parametrize("kind", ["nuclei", "tissue"])
def test_build_graph_from_rectangle(qtbot, slide_viewer, roi_box, kind):
    (y, x, h, w), mpp = roi_box
    viewer, image, shapes = slide_viewer
    widget = _build(qtbot, viewer, image, shapes, kind=kind)
    graph = widget.last_result.graph
    labels, points, vectors = (viewer.layers[f"{kind} {name}"] for name in ("entities", "nodes", "edges"))
    assert isinstance(labels, Labels) and isinstance(points, Points) and isinstance(vectors, Vectors)
    assert graph.num_nodes > 20
    assert len(points.data) == graph.num_nodes
    assert len(vectors.data) == graph.edge_index.shape[1] // 2
    assert {"entity_id", "area_um2", "od_h"} <= set(points.features.columns)
    assert "nodes" in widget.status.value

    # Nodes lie inside the drawn box (world µm).
    world = np.array([points.data_to_world(p) for p in points.data])
    assert (world[:, 0] >= (y - 0.5) * mpp).all() and (world[:, 0] <= (y + h - 0.5) * mpp).all()
    assert (world[:, 1] >= (x - 0.5) * mpp).all() and (world[:, 1] <= (x + w - 0.5) * mpp).all()
    # Each node point falls on its own entity in the Labels layer, and on the slide where pos says.
    ids = graph.entity_id.numpy()
    for i in range(0, graph.num_nodes, max(1, graph.num_nodes // 25)):
        assert labels.get_value(world[i], world=True) == ids[i]
        np.testing.assert_allclose(image.world_to_data(world[i])[-2:], graph.pos[i].numpy(), atol=1e-3)
    # Each vector starts at its source node and ends at its target node.
    src, dst = vectors.features["source"].to_numpy(), vectors.features["target"].to_numpy()
    np.testing.assert_allclose(vectors.data[:, 0], points.data[src], atol=1e-4)
    np.testing.assert_allclose(vectors.data[:, 0] + vectors.data[:, 1], points.data[dst], atol=1e-4)


def test_polygon_keeps_only_nodes_inside(qtbot, slide_viewer, roi_box):
    viewer, image, _ = slide_viewer
    (y, x, h, w), mpp = roi_box
    triangle = np.array([[y, x], [y + h, x], [y + h, x + w]], dtype=float) * mpp
    poly_layer = viewer.add_shapes([triangle], shape_type="polygon", name="triangle")
    widget = _build(qtbot, viewer, image, poly_layer)
    pos = widget.last_result.graph.pos.numpy()
    rel_y, rel_x = pos[:, 0] - y, pos[:, 1] - x
    assert len(pos) > 5
    assert (rel_x <= rel_y + 1).all()  # below the diagonal of the triangle
    kept = set(widget.last_result.graph.entity_id.tolist())
    assert set(np.unique(widget.last_result.labels)) - {0} == kept


def test_no_shape_gives_a_clear_message(slide_viewer):
    viewer, image, _ = slide_viewer
    empty = viewer.add_shapes(name="empty")
    widget = GraphWidget(viewer)
    widget.picker.image.value = image
    widget.picker.shapes.value = empty
    widget.run_button.native.click()
    assert not widget.running
    assert "Draw a rectangle" in widget.status.value


def test_screenshot_shows_the_graph_overlay(qtbot, slide_viewer, roi_box):
    viewer, image, shapes = slide_viewer
    _build(qtbot, viewer, image, shapes)
    shapes.visible = False
    viewer.layers["nuclei entities"].visible = False
    (y, x, h, w), mpp = roi_box
    viewer.scene.camera.center = ((y + h / 2) * mpp, (x + w / 2) * mpp)
    viewer.scene.camera.zoom = 2.0
    shot = viewer.screenshot(canvas_only=True, flash=False)[..., :3].astype(int)
    assert shot.std() > 10
    yellow = (shot[..., 0] > 200) & (shot[..., 1] > 170) & (shot[..., 1] < 240) & (shot[..., 2] < 80)
    assert yellow.sum() > 200, "edges (#ffd200) not visible"
    # viridis node colours: green-dominant or blue-purple-dominant dots that H&E does not have.
    green = (shot[..., 1] > shot[..., 0] + 40) & (shot[..., 1] > shot[..., 2])
    assert green.sum() > 20, "nodes not visible"


def test_field_of_view_region(qtbot, slide_viewer, roi_box):
    from napari_hmgdm._region import region_from_view

    viewer, image, _ = slide_viewer
    (y, x, h, w), mpp = roi_box
    centre = ((y + h / 2) * mpp, (x + w / 2) * mpp)
    viewer.scene.camera.center = centre
    viewer.scene.camera.zoom = 3.0
    qtbot.waitUntil(lambda: image.corner_pixels[1, -2] - image.corner_pixels[0, -2] < 1000, timeout=10_000)
    region = region_from_view(image, mpp=None)
    assert region.y <= y + h / 2 <= region.y + region.height
    assert region.x <= x + w / 2 <= region.x + region.width
    # The canvas shows a few hundred µm at zoom 3; the region is that view, not the whole slide.
    assert region.height < 1500 and region.width < 1500
