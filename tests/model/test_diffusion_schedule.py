import pytest
import torch

from hmgdm_core.diffusion import DiffusionConfig, NoiseSchedule
from hmgdm_core.errors import InputError


def test_sigmoid_schedule_matches_the_released_values():
    schedule = NoiseSchedule()
    ab = schedule.alphas_cumprod
    assert ab[499].item() == pytest.approx(0.8913, abs=1e-4)
    assert ab[999].item() == pytest.approx(0.3676, abs=1e-4)
    assert ab[0].item() == pytest.approx(1.0, abs=1e-5)
    assert torch.all(ab[1:] < ab[:-1])


@pytest.mark.parametrize("name", ["sigmoid", "linear", "cosine"])
def test_every_schedule_decreases_from_one(name):
    schedule = NoiseSchedule(DiffusionConfig(schedule=name, num_steps=100))
    ab = schedule.alphas_cumprod
    assert ab.shape == (100,)
    assert torch.all(ab[1:] <= ab[:-1]) and 0 < ab[-1] < ab[0] <= 1


def test_q_sample_uses_each_rows_timestep_and_broadcasts():
    schedule = NoiseSchedule()
    x0, noise = torch.ones(3, 5), torch.zeros(3, 5)
    t = torch.tensor([0, 499, 999])
    out = schedule.q_sample(x0, noise, t)
    assert torch.allclose(out[:, 0], schedule.sqrt_alphas_cumprod[t])
    assert torch.equal(out, out[:, :1].expand(3, 5))
    with pytest.raises(InputError):
        schedule.q_sample(x0, noise, torch.tensor([0, 1, 1000]))


@pytest.mark.parametrize("objective", ["x0", "eps", "step"])
def test_predict_x0_inverts_every_objective(objective):
    schedule = NoiseSchedule(DiffusionConfig(objective=objective))
    gen = torch.Generator().manual_seed(0)
    x0, noise = torch.randn(6, 8, generator=gen), torch.randn(6, 8, generator=gen)
    t = torch.tensor([0, 1, 250, 500, 750, 999])
    x_t = schedule.q_sample(x0, noise, t)
    target = schedule.regression_target(x0, noise, t)
    assert torch.allclose(schedule.predict_x0(x_t, target, t), x0, atol=2e-3)


def test_timesteps_are_antithetic_pairs_or_fixed():
    schedule = NoiseSchedule()
    t = schedule.sample_timesteps(7, torch.Generator().manual_seed(3))
    assert t.shape == (7,) and t.min() >= 0 and t.max() <= 999
    assert torch.equal(t[4:], 999 - t[:3])  # ⌊7/2⌋+1 = 4 draws, then their mirrors
    fixed = NoiseSchedule(DiffusionConfig(fixed_t=500)).sample_timesteps(5)
    assert torch.equal(fixed, torch.full((5,), 500))
    with pytest.raises(InputError):
        NoiseSchedule(DiffusionConfig(fixed_t=1000))


def test_schedule_buffers_follow_the_module():
    schedule = NoiseSchedule().to(torch.float64)
    assert schedule.alphas_cumprod.dtype == torch.float64
    assert "alphas_cumprod" in schedule.state_dict()
