"""The training widget offers the CLI's named presets (``hmgdm pretrain --preset``)."""

from hmgdm_core.model import ModelConfig
from hmgdm_core.train.config import PRESETS
from napari_hmgdm._widgets.train_widget import TrainWidget


def test_presets_fill_the_network_and_learning_rate(make_napari_viewer, tmp_path):
    widget = TrainWidget(make_napari_viewer(), settings_path=tmp_path / "settings.json")
    assert set(widget.preset.choices) == set(PRESETS)
    widget.preset.value = "fast"
    config = widget.pretrain_config()
    assert config.model == PRESETS["fast"].model and config.train.lr == PRESETS["fast"].train.lr
    widget.preset.value = "paper"
    paper = widget.pretrain_config()
    assert (paper.model, paper.mask, paper.diffusion) == (PRESETS["paper"].model, PRESETS["paper"].mask,
                                                          PRESETS["paper"].diffusion)
    widget.preset.value = "default"
    assert widget.pretrain_config().model == ModelConfig()
