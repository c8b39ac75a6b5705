"""The "Train on selected region" widget: states, progress, cancel, checkpoints, settings."""

import json
import re
import time

import dask.array as da
import numpy as np
import pytest
from napari.layers import Labels
from scipy import ndimage

from hmgdm_core.diffusion import DiffusionConfig
from hmgdm_core.train import load_checkpoint
from hmgdm_core.vae import VAEFinished
from napari_hmgdm._widgets.train_widget import LATENT, RAW, SCRATCH, TrainState, TrainWidget

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
    widget.start_from.value = SCRATCH  # these tests train the form's small network (the bundled start has its own)
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
    assert re.search(r"ETA (\d+ min )?\d+ s", widget.status.value), widget.status.value
    widget.train_button.native.click()
    pressed = time.monotonic()
    assert widget.state is TrainState.CANCELLING
    assert widget.train_button.text == "Cancelling…" and not widget.train_button.enabled
    qtbot.waitUntil(lambda: widget.state is TrainState.STOPPED, timeout=60_000)
    latency = time.monotonic() - pressed
    # Loose: the run stops after its current step (a few ms here) and writes a checkpoint; the
    # machine running the tests may be shared.
    assert latency < 5.0, f"cancel took {latency:.1f} s"
    qtbot.waitUntil(lambda: widget._worker is None, timeout=10_000)
    assert widget.checkpoint is not None and widget.checkpoint.exists()
    checkpoint = load_checkpoint(widget.checkpoint)
    assert 3 <= checkpoint.meta["step"] < 400
    assert checkpoint.config.model.hidden_dim == 32
    assert len(widget.loss_plot.steps) >= 3
    # The default recipe has no KL term: the plot still shows the KL and says it is not in the total.
    assert widget.pretrain_config().train.loss.kl == 0
    assert "KL (not in total)" in [t.get_text() for t in widget.loss_plot.axes.get_legend().get_texts()]
    # Train now offers the choice explicitly: Resume (same run folder, from the checkpoint) or New run.
    assert widget.train_button.text == "Resume" and widget.train_button.enabled
    assert widget.new_run_button.visible and "Resume" in widget.status.value
    resumed, fresh = widget.make_request(resume=True), widget.make_request(resume=False)
    assert resumed.resume == widget.checkpoint and resumed.out_dir == widget.checkpoint.parent
    assert fresh.resume is None and fresh.out_dir != widget.checkpoint.parent
    widget.train_settings.max_steps.value = str(checkpoint.meta["step"] + 2)
    widget.new_run_button.native.click()
    assert widget.state is TrainState.RUNNING and not widget.new_run_button.visible
    qtbot.waitUntil(lambda: widget.state is TrainState.DONE, timeout=120_000)
    qtbot.waitUntil(lambda: widget._worker is None, timeout=10_000)
    assert widget.checkpoint.parent != resumed.out_dir  # a new run folder, from step 0
    assert widget.train_button.text == "Train" and not widget.new_run_button.visible


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
    view = widget.mask_schedule
    view.button.native.click()
    nodes, edges = widget._viewer.layers["mask schedule nodes"], widget._viewer.layers["mask schedule edges"]
    graph = widget.dataset[0]
    steps = len(view.schedule.steps)
    assert steps >= 2 and len(nodes.data) == steps * graph.num_nodes
    assert len(edges.data) == steps * graph.edge_index.shape[1]
    per_step = nodes.features["role"].to_numpy().reshape(steps, graph.num_nodes)
    assert ((per_step == "target").sum(axis=1) == int(0.6 * graph.num_nodes)).all()
    widget._viewer.dims.set_current_step(0, 1)
    assert f"step {view.schedule.steps[1]}: t = {view.schedule.t[1]}" in view.info.value
    # On screen: cyan condition nodes and magenta target nodes over the slide.
    for layer in widget._viewer.layers:
        layer.visible = layer.name in ("CMU-1-Small-Region.svs", "mask schedule nodes")
    graph_pos = graph.pos.numpy().mean(axis=0) * 0.499
    widget._viewer.scene.camera.center = tuple(graph_pos)
    widget._viewer.scene.camera.zoom = 6.0
    shot = widget._viewer.screenshot(canvas_only=True, flash=False)[..., :3].astype(int)
    magenta = (shot[..., 0] > 200) & (shot[..., 1] < 90) & (shot[..., 2] > 170)
    cyan = (shot[..., 0] < 60) & (shot[..., 1] > 190) & (shot[..., 2] > 200)
    assert magenta.sum() > 20 and cyan.sum() > 20

    _check_role_labels(widget, graph)

    # Loading the checkpoint makes the next run resume it.
    again.load_checkpoint(saved)
    assert again.checkpoint == saved and "step 6" in again.status.value


