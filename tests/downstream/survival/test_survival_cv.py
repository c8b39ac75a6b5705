import json

import numpy as np
import pytest

from hmgdm_core.downstream.survival.cross_validation import SurvivalConfig, survival_cv
from hmgdm_core.downstream.survival.evaluation import concordance
from hmgdm_core.errors import DownstreamError

# Small network and a higher learning rate so the synthetic cohort trains in seconds on one core.
FAST = SurvivalConfig(epochs=20, hidden_channels=32, attention_channels=16, head_channels=16, lr=1e-3, dropout=0.1)


def _cohort(n: int = 150, d: int = 16, patches: int = 20, seed: int = 1):
    """Each slide's hazard is exp(1.5 z); half of its patches carry z along one planted direction."""
    rng = np.random.default_rng(seed)
    direction = rng.normal(size=d)
    direction /= np.linalg.norm(direction)
    z = rng.normal(size=n)
    bags = []
    for b in range(n):
        x = rng.normal(size=(patches, d))
        x[: patches // 2] += 2.0 * z[b] * direction
        bags.append(x[rng.permutation(patches)])
    event_times = rng.exponential(np.exp(-1.5 * z))
    censor_times = rng.exponential(2.0, size=n)
    return bags, np.minimum(event_times, censor_times), event_times <= censor_times, z


def test_planted_risk_is_recovered_and_plotted(tmp_path) -> None:
    bags, times, events, z = _cohort()
    oracle = concordance(times, events, z)
    assert 0.72 < oracle < 0.82
    report = survival_cv(bags, times, events, config=FAST, plot_path=tmp_path / "km.png")
    assert report.cindex.mean > 0.7
    # Pooling risks of five separately trained models costs some concordance (they are not calibrated alike).
    assert report.pooled_cindex > 0.68
    assert report.cindex.mean < oracle + 0.05
    assert report.logrank_p < 1e-4
    assert report.n_high + report.n_low == len(bags)
    assert (tmp_path / "km.png").stat().st_size > 0
    assert len(report.fold_cindex) == 5
    assert all(4 <= epoch < 20 for epoch in report.best_epochs)  # selection only after the 20 % warm-up
    assert json.loads(report.to_json())["pooled_cindex"] == pytest.approx(report.pooled_cindex)
    assert "| pooled |" in report.to_markdown()


def test_shuffled_times_give_chance_concordance() -> None:
    bags, times, events, _ = _cohort(seed=2)
    perm = np.random.default_rng(2).permutation(len(times))
    report = survival_cv(bags, times[perm], events[perm], config=FAST)
    assert abs(report.pooled_cindex - 0.5) < 0.1


def test_too_few_events_per_fold_and_bad_config_are_errors() -> None:
    bags, times, events, _ = _cohort(n=30)
    events = np.zeros(30, bool)
    events[:3] = True
    with pytest.raises(DownstreamError, match="Only 3 patients with an observed event for 5 folds"):
        survival_cv(bags, times, events, config=FAST)
    with pytest.raises(DownstreamError, match="n_splits must be ≥ 3"):
        SurvivalConfig(n_splits=2)
