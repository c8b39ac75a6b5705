"""Forward diffusion of graph entities: β schedules, ``q_sample``, timestep sampling, regression targets.

The schedule is an object of its own, with no reference to the network (diffusers' and lucidrains' design):
its tables are registered buffers, so they follow ``.to(device)``, and every method is a pure function of
its arguments. Only target entities are noised, and each entity takes the timestep of its graph
(method-spec §5). H-MGDM never samples iteratively: training is single-step denoising.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor, nn

from hmgdm_core.config_checks import check_at_least, check_fields, check_range
from hmgdm_core.errors import InputError

__all__ = [
    "DiffusionConfig",
    "NoiseSchedule",
    "cosine_beta_schedule",
    "linear_beta_schedule",
    "sigmoid_beta_schedule",
]

ScheduleName = Literal["sigmoid", "linear", "cosine"]
Objective = Literal["x0", "eps", "step"]


@dataclass(frozen=True)
class DiffusionConfig:
    """Noise schedule, timestep sampling and regression target; defaults reproduce the paper (§5)."""

    schedule: ScheduleName = "sigmoid"
    """β schedule: ``sigmoid`` (released code), ``linear`` or ``cosine``."""
    num_steps: int = 1000
    """T, the number of diffusion steps; timesteps are 0 … T-1."""
    beta_start: float = 1e-7
    """β at t = 0 for the sigmoid and linear schedules."""
    beta_end: float = 2e-3
    """β at t = T-1 for the sigmoid and linear schedules (mild noise: ᾱ_{T-1} ≈ 0.37)."""
    objective: Objective = "x0"
    """What the heads regress: ``x0`` (the figure's Ĝ_d^(0)), ``eps`` (the noise) or ``step`` (x_{t-1} - x_t)."""
    fixed_t: int | None = None
    """One timestep for every graph (the "noise intensity fixed" ablation); ``None`` samples t per graph."""

    def __post_init__(self) -> None:
        check_fields(self)
        check_at_least(self, "num_steps", 1)
        check_range(self, "beta_start", 0.0, 1.0)
        check_range(self, "beta_end", 0.0, 1.0)
        if self.fixed_t is not None:
            check_range(self, "fixed_t", 0, self.num_steps - 1)


def sigmoid_beta_schedule(num_steps: int, beta_start: float, beta_end: float) -> Tensor:
    """β_i = β_start + (β_end - β_start)·σ(-6 + 12·i/(T-1)), the released code's schedule.

    Parameters
    ----------
    num_steps : int
        T.
    beta_start, beta_end : float
        β at i = 0 and i = T-1 (before the sigmoid's saturation, so β_0 is slightly above β_start).

    Returns
    -------
    Tensor, shape (T,), float64
    """
    i = torch.arange(num_steps, dtype=torch.float64)
    return beta_start + (beta_end - beta_start) * torch.sigmoid(-6.0 + 12.0 * i / max(num_steps - 1, 1))


def linear_beta_schedule(num_steps: int, beta_start: float, beta_end: float) -> Tensor:
    """β linear from ``beta_start`` to ``beta_end`` (DDPM). Returns a float64 tensor of shape (T,)."""
    return torch.linspace(beta_start, beta_end, num_steps, dtype=torch.float64)


def cosine_beta_schedule(num_steps: int, offset: float = 0.008) -> Tensor:
    """β from ᾱ(t) = cos²((t/T + s)/(1 + s)·π/2) (Nichol & Dhariwal 2021), clipped to [0, 0.999].

    Returns
    -------
    Tensor, shape (T,), float64
    """
    steps = torch.arange(num_steps + 1, dtype=torch.float64) / num_steps
    alpha_bar = torch.cos((steps + offset) / (1 + offset) * math.pi / 2) ** 2
    return (1 - alpha_bar[1:] / alpha_bar[:-1]).clamp(0.0, 0.999)


class NoiseSchedule(nn.Module):
    """Precomputed ᾱ tables and the pure functions of the forward process.

    Parameters
    ----------
    config : DiffusionConfig
        Schedule, T, β range, objective and the optional fixed timestep.
    """

    alphas_cumprod: Tensor
    sqrt_alphas_cumprod: Tensor
    sqrt_one_minus_alphas_cumprod: Tensor

    def __init__(self, config: DiffusionConfig = DiffusionConfig()) -> None:
        super().__init__()
        if config.num_steps < 2:
            raise InputError(f"num_steps must be at least 2, got {config.num_steps}")
        if config.fixed_t is not None and not 0 <= config.fixed_t < config.num_steps:
            raise InputError(f"fixed_t must lie in [0, {config.num_steps - 1}], got {config.fixed_t}")
        self.config = config
        if config.schedule == "sigmoid":
            betas = sigmoid_beta_schedule(config.num_steps, config.beta_start, config.beta_end)
        elif config.schedule == "linear":
            betas = linear_beta_schedule(config.num_steps, config.beta_start, config.beta_end)
        elif config.schedule == "cosine":
            betas = cosine_beta_schedule(config.num_steps)
        else:
            raise InputError(f"unknown schedule {config.schedule!r}: use 'sigmoid', 'linear' or 'cosine'")
        alphas_cumprod = torch.cumprod(1.0 - betas, dim=0)
        # float64 products, stored as float32 like diffusers: the tables then follow the model's dtype and device.
        self.register_buffer("betas", betas.float())
        self.register_buffer("alphas_cumprod", alphas_cumprod.float())
        self.register_buffer("sqrt_alphas_cumprod", alphas_cumprod.sqrt().float())
        self.register_buffer("sqrt_one_minus_alphas_cumprod", (1.0 - alphas_cumprod).sqrt().float())
        # ᾱ_{t-1}, with ᾱ_{-1} = 1, for the ``step`` objective.
        previous = torch.cat([torch.ones(1, dtype=torch.float64), alphas_cumprod[:-1]])
        self.register_buffer("sqrt_alphas_cumprod_prev", previous.sqrt().float())
        self.register_buffer("sqrt_one_minus_alphas_cumprod_prev", (1.0 - previous).sqrt().float())

    @property
    def num_steps(self) -> int:
        """T, the number of timesteps."""
        return self.config.num_steps

    def _column(self, table: Tensor, t: Tensor) -> Tensor:
        if t.numel() and (int(t.min()) < 0 or int(t.max()) >= self.num_steps):
            raise InputError(f"timesteps must lie in [0, {self.num_steps - 1}], got {t.min()}..{t.max()}")
        return table[t].unsqueeze(-1)

    def q_sample(self, x0: Tensor, noise: Tensor, t: Tensor) -> Tensor:
        """x_t = √ᾱ_t·x0 + √(1-ᾱ_t)·ε, one timestep per row.

        Parameters
        ----------
        x0 : Tensor, shape (K, F)
            Clean features of the K target entities.
        noise : Tensor, shape (K, F)
            ε ~ N(0, I), passed in so that callers control the random stream.
        t : Tensor, shape (K,), int64
            The timestep of each entity's graph.

        Returns
        -------
        Tensor, shape (K, F)
        """
        return (
            self._column(self.sqrt_alphas_cumprod, t) * x0 + self._column(self.sqrt_one_minus_alphas_cumprod, t) * noise
        )

    def regression_target(self, x0: Tensor, noise: Tensor, t: Tensor) -> Tensor:
        """Return what the heads regress under the configured objective; shapes as in :meth:`q_sample`.

        ``x0`` returns x0, ``eps`` returns ε, and ``step`` returns x_{t-1} - x_t with the same ε, i.e.
        (√ᾱ_{t-1} - √ᾱ_t)·x0 + (√(1-ᾱ_{t-1}) - √(1-ᾱ_t))·ε.
        """
        if self.config.objective == "x0":
            return x0
        if self.config.objective == "eps":
            return noise
        a, b = self._step_coefficients(t)
        return a * x0 + b * noise

    def predict_x0(self, x_t: Tensor, prediction: Tensor, t: Tensor) -> Tensor:
        """Invert :meth:`regression_target`: the x0 implied by a prediction at x_t (for reconstructions).

        Parameters
        ----------
        x_t : Tensor, shape (K, F)
            Noised features.
        prediction : Tensor, shape (K, F)
            Network output under the configured objective.
        t : Tensor, shape (K,), int64
            Timesteps.

        Returns
        -------
        Tensor, shape (K, F)
        """
        if self.config.objective == "x0":
            return prediction
        sqrt_ab = self._column(self.sqrt_alphas_cumprod, t)
        sqrt_1m = self._column(self.sqrt_one_minus_alphas_cumprod, t)
        if self.config.objective == "eps":
            return (x_t - sqrt_1m * prediction) / sqrt_ab
        # step = a·x0 + b·ε and x_t = √ᾱ·x0 + √(1-ᾱ)·ε: eliminate ε. a > 0 > b, so the divisor is positive.
        a, b = self._step_coefficients(t)
        return (prediction - b * x_t / sqrt_1m) / (a - b * sqrt_ab / sqrt_1m)

    def _step_coefficients(self, t: Tensor) -> tuple[Tensor, Tensor]:
        a = self._column(self.sqrt_alphas_cumprod_prev, t) - self._column(self.sqrt_alphas_cumprod, t)
        b = self._column(self.sqrt_one_minus_alphas_cumprod_prev, t) - self._column(
            self.sqrt_one_minus_alphas_cumprod, t
        )
        return a, b

    def sample_timesteps(self, num_graphs: int, generator: torch.Generator | None = None) -> Tensor:
        """One timestep per graph: antithetic pairs (t, T-1-t), or ``fixed_t`` for every graph.

        Draws ⌊G/2⌋+1 values t ~ U{0, …, T-1}, appends T-1-t and keeps the first G (method-spec §5.2), so the
        batch's noise levels are balanced around the middle of the schedule.

        Parameters
        ----------
        num_graphs : int
            G, the number of graphs in the batch.
        generator : torch.Generator, optional
            Random stream (on the schedule's device).

        Returns
        -------
        Tensor, shape (G,), int64, on the schedule's device
        """
        device = self.betas.device
        if self.config.fixed_t is not None:
            return torch.full((num_graphs,), self.config.fixed_t, dtype=torch.long, device=device)
        half = torch.randint(0, self.num_steps, (num_graphs // 2 + 1,), generator=generator, device=device)
        return torch.cat([half, self.num_steps - 1 - half])[:num_graphs]
