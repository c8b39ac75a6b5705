"""The training widget offers the CLI's named presets (``hmgdm pretrain --preset``)."""

from hmgdm_core.model import ModelConfig
from hmgdm_core.train.config import PRESETS
from napari_hmgdm._widgets.train_widget import PAPER, TrainWidget


def test_fast_preset_fills_the_network_and_learning_rate(make_napari_viewer, tmp_path):
    widget = TrainWidget(make_napari_viewer(), settings_path=tmp_path / "settings.json")
    widget.preset.value = "fast"
    config = widget.pretrain_config()
    assert config.model == PRESETS["fast"].model and config.train.lr == PRESETS["fast"].train.lr
    widget.preset.value = PAPER
    assert widget.pretrain_config().model == ModelConfig()
