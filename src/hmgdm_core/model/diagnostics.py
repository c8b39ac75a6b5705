"""Diagnostics of a pre-trained network: whether its latents are alive and what its decoder reads."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from contextlib import contextmanager

import numpy as np
import torch
from torch_geometric.data import Data

from hmgdm_core.diffusion import DiffusionConfig, NoiseSchedule
from hmgdm_core.graph.contract import collate
from hmgdm_core.masking import MaskConfig
from hmgdm_core.model.hmgdm import HMGDM
from hmgdm_core.model.loss import draw_mask, draw_noise, noised_inputs

__all__ = ["Reliance", "active_units", "decoder_reliance"]


def active_units(node_mu: Sequence[np.ndarray] | np.ndarray, threshold: float = 0.01) -> int:
    """Count the latent dimensions whose μ varies across entities (Burda et al.'s "active units").

    A dimension whose variance of μ over all entities stays below ``threshold`` carries (almost) no information
    about its input: its posterior has collapsed onto the prior or onto a constant.

    Parameters
    ----------
    node_mu : array (M, H) or sequence of arrays (M_g, H)
        Node latent means μ of M entities (e.g. ``embed_dataset(..., entities=True).node``).
    threshold : float
        Variance below which a dimension counts as inactive (0.01, as in the issue's definition).

    Returns
    -------
    int
        Number of active dimensions, in [0, H].
    """
    rows = np.concatenate(list(node_mu)) if not isinstance(node_mu, np.ndarray) else node_mu
    if rows.shape[0] < 2:
        return 0
    return int((rows.astype(np.float64).var(axis=0) > threshold).sum())


@dataclasses.dataclass(frozen=True)
class Reliance:
    """Node-target errors of one denoising pass at a fixed timestep (mean squared error per entry)."""

    t: int
    """The timestep of every graph."""
    with_encoder: float
    """The network's prediction, decoded from the latent means μ."""
    encoder_zeroed: float
    """The same pass with every encoder output (μ, log σ², skips) set to zero: what the decoder makes of the
    noised targets and the time alone."""
    noised_alone: float
    """The best scalar multiple c·x_t of the noised target rows (c fitted on these rows): what the noised input
    explains by itself."""
    predict_zero: float
    """Predicting 0 for every entry (the targets' mean square)."""


@contextmanager
def _zeroed_encoder(model: HMGDM):
    original = model.encode_embedded

    def zeroed(*args, **kwargs):
        out = original(*args, **kwargs)
        fields = {f.name: getattr(out, f.name) for f in dataclasses.fields(out)}
        return dataclasses.replace(
            out,
            **{
                k: tuple(map(torch.zeros_like, v)) if isinstance(v, tuple) else torch.zeros_like(v)
                for k, v in fields.items()
            },
        )

    model.encode_embedded = zeroed
    try:
        yield
    finally:
        del model.encode_embedded


@torch.no_grad()
def decoder_reliance(
    model: HMGDM,
    graphs: Sequence[Data],
    diffusion: DiffusionConfig,
    mask: MaskConfig,
    timesteps: Sequence[int] = (10, 100, 500, 900, 999),
    batch_size: int = 32,
    seed: int = 0,
) -> list[Reliance]:
    """Measure what a network's denoiser uses: the encoder's context, the noised targets, or neither.

    For each timestep, every graph is masked and noised as in pre-training (one seeded draw per graph) and the
    node targets are predicted twice, with the encoder's output and with it zeroed. A decoder that uses the
    noised targets beats :attr:`Reliance.noised_alone` at small t, where x_t is almost x_0; one that uses the
    context is worse with the encoder zeroed.

    Parameters
    ----------
    model : HMGDM
        The network, put in eval mode (its stored standardisation is applied, so errors are in the units it
        trains in).
    graphs : sequence of Data
        Graphs following the graph contract.
    diffusion : DiffusionConfig
        Schedule and objective the network was trained with.
    mask : MaskConfig
        Masking it was trained with.
    timesteps : sequence of int
        Timesteps to measure, each in [0, T).
    batch_size : int
        Graphs per pass.
    seed : int
        Seed of the masks and noise (the same draws at every timestep).

    Returns
    -------
    list of Reliance
        One per timestep, in order.
    """
    model = model.eval()
    schedule = NoiseSchedule(diffusion)
    device = next(model.parameters()).device
    out = []
    for step in timesteps:
        seen, blind_error, square, cross, power, count = 0.0, 0.0, 0.0, 0.0, 0.0, 0
        for start in range(0, len(graphs), batch_size):
            batch = model.standardise(collate(graphs[start : start + batch_size]).to(device))
            gens = [torch.Generator().manual_seed(seed * 1_000_003 + start + g) for g in range(batch.num_graphs)]
            drawn = draw_mask(batch, mask, gens)
            noise = draw_noise(
                batch, drawn, batch.x.shape[1], model.config.hidden_dim, gens, paired=model.config.pair_tokens
            )
            t = torch.full((batch.num_graphs,), int(step), dtype=torch.long, device=device)
            x_t, edge_t = noised_inputs(batch, drawn, t, schedule, noise)
            rows = drawn.node_target.nonzero().squeeze(1)
            goal = schedule.regression_target(batch.x[rows], noise.node, t[batch.batch[rows]])
            seen += float((model(batch, x_t, edge_t, drawn, t).node - goal).square().sum())
            with _zeroed_encoder(model):
                blind_error += float((model(batch, x_t, edge_t, drawn, t).node - goal).square().sum())
            square += float(goal.square().sum())
            cross += float((x_t[rows] * goal).sum())
            power += float(x_t[rows].square().sum())
            count += goal.numel()
        if count == 0:
            raise ValueError("the graphs hold no target node to measure")
        # Least squares c = <x_t, goal> / <x_t, x_t> leaves |goal|² - <x_t, goal>² / |x_t|².
        alone = square - (cross * cross / power if power > 0 else 0.0)
        out.append(Reliance(int(step), seen / count, blind_error / count, alone / count, square / count))
    return out
