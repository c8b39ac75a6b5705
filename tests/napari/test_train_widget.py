"""The "Train on selected region" widget: states, progress, cancel, checkpoints, settings."""

import json

import pytest

from hmgdm_core.train import load_checkpoint
from napari_hmgdm._widgets.train_widget import TrainState, TrainWidget

# A network small enough for a few CPU steps per second; every other setting is the widget's.
SMALL_MODEL = {"embed_dim": 64, "hidden_dim": 32, "latent_mlp_dim": 16, "time_mlp_dim": 64, "block_mlp_dim": 32}


@pytest.fixture
def widget(slide_viewer, tmp_path):
    viewer, image, shapes = slide_viewer
    widget = TrainWidget(viewer, settings_path=tmp_path / "settings.json")
    viewer.window.add_dock_widget(widget)
    widget.picker.image.value = image
    widget.picker.shapes.value = shapes
    widget.picker.mpp.value = 1.0
    widget.patch_size.value = 64  # 512² level-0 px at 1 µm/px -> 255² px -> 9 patches
    widget.out_dir.value = str(tmp_path / "runs")
    for name, value in SMALL_MODEL.items():
        getattr(widget.model_settings, name).value = value
    widget.train_settings.batch_size.value = 4
    widget.train_settings.device.value = "cpu"
    return widget


def test_train_cancel_keeps_a_loadable_checkpoint(qtbot, widget):
    widget.train_settings.max_steps.value = "400"
    widget.train_button.native.click()
    assert widget.state is TrainState.RUNNING and widget.train_button.text == "Cancel"
    qtbot.waitUntil(lambda: widget.progress.value >= 3, timeout=120_000)
    assert widget.progress.max == 400
    assert "ETA" in widget.status.value
    widget.train_button.native.click()
    assert widget.state is TrainState.CANCELLING
    assert widget.train_button.text == "Cancelling…" and not widget.train_button.enabled
    qtbot.waitUntil(lambda: widget.state is TrainState.STOPPED, timeout=60_000)
    qtbot.waitUntil(lambda: widget._worker is None, timeout=10_000)
    assert widget.train_button.text == "Train" and widget.train_button.enabled
    assert widget.checkpoint is not None and widget.checkpoint.exists()
    checkpoint = load_checkpoint(widget.checkpoint)
    assert 3 <= checkpoint.meta["step"] < 400
    assert checkpoint.config.model.hidden_dim == 32
    assert len(widget.loss_plot.steps) >= 3


def test_train_to_the_end_then_save_and_remember_settings(qtbot, widget, tmp_path):
    widget.train_settings.max_steps.value = "6"
    widget.train_button.native.click()
    qtbot.waitUntil(lambda: widget.state is TrainState.DONE, timeout=120_000)
    qtbot.waitUntil(lambda: widget._worker is None, timeout=10_000)
    assert widget.progress.value == 6
    rows, cols = widget.picker.selection()[2].shape
    assert widget.dataset is not None and len(widget.dataset) == (rows // 64) * (cols // 64)
    saved = widget.save_checkpoint(tmp_path / "model.pt")
    assert load_checkpoint(saved).meta["step"] == 6

    settings = json.loads((tmp_path / "settings.json").read_text())
    assert settings["patch_size"] == 64
    again = TrainWidget(widget._viewer, settings_path=tmp_path / "settings.json")
    assert again.patch_size.value == 64
    assert again.train_settings.max_steps.value == "6"
    assert again.model_settings.hidden_dim.value == 32

    # The mask schedule of the first patch graph, one frame per recorded step on the dims slider.
    widget.show_mask_schedule()
    nodes, edges = widget._viewer.layers["mask schedule nodes"], widget._viewer.layers["mask schedule edges"]
    graph = widget.dataset[0]
    steps = len(widget._schedule.steps)
    assert steps >= 2 and len(nodes.data) == steps * graph.num_nodes
    assert len(edges.data) == steps * graph.edge_index.shape[1]
    per_step = nodes.features["role"].to_numpy().reshape(steps, graph.num_nodes)
    assert ((per_step == "target").sum(axis=1) == int(0.6 * graph.num_nodes)).all()
    widget._viewer.dims.set_current_step(0, 1)
    assert f"step {widget._schedule.steps[1]}: t = {widget._schedule.t[1]}" in widget.schedule_info.value
    # On screen: cyan condition nodes and magenta target nodes over the slide.
    for layer in widget._viewer.layers:
        layer.visible = layer.name in ("CMU-1-Small-Region.svs", "mask schedule nodes")
    graph_pos = graph.pos.numpy().mean(axis=0) * 0.499
    widget._viewer.camera.center = tuple(graph_pos)
    widget._viewer.camera.zoom = 6.0
    shot = widget._viewer.screenshot(canvas_only=True, flash=False)[..., :3].astype(int)
    magenta = (shot[..., 0] > 200) & (shot[..., 1] < 90) & (shot[..., 2] > 170)
    cyan = (shot[..., 0] < 60) & (shot[..., 1] > 190) & (shot[..., 2] > 200)
    assert magenta.sum() > 20 and cyan.sum() > 20

    # Loading the checkpoint makes the next run resume it.
    again.load_checkpoint(saved)
    assert again.checkpoint == saved and "step 6" in again.status.value


def test_errors_are_reported_not_raised(widget):
    widget.picker.shapes.value = None
    widget.train_button.native.click()
    assert widget.state is TrainState.IDLE
    assert "Draw a rectangle" in widget.status.value
    with pytest.raises(Exception, match="No checkpoint yet"):
        widget.save_checkpoint(widget.out_dir.value / "x.pt")


def test_closing_the_widget_stops_the_run(qtbot, widget):
    widget.train_settings.max_steps.value = "400"
    widget.train_button.native.click()
    qtbot.waitUntil(lambda: widget.progress.value >= 1, timeout=120_000)
    token = widget._token
    run_dir = widget.out_dir.value
    widget.native.deleteLater()  # what closing the viewer does to its dock widgets
    qtbot.waitUntil(lambda: token.cancelled, timeout=10_000)
    # The loop notices at its next step and writes its checkpoint before stopping.
    qtbot.waitUntil(lambda: any(run_dir.glob("run-*/checkpoint-*.pt")), timeout=60_000)
