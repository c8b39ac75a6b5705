import numpy as np
import pytest

from hmgdm_core.model.diagnostics import active_units


def test_active_units_counts_dimensions_that_vary_across_entities():
    rng = np.random.default_rng(0)
    mu = np.zeros((500, 6))
    mu[:, 0] = rng.normal(0, 1, 500)  # active
    mu[:, 1] = rng.normal(0, 0.3, 500)  # variance 0.09: active
    mu[:, 2] = rng.normal(0, 0.05, 500)  # variance 0.0025: collapsed
    mu[:, 3] = 4.0  # constant: collapsed however large
    assert active_units(mu) == 2
    # Per-graph lists are pooled: variance is across all entities, not within each graph.
    per_graph = [np.full((10, 2), float(g)) for g in range(5)]
    assert active_units(per_graph) == 2
    assert active_units(mu, threshold=1e-4) == 3


def test_decoder_reliance_separates_context_noised_input_and_nothing():
    from dataclasses import replace

    import torch
    from model_graphs import TINY, random_graph

    from hmgdm_core.diffusion import DiffusionConfig, NoiseSchedule
    from hmgdm_core.masking import MaskConfig
    from hmgdm_core.model import HMGDM
    from hmgdm_core.model.diagnostics import decoder_reliance

    torch.manual_seed(0)
    model = HMGDM(replace(TINY, encoder_mask_token=True))
    graphs = [random_graph(20, 48, seed=s) for s in range(6)]
    mask = MaskConfig(mode="context")
    first = decoder_reliance(model, graphs, DiffusionConfig(), mask, timesteps=(0, 999), batch_size=4)
    assert [r.t for r in first] == [0, 999]
    early, late = first
    # x_0 is the target: at t = 0 the noised rows are almost it; at t = T-1, x_t = √ᾱ x_0 + √(1-ᾱ) ε leaves the
    # linear estimate the residual v(1-ᾱ) / (ᾱv + 1-ᾱ) of features with variance v = 1/3.
    assert early.noised_alone < 0.01 * early.predict_zero
    a = float(NoiseSchedule(DiffusionConfig()).alphas_cumprod[999])
    assert late.noised_alone == pytest.approx((1 - a) / 3 / (a / 3 + 1 - a), rel=0.1)
    # Uniform [-1, 1] features: mean square 1/3 at every t (same draws, same targets).
    assert abs(early.predict_zero - 1 / 3) < 0.02 and early.predict_zero == late.predict_zero
    # The encoder's output reaches the prediction, and zeroing it leaves the model as it was.
    assert early.with_encoder != early.encoder_zeroed
    assert "encode_embedded" not in vars(model)
    assert decoder_reliance(model, graphs, DiffusionConfig(), mask, timesteps=(0, 999), batch_size=4) == first
