"""Every config dataclass checks its values where they enter (Python, JSON or the command line)."""

import pytest

from hmgdm_core.diffusion import DiffusionConfig
from hmgdm_core.errors import InputError
from hmgdm_core.masking import MaskConfig
from hmgdm_core.model import ModelConfig
from hmgdm_core.model.loss import LossWeights
from hmgdm_core.train import PretrainConfig, TrainConfig


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: TrainConfig(batch_size=0), "TrainConfig.batch_size must be ≥ 1, got 0"),
        (lambda: TrainConfig(max_steps=-3), "TrainConfig.max_steps must be ≥ 1, got -3"),
        (lambda: TrainConfig(lr=float("inf")), "TrainConfig.lr must be a finite number"),
        (lambda: TrainConfig(lr=0.0), "TrainConfig.lr must be > 0"),
        (lambda: TrainConfig(epochs=True), "TrainConfig.epochs must be an integer, got True"),
        (lambda: TrainConfig(betas=(0.9,)), "TrainConfig.betas must be a list of 2 values"),
        (lambda: TrainConfig(precision="fp8"), "TrainConfig.precision must be one of 'fp32', 'bf16', 'fp16'"),
        (lambda: MaskConfig(node_ratio=1.5), "MaskConfig.node_ratio must be in [0.0, 1.0], got 1.5"),
        (lambda: DiffusionConfig(fixed_t=1000), "DiffusionConfig.fixed_t must be in [0, 999], got 1000"),
        (lambda: ModelConfig(hidden_dim=0), "ModelConfig.hidden_dim must be ≥ 1, got 0"),
        (lambda: ModelConfig(head_dims=(256, 0)), "ModelConfig.head_dims must be ≥ 1"),
        (lambda: LossWeights(kl=-1.0), "LossWeights.kl must be ≥ 0.0, got -1.0"),
        (lambda: PretrainConfig(train={"lr": 1}), "PretrainConfig.train must be TrainConfig"),
    ],
)
def test_bad_values_are_refused_naming_the_field(build, message):
    with pytest.raises(InputError) as caught:
        build()
    assert message in str(caught.value)


def test_defaults_and_their_json_round_trip_are_accepted():
    config = PretrainConfig()
    assert PretrainConfig.from_json(config.to_json()) == config
    assert TrainConfig(lr=1, max_steps=5).lr == 1  # JSON writes 1.0 as 1: an integer is a valid float
