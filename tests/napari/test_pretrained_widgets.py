"""The widgets start from the bundled model: training continues it, predictions and reconstructions need no run."""

import numpy as np

from hmgdm_core.embed import DEFAULT_READOUT, patch_width
from hmgdm_core.pretrained import DEFAULT_PRETRAINED, load_pretrained, pretrained_path
from hmgdm_core.train import load_checkpoint
from napari_hmgdm._widgets.patch_widget import PatchWidget
from napari_hmgdm._widgets.reconstruction_widget import ReconstructionWidget
from napari_hmgdm._widgets.train_widget import BUNDLED, LATENT, SCRATCH, TrainState, TrainWidget


def _pick(widget, slide_viewer):
    viewer, image, shapes = slide_viewer
    viewer.window.add_dock_widget(widget)
    widget.picker.image.value = image
    widget.picker.shapes.value = shapes
    return widget


def test_training_continues_the_bundled_model_by_default(qtbot, slide_viewer, tmp_path):
    widget = _pick(TrainWidget(slide_viewer[0], settings_path=tmp_path / "settings.json"), slide_viewer)
    assert widget.start_from.value == BUNDLED and SCRATCH in widget.start_from.choices
    widget.picker.mpp.value = 1.0
    widget.patch_size.value = 64  # 512² level-0 px at 1 µm/px -> 9 patches
    widget.out_dir.value = str(tmp_path / "runs")
    widget.train_settings.batch_size.value = 2
    widget.train_settings.max_steps.value = "2"
    widget.train_settings.device.value = "cpu"
    request = widget.make_request()
    bundled = load_pretrained(DEFAULT_PRETRAINED)
    assert request.init == pretrained_path(DEFAULT_PRETRAINED) and request.resume is None
    assert request.pretrain_config.model == bundled.config.model  # not the Network form's default widths
    assert request.pretrain_config.train.max_steps == 2  # the form's optimisation settings
    widget.start(request)
    qtbot.waitUntil(lambda: widget.state is TrainState.DONE, timeout=180_000)
    state = load_checkpoint(widget.checkpoint)
    assert state.meta["step"] == 2 and state.meta["init"] == str(request.init)
    # From scratch: the Network form's network and no init; the entity-VAE features need it.
    widget.checkpoint = None
    widget.start_from.value = SCRATCH
    assert widget.make_request().init is None
    widget.start_from.value = BUNDLED
    widget.features.value = LATENT
    widget._on_train_button()
    assert "from scratch" in widget.status.value and widget.state is TrainState.DONE
    widget.save_settings()
    again = TrainWidget(slide_viewer[0], settings_path=tmp_path / "settings.json")
    assert again.start_from.value == BUNDLED


def test_reconstruction_works_without_training(qtbot, slide_viewer):
    widget = _pick(ReconstructionWidget(slide_viewer[0]), slide_viewer)
    assert str(widget.checkpoint.value) == str(pretrained_path(DEFAULT_PRETRAINED))
    widget.t.value = 500
    widget.run_button.native.click()
    qtbot.waitUntil(lambda: widget.result is not None and widget._worker is None, timeout=120_000)
    assert widget.result.mode == "raw windows" and widget.result.targets > 0
    assert "reconstructed (t=500)" in slide_viewer[0].layers


def test_patch_predictions_work_without_training(qtbot, slide_viewer):
    widget = _pick(PatchWidget(slide_viewer[0]), slide_viewer)
    assert str(widget.checkpoint.value) == str(pretrained_path(DEFAULT_PRETRAINED))
    widget.patch_size.value = 64
    widget.embed_button.native.click()
    qtbot.waitUntil(lambda: widget.result is not None and widget._worker is None, timeout=120_000)
    hidden = load_pretrained(DEFAULT_PRETRAINED).config.model.hidden_dim
    assert widget.result.embeddings.shape == (9, patch_width(DEFAULT_READOUT, hidden))
    assert np.isfinite(widget.result.embeddings).all()
