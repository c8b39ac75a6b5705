import numpy as np

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
