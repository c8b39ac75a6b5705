"""Diffusion reconstructions in a real viewer: aligned original / noised / reconstructed layers, both modes."""

import shutil

import numpy as np
import pytest
import torch
from napari.layers import Image
from scipy import ndimage

from hmgdm_core.overlays import paint_windows
from napari_hmgdm._layers import heatmap_colormap
from napari_hmgdm._widgets.reconstruction_widget import ReconstructionWidget


def _widget(viewer, image, shapes, checkpoint):
    widget = ReconstructionWidget(viewer)
    viewer.window.add_dock_widget(widget)
    widget.picker.image.value = image
    widget.picker.shapes.value = shapes
    widget.checkpoint.value = str(checkpoint)
    return widget


@pytest.mark.parametrize("mode", ["raw windows", "entity VAE"])
def test_reconstruction_layers(qtbot, slide_viewer, checkpoint, latent_checkpoint, mode):
    viewer, image, shapes = slide_viewer
    widget = _widget(viewer, image, shapes, checkpoint if mode == "raw windows" else latent_checkpoint[0])
    widget.t.value = 900
    widget.run_button.native.click()
    assert widget.running and widget.run_button.text == "Cancel"
    qtbot.waitUntil(lambda: widget.result is not None and widget._worker is None, timeout=120_000)
    assert widget.run_button.text == "Reconstruct" and widget.progress.value == widget.progress.max == 3
    original, noised, rebuilt, error = (
        viewer.layers[n] for n in ("original", "noised (t=900)", "reconstructed (t=900)", "reconstruction error")
    )
    assert all(isinstance(layer, Image) for layer in (original, noised, rebuilt, error))
    result = widget.result
    assert result.mode == mode and mode in widget.status.value and rebuilt.metadata["hmgdm_mode"] == mode
    assert result.targets > 0 and result.centres.shape == (result.targets, 2)
    assert original.data.shape == noised.data.shape == rebuilt.data.shape
    # The views differ from the original only inside the target windows, and visibly there (t = 900).
    side = result.window
    footprint = paint_windows(original.data.shape[:2], result.centres, torch.ones(result.targets, 3, side, side))
    footprint = footprint.any(axis=-1)
    for view in (noised.data, rebuilt.data):
        changed = (view != original.data).any(axis=-1)
        assert not (changed & ~footprint).any()
        assert changed[footprint].mean() > 0.5
    assert np.abs(noised.data.astype(int) - original.data)[footprint].mean() > 5.0
    assert 0.01 < (~footprint).mean() < 0.999
    # The error map covers target entities (inside their windows) only.
    finite = np.isfinite(result.error)
    assert finite.any() and np.nanmin(result.error) >= 0 and not (finite & ~footprint).any()
    # Aligned with the slide: same scale and translate as any region overlay.
    np.testing.assert_allclose(original.scale, noised.scale)
    np.testing.assert_allclose(original.translate, rebuilt.translate)
    np.testing.assert_allclose(image.world_to_data(original.data_to_world((0, 0)))[-2:], [1500, 800], atol=1.0)
    if mode == "raw windows":
        _check_error_colours(viewer, error, result.error)


def _centre_colour(viewer, layer, pixel):
    """Screen colour at the canvas centre with the camera on ``pixel`` of ``layer`` (the only visible layer)."""
    viewer.scene.camera.center = tuple(layer.data_to_world(pixel))
    viewer.scene.camera.zoom = 10.0
    shot = viewer.screenshot(canvas_only=True, flash=False)[..., :3].astype(int)
    h, w = shot.shape[:2]
    return shot[h // 2 - 1 : h // 2 + 2, w // 2 - 1 : w // 2 + 2].reshape(-1, 3).mean(axis=0)


def _deepest(mask):
    return np.unravel_index(np.argmax(ndimage.distance_transform_edt(mask)), mask.shape)


def _check_error_colours(viewer, layer, error):
    """On screen the error map is bright green on the worst entity and faint on the best one."""
    for other in viewer.layers:
        other.visible = other is layer
    layer.opacity, layer.blending = 1.0, "translucent"
    worst, best = np.nanmax(error), np.nanmin(error)
    assert worst > 2 * best
    hot = _centre_colour(viewer, layer, _deepest(error == worst))
    cold = _centre_colour(viewer, layer, _deepest(error == best))
    rgba = heatmap_colormap().map(np.linspace(0, 1, 256))
    lut = rgba[:, :3] * rgba[:, 3:] * 255  # translucent over the black canvas
    nearest = []
    for colour in (hot, cold):
        distance = np.sqrt(((lut - colour) ** 2).sum(axis=1))
        assert distance.min() < 20  # a colour of the heatmap colormap
        nearest.append(int(distance.argmin()))
    assert nearest[0] > 200 and nearest[1] < 100  # the worst entity near its top, the best near its bottom


def test_latent_checkpoint_without_its_vae_is_a_clear_message(qtbot, slide_viewer, latent_checkpoint, tmp_path):
    viewer, image, shapes = slide_viewer
    alone = tmp_path / "latent.pt"
    shutil.copyfile(latent_checkpoint[0], alone)
    widget = _widget(viewer, image, shapes, alone)
    widget.run_button.native.click()
    qtbot.waitUntil(lambda: widget._worker is None, timeout=60_000)
    assert widget.result is None and "no vae.pt lies beside it" in widget.status.value
    widget.vae.value = str(tmp_path / "missing.pt")
    widget.run_button.native.click()
    assert widget._worker is None and "No entity VAE file" in widget.status.value


def test_too_large_region_is_refused(slide_viewer, checkpoint):
    viewer, image, _ = slide_viewer
    big = viewer.add_shapes([np.array([[0, 0], [2400, 2000]]) * 0.499], shape_type="rectangle", units=("µm", "µm"))
    widget = ReconstructionWidget(viewer)
    widget.picker.image.value = image
    widget.picker.shapes.value = big
    widget.picker.mpp.value = 0.5  # 2400 level-0 px at 0.499 µm/px -> 2395 px
    widget.checkpoint.value = str(checkpoint)
    widget.run_button.native.click()
    assert widget._worker is None and "at most 1024 px" in widget.status.value


def test_reconstruction_can_be_cancelled(qtbot, slide_viewer, checkpoint):
    viewer, image, shapes = slide_viewer
    widget = _widget(viewer, image, shapes, checkpoint)
    widget.run_button.native.click()
    widget.run_button.native.click()  # Cancel: the job stops at its next stage
    assert widget.status.value == "Cancelling…"
    qtbot.waitUntil(lambda: not widget.running, timeout=60_000)
    assert widget.result is None and widget.status.value == "Cancelled." and widget.run_button.text == "Reconstruct"
    assert "reconstruction error" not in viewer.layers
