"""Diffusion reconstructions in a real viewer: aligned original / noised / reconstructed layers."""

import numpy as np
from napari.layers import Image

from napari_hmgdm._widgets.reconstruction_widget import ReconstructionWidget


def test_reconstruction_layers(qtbot, slide_viewer, checkpoint):
    viewer, image, shapes = slide_viewer
    widget = ReconstructionWidget(viewer)
    viewer.window.add_dock_widget(widget)
    widget.picker.image.value = image
    widget.picker.shapes.value = shapes
    widget.checkpoint.value = str(checkpoint)
    widget.t.value = 900
    widget.run_button.native.click()
    qtbot.waitUntil(lambda: widget.result is not None and widget._worker is None, timeout=120_000)
    original, noised, rebuilt, error = (viewer.layers[n] for n in (
        "original", "noised (t=900)", "reconstructed (t=900)", "reconstruction error"))
    assert all(isinstance(layer, Image) for layer in (original, noised, rebuilt, error))
    result = widget.result
    assert result.targets > 0
    assert original.data.shape == noised.data.shape == rebuilt.data.shape
    # The views share one frame: pixels no target window covers are the original in both.
    untouched = (noised.data == original.data).all(axis=-1) & (rebuilt.data == original.data).all(axis=-1)
    assert 0.01 < untouched.mean() < 0.999
    assert np.abs(noised.data.astype(int) - original.data).mean() > 1.0  # t = 900 is visibly noisy
    assert np.isfinite(result.error).any() and np.nanmin(result.error) >= 0
    # Aligned with the slide: same scale and translate as any region overlay.
    np.testing.assert_allclose(original.scale, noised.scale)
    np.testing.assert_allclose(original.translate, rebuilt.translate)
    np.testing.assert_allclose(image.world_to_data(original.data_to_world((0, 0)))[-2:], [1500, 800], atol=1.0)


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
