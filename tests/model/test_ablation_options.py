"""The ablation switches of the network: the masked-autoencoder target input and the edge-less model."""

from dataclasses import replace

import pytest
import torch
from model_graphs import random_graph
from torch_geometric.data import Batch

from hmgdm_core.diffusion import DiffusionConfig, NoiseSchedule
from hmgdm_core.errors import InputError
from hmgdm_core.masking import MaskConfig
from hmgdm_core.model import HMGDM, LossWeights, draw_mask, draw_noise, pretraining_loss
from hmgdm_core.model import loss as loss_module
from hmgdm_core.model.loss import noised_inputs


def _split(batch, mask_config, seed=0):
    gens = [torch.Generator().manual_seed(seed * 100 + i) for i in range(batch.num_graphs)]
    mask = draw_mask(batch, mask_config, gens)
    noise = draw_noise(batch, mask, batch.x.shape[1], 16, gens, paired=True)
    return mask, noise


def _batch():
    return Batch.from_data_list([random_graph(12, 48, seed=1), random_graph(9, 48, seed=2)])


def test_mask_token_hides_every_target_from_the_prediction(tiny_config):
    torch.manual_seed(0)
    model = HMGDM(replace(tiny_config, target_input="mask_token")).eval()
    batch = _batch()
    mask, noise = _split(batch, MaskConfig())
    t = NoiseSchedule(DiffusionConfig(fixed_t=0)).sample_timesteps(batch.num_graphs)
    x_t, e_t = noised_inputs(batch, mask, t, NoiseSchedule(), noise)
    changed_x, changed_e = x_t.clone(), e_t.clone()
    changed_x[mask.node_target] = torch.randn_like(changed_x[mask.node_target]) * 3
    changed_e[mask.edge_target] = torch.randn_like(changed_e[mask.edge_target]) * 3
    before = model(batch, x_t, e_t, mask, t)
    after = model(batch, changed_x, changed_e, mask, t)
    assert torch.equal(before.node, after.node) and torch.equal(before.edge, after.edge)
    # The noised-input model does read its (noised) targets.
    plain = HMGDM(tiny_config).eval()
    assert not torch.equal(plain(batch, x_t, e_t, mask, t).node, plain(batch, changed_x, changed_e, mask, t).node)


def test_mask_token_is_learned(tiny_config):
    torch.manual_seed(0)
    model = HMGDM(replace(tiny_config, target_input="mask_token"))
    batch = _batch()
    mask, noise = _split(batch, MaskConfig())
    schedule = NoiseSchedule(DiffusionConfig(fixed_t=0))
    t = schedule.sample_timesteps(batch.num_graphs)
    pretraining_loss(model, schedule, batch, mask, t, noise, LossWeights()).total.backward()
    assert model.node_mask_token.grad.abs().sum() > 0 and model.edge_mask_token.grad.abs().sum() > 0


def test_without_edge_branch_edge_features_change_nothing(tiny_config):
    torch.manual_seed(0)
    config = replace(tiny_config, edge_branch=False)
    model = HMGDM(config).eval()
    batch = _batch()
    mask, noise = _split(batch, MaskConfig(edge_ratio=0.0))
    schedule = NoiseSchedule()
    t = schedule.sample_timesteps(batch.num_graphs, torch.Generator().manual_seed(0))
    x_t, e_t = noised_inputs(batch, mask, t, schedule, noise)
    other = batch.clone()
    other.edge_attr = torch.randn_like(batch.edge_attr) * 3
    before = model(batch, x_t, e_t, mask, t)
    after = model(other, x_t, torch.randn_like(e_t), mask, t)
    assert torch.equal(before.node, after.node)
    assert before.edge.shape == (0, config.feature_dim)
    loss = pretraining_loss(model, schedule, batch, mask, t, noise, LossWeights())
    assert float(loss.edge) == 0.0
    loss.total.backward()
    assert all(p.grad is not None for p in model.parameters()), "every parameter of the edge-less model is live"
    # Edge latents are constant zeros: no edge information in the embedding either.
    assert torch.count_nonzero(model.encode(other, mask).edge_mu) == 0
    full, edgeless = HMGDM(tiny_config), model
    assert sum(p.numel() for p in edgeless.parameters()) < sum(p.numel() for p in full.parameters())


def test_without_edge_branch_an_edge_target_is_refused(tiny_config):
    model = HMGDM(replace(tiny_config, edge_branch=False))
    batch = _batch()
    mask, _ = _split(batch, MaskConfig())
    t = torch.zeros(batch.num_graphs, dtype=torch.long)
    with pytest.raises(InputError, match="edge_ratio=0"):
        model(batch, batch.x, batch.edge_attr, mask, t)


def test_normalised_targets_ignore_each_target_windows_brightness_and_contrast(tiny_config):
    # With [MASK] target tokens and the context mask nothing reads a target's own features, so only the targets
    # of the loss change when their windows are shifted and scaled: with normalised targets the loss must not.
    torch.manual_seed(0)
    model = HMGDM(replace(tiny_config, target_input="mask_token", encoder_mask_token=True)).eval()
    batch = _batch()
    mask, noise = _split(batch, MaskConfig(mode="context"))
    schedule = NoiseSchedule(DiffusionConfig(fixed_t=0))
    t = schedule.sample_timesteps(batch.num_graphs)
    changed = batch.clone()
    scale = 0.2 + torch.rand(int(mask.node_target.sum()), 1)
    changed.x[mask.node_target] = changed.x[mask.node_target] * scale + 0.3 * torch.randn_like(scale)
    changed.edge_attr[mask.edge_target] = changed.edge_attr[mask.edge_target] * 0.5 - 0.2

    def parts(graphs, normalise):
        loss = pretraining_loss(model, schedule, graphs, mask, t, noise, LossWeights(normalise_targets=normalise))
        return torch.stack([loss.node, loss.edge])

    # Exact but for the variance floor (1e-6 against row variances of ~0.01 after scaling by 0.2).
    torch.testing.assert_close(parts(changed, True), parts(batch, True), rtol=2e-4, atol=1e-6)
    assert not torch.allclose(parts(changed, False), parts(batch, False), rtol=1e-3)
    # What the heads are scored against: each target window at mean 0 and variance 1.
    goal = loss_module._normalised_rows(batch.x[mask.node_target])
    torch.testing.assert_close(goal.mean(1), torch.zeros(len(goal)), atol=1e-5, rtol=0)
    torch.testing.assert_close(goal.var(1, unbiased=False), torch.ones(len(goal)), atol=1e-4, rtol=0)


def test_normalised_targets_need_the_x0_objective():
    from hmgdm_core.train import PretrainConfig, TrainConfig

    with pytest.raises(InputError, match="objective 'x0'"):
        PretrainConfig(
            diffusion=DiffusionConfig(objective="eps"), train=TrainConfig(loss=LossWeights(normalise_targets=True))
        )
