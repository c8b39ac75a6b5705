"""The widgets' region picker follows what the user draws, in a real viewer (Xvfb)."""

import numpy as np

from napari_hmgdm._widgets.graph_widget import GraphWidget
from napari_hmgdm._widgets.train_widget import TrainWidget

MPP = 0.499


def _rectangle(y, x, h, w):
    return np.array([[y - 0.5, x - 0.5], [y + h - 0.5, x + w - 0.5]]) * MPP


def _open_slide(viewer, sample_svs):
    (image,) = viewer.open(str(sample_svs), plugin="napari-hmgdm")
    return image


def test_rectangle_drawn_after_the_widget_opens_is_used(make_napari_viewer, sample_svs):
    viewer = make_napari_viewer(show=True)
    image = _open_slide(viewer, sample_svs)
    widget = GraphWidget(viewer)
    viewer.window.add_dock_widget(widget)
    assert widget.picker.image.value is image and widget.picker.shapes.value is None
    assert "Draw a rectangle" in widget.picker.using.value
    shapes = viewer.add_shapes(name="my drawing", units=("µm", "µm"))  # the layer-list button: an empty layer
    assert widget.picker.shapes.value is shapes
    shapes.add_rectangles([_rectangle(1500, 800, 200, 300)])  # then the rectangle tool
    # napari's default opaque white fill would hide the tissue in the region: only the outline is drawn.
    assert np.asarray(shapes.face_color)[0, 3] == 0
    assert "rectangle (1 of 1) in 'my drawing'" in widget.picker.using.value
    _, _, region, polygon = widget.picker.selection()
    assert (region.y, region.x, region.height, region.width) == (1500, 800, 200, 300) and polygon is None
    # A second shape, then selecting the first: the selected one is used and named.
    shapes.add_polygons([_rectangle(100, 100, 50, 50)[[0, 1, 0]] + [[0, 0], [0, 0], [20, 0]]])
    assert "last drawn polygon (2 of 2)" in widget.picker.using.value
    shapes.selected_data = {0}
    shapes.refresh()
    _, _, region, _ = widget.picker.selection()
    assert (region.y, region.x) == (1500, 800)
    assert "selected rectangle (1 of 2)" in widget.picker.using.value


def test_rectangle_drawn_before_the_widget_opens_is_used(make_napari_viewer, sample_svs):
    viewer = make_napari_viewer(show=True)
    _open_slide(viewer, sample_svs)
    older = viewer.add_shapes([_rectangle(100, 100, 64, 64)], shape_type="rectangle", name="older")
    older.face_color = "orange"  # a fill the user chose stays
    newer = viewer.add_shapes([_rectangle(1400, 700, 128, 96)], shape_type="rectangle", name="newer")
    widgets = [GraphWidget(viewer), TrainWidget(viewer)]
    for widget in widgets:
        viewer.window.add_dock_widget(widget)
        assert widget.picker.shapes.value is newer
        _, _, region, _ = widget.picker.selection()
        assert (region.y, region.x, region.height, region.width) == (1400, 700, 128, 96)
    viewer.layers.selection.active = older  # clicking a layer in the layer list switches to it
    for widget in widgets:
        assert widget.picker.shapes.value is older
        assert "in 'older'" in widget.picker.using.value
    assert np.asarray(older.face_color)[0, 3] == 1 and np.asarray(newer.face_color)[0, 3] == 0


def test_removed_layer_gives_way_to_the_next(qtbot, make_napari_viewer, sample_svs):
    viewer = make_napari_viewer(show=True)
    _open_slide(viewer, sample_svs)
    first = viewer.add_shapes([_rectangle(1500, 800, 100, 100)], shape_type="rectangle", name="first")
    second = viewer.add_shapes([_rectangle(1000, 600, 100, 100)], shape_type="rectangle", name="second")
    widget = GraphWidget(viewer)
    viewer.window.add_dock_widget(widget)
    assert widget.picker.shapes.value is second
    viewer.layers.remove(second)
    assert widget.picker.shapes.value is first
    assert [name for name, _ in widget.picker._shapes_choices()] == ["first"]
    viewer.layers.remove(first)
    assert widget.picker.shapes.value is None
    widget.run_button.native.click()
    assert not widget.running and "Draw a rectangle" in widget.status.value and widget.status.is_error
    # Drawing again clears the stale error: the next run's message replaces it, in plain text.
    viewer.add_shapes([_rectangle(1500, 800, 64, 64)], shape_type="rectangle", name="again")
    widget.run_button.native.click()
    assert widget.running and not widget.status.is_error and "Building" in widget.status.value
    qtbot.waitUntil(lambda: not widget.running, timeout=120_000)
    assert not widget.status.is_error and widget.last_result is not None
    viewer.layers.remove(viewer.layers[0])  # the slide too
    widget.run_button.native.click()
    assert "Open a slide first" in widget.status.value
