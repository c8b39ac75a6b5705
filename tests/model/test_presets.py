"""Named presets: ``hmgdm pretrain --preset`` starts from them, and other options still apply."""

from dataclasses import replace

import pytest

from hmgdm_core.cli import build_parser
from hmgdm_core.cli.train import pretrain_config
from hmgdm_core.errors import InputError
from hmgdm_core.model import HMGDM
from hmgdm_core.train import PretrainConfig
from hmgdm_core.train.config import PRESETS


def test_fast_preset_is_smaller_with_the_same_inputs_and_objective():
    fast, paper = PRESETS["fast"], PretrainConfig()
    assert fast.model.feature_dim == paper.model.feature_dim  # runs on the same graphs
    assert (fast.mask, fast.diffusion) == (paper.mask, paper.diffusion)
    size = [sum(p.numel() for p in HMGDM(c.model).parameters()) for c in (fast, paper)]
    assert size[0] * 4 < size[1]
    assert PretrainConfig.from_json(fast.to_json()) == fast


def test_cli_preset_with_overrides(tmp_path):
    argv = ["pretrain", "g.pt", "--preset", "fast", "--steps", "7", "--memory-gb", "2", "--precision", "bf16"]
    config = pretrain_config(build_parser().parse_args(argv))
    assert config.model == PRESETS["fast"].model
    assert (config.train.max_steps, config.train.memory_gb, config.train.lr) == (7, 2.0, PRESETS["fast"].train.lr)
    assert config.train.precision == "bf16"
    assert pretrain_config(build_parser().parse_args(["pretrain", "g.pt"])).train.precision == "fp32"
    (tmp_path / "c.json").write_text(PretrainConfig().to_json())
    both = build_parser().parse_args(["pretrain", "g.pt", "--preset", "fast", "--config", str(tmp_path / "c.json")])
    with pytest.raises(InputError, match="--config or --preset"):
        pretrain_config(both)


def test_json_leaving_out_loss_weights_gets_the_default_recipe_weights():
    assert PretrainConfig.from_json("{}") == PretrainConfig()
    partial = PretrainConfig.from_json('{"train": {"loss": {"node": 0.7}}}').train.loss
    assert partial == replace(PretrainConfig().train.loss, node=0.7)


def test_pair_tokens_are_the_default_and_the_paper_preset_keeps_one_token_per_direction():
    assert PretrainConfig().model.pair_tokens and PRESETS["fast"].model.pair_tokens
    assert not PRESETS["paper"].model.pair_tokens
    # Same parameters either way: a checkpoint of one runs in the other.
    shapes = [
        {k: v.shape for k, v in HMGDM(replace(PRESETS["paper"].model, pair_tokens=flag)).state_dict().items()}
        for flag in (False, True)
    ]
    assert shapes[0] == shapes[1]
    with pytest.raises(InputError, match="pair_tokens=False"):
        replace(PretrainConfig().model, index_rope=True)
    assert replace(PretrainConfig().model, index_rope=True, pair_tokens=False).index_rope
