"""Forms generated from the core config dataclasses give back exactly the configs they show."""

import pytest

from hmgdm_core.graph import GraphConfig
from hmgdm_core.model.config import ModelConfig
from hmgdm_core.train import TrainConfig
from napari_hmgdm._widgets._forms import DataclassForm


@pytest.mark.parametrize(
    "config",
    [
        TrainConfig(lr=1e-4, max_steps=None),
        TrainConfig(lr=3.5e-7, max_steps=12),
        ModelConfig(),
        GraphConfig(kind="nuclei", max_distance_um=7.25),
    ],
)
def test_round_trip(qtbot, config):
    assert DataclassForm(config).config == config


def test_edits_and_set_config(qtbot):
    form = DataclassForm(TrainConfig(), choices={"device": ("auto", "cpu")})
    form.lr.value = "2e-5"
    form.max_steps.value = "7"
    form.device.value = "cpu"
    assert form.config == TrainConfig(lr=2e-5, max_steps=7, device="cpu")
    form.max_steps.value = ""
    assert form.config.max_steps is None
    form.set_config(TrainConfig(batch_size=3))
    assert form.config == TrainConfig(batch_size=3)
    form.lr.value = "fast"
    with pytest.raises(ValueError, match="not a number"):
        form.config  # noqa: B018


def test_essentials_first_the_rest_folded_and_plain_labels(qtbot):
    from hmgdm_core.entities import NucleiConfig, SuperpixelConfig

    form = DataclassForm(TrainConfig(), essential=("max_steps", "batch_size"), advanced_title="More")
    shown = [widget.name for widget in form]
    assert shown == ["batch_size", "max_steps"]  # the folded fields are not in the form's own rows
    assert form.advanced is not None and "lr" in [w.name for w in form.advanced]
    form.lr.value = "3e-5"  # folded fields are still reachable and still count
    assert form.config == TrainConfig(lr=3e-5)
    assert form.max_steps.label == "training steps" and form.max_steps.tooltip
    jargon = {"min od", "split mpp", "fixed od", "slic side px"}
    for config in (NucleiConfig(), SuperpixelConfig(), TrainConfig(), GraphConfig()):
        for widget in DataclassForm(config)._fields.values():
            assert widget.label.lower() not in jargon, widget.label
            assert widget.tooltip, f"{type(config).__name__}.{widget.name} has no tooltip"
    assert DataclassForm(NucleiConfig()).min_od.label == "faintest stain kept"
