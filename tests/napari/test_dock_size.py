"""All four widgets docked together fit a 1,000-px-high screen; each body scrolls when the dock is short."""

from qtpy.QtWidgets import QApplication

from napari_hmgdm._widgets.graph_widget import GraphWidget
from napari_hmgdm._widgets.patch_widget import PatchWidget
from napari_hmgdm._widgets.reconstruction_widget import ReconstructionWidget
from napari_hmgdm._widgets.train_widget import TrainWidget

SCREEN_HEIGHT = 1000


def test_all_widgets_docked_fit_a_1000_px_screen(make_napari_viewer, sample_svs, tmp_path):
    viewer = make_napari_viewer(show=True)
    window = viewer.window._qt_window
    window.resize(1600, SCREEN_HEIGHT)
    viewer.open(str(sample_svs), plugin="napari-hmgdm")
    widgets = [
        GraphWidget(viewer),
        TrainWidget(viewer, settings_path=tmp_path / "settings.json"),
        PatchWidget(viewer),
        ReconstructionWidget(viewer),
    ]
    for widget in widgets:
        viewer.window.add_dock_widget(widget, name=type(widget).__name__, area="right")
    QApplication.processEvents()
    # What the window needs at least: before, the docks' forms forced ~3,200 px.
    assert window.minimumSizeHint().height() <= SCREEN_HEIGHT
    assert window.height() <= SCREEN_HEIGHT
    for widget in widgets:
        body = widget.body.native.sizeHint().height()
        # Essentials only (Advanced folded): each widget alone needs no scrolling on the screen...
        assert body <= 0.8 * SCREEN_HEIGHT, (type(widget).__name__, body)
        # ...and docked together, what does not fit scrolls instead of growing the window.
        assert widget.native.minimumSizeHint().height() < 150
    train = widgets[1]
    assert train.body.native.sizeHint().height() > train.scroll_area.viewport().height()
    assert train.scroll_area.verticalScrollBar().maximum() > 0