def test_errors_are_reported_not_raised(widget):
    widget._viewer.layers.remove(widget.picker.shapes.value)
    widget.train_button.native.click()
    assert widget.state is TrainState.IDLE
    assert "Draw a rectangle" in widget.status.value
    with pytest.raises(Exception, match="No checkpoint yet"):
        widget.save_checkpoint(widget.out_dir.value / "x.pt")
    widget.mask_schedule.button.native.click()  # nothing recorded yet: said under the button, no layer added
    assert "Train first" in widget.mask_schedule.info.value
    assert not any(layer.name.startswith("mask schedule") for layer in widget._viewer.layers)


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


def _check_role_labels(widget, graph):
    """The entity Labels of the mask schedule: aligned with the points, recoloured by the dims slider."""
    viewer, schedule = widget._viewer, widget.mask_schedule.schedule
    entities, nodes = viewer.layers["mask schedule entities"], viewer.layers["mask schedule nodes"]
    labels = widget.mask_schedule.followed_labels.labels
    assert isinstance(entities, Labels) and entities.data.shape == (len(schedule.steps), *labels.shape)
    assert isinstance(entities.data, da.Array) and entities.data.chunksize == (1, *labels.shape)  # one frame at a time
    entity_id = graph.entity_id.numpy()
    # Each node's point (world µm) sits on its entity's centroid in the Labels layer, within a read pixel.
    n = graph.num_nodes
    for node in range(0, n, max(1, n // 5)):
        rows, cols = np.nonzero(labels == entity_id[node])
        centroid = entities.data_to_world((0, rows.mean(), cols.mean()))[-2:]
        point = nodes.data_to_world(nodes.data[node])[-2:]
        np.testing.assert_allclose(centroid, point, atol=graph.region["mpp"])
    # An entity whose role differs between the first two steps, seen at a pixel deep inside it.
    changed = np.flatnonzero(schedule.node_role[0] != schedule.node_role[1])
    assert len(changed)
    depth = [ndimage.distance_transform_edt(labels == entity_id[k]).max() for k in changed]
    node = changed[int(np.argmax(depth))]
    inside = np.unravel_index(np.argmax(ndimage.distance_transform_edt(labels == entity_id[node])), labels.shape)
    for layer in viewer.layers:
        layer.visible = layer is entities
    entities.opacity = 1.0
    viewer.scene.camera.center = tuple(entities.data_to_world((0, *inside))[-2:])
    viewer.scene.camera.zoom = 8.0
    expected = {0: (0, 229, 255), 1: (255, 43, 214), 2: (127, 127, 127)}  # condition, target, hidden
    for step in (0, 1):
        viewer.dims.set_current_step(0, step)
        shot = viewer.screenshot(canvas_only=True, flash=False)[..., :3].astype(int)
        h, w = shot.shape[:2]
        centre = shot[h // 2 - 1 : h // 2 + 2, w // 2 - 1 : w // 2 + 2].reshape(-1, 3)
        colour = expected[int(schedule.node_role[step][node])]
        assert np.abs(centre - colour).max() <= 25, (step, centre, colour)


def test_entity_vae_option(widget, latent_checkpoint, tmp_path):
    widget.features.value = LATENT
    widget.vae_settings.steps.value = 7
    request = widget.make_request()
    assert request.vae_config.steps == 7 and request.graph_config.window == request.vae_config.window
    widget.save_settings()
    again = TrainWidget(widget._viewer, settings_path=tmp_path / "settings.json")
    assert again.features.value == LATENT and again.vae_settings.steps.value == 7
    widget.features.value = RAW
    assert widget.make_request().vae_config is None
    # What a VAE run yields, as the widget shows it: VAE progress, then training, then the mask schedule.
    _, items = latent_checkpoint
    widget.mask_schedule.follow(DiffusionConfig())
    for item in items:
        widget._on_yielded(item)
        if isinstance(item, VAEFinished):
            assert "Entity VAE saved" in widget.status.value and widget.progress.value == 3
    assert widget.state is TrainState.DONE
    widget.mask_schedule.button.native.click()
    entities = widget._viewer.layers["mask schedule entities"]
    assert entities.data.shape == (len(widget.mask_schedule.schedule.steps), 64, 64)
