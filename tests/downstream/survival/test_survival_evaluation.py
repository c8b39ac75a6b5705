import itertools

import numpy as np
import pytest

from hmgdm_core.downstream.survival.evaluation import concordance, median_risk_split, plot_kaplan_meier


def _harrell(times: np.ndarray, events: np.ndarray, risk: np.ndarray) -> float:
    concordant, comparable = 0.0, 0
    for i, j in itertools.permutations(range(len(times)), 2):
        # i failed first (or failed when j was censored): i should have the higher risk.
        if events[i] and (times[i] < times[j] or (times[i] == times[j] and not events[j])):
            comparable += 1
            concordant += 1.0 if risk[i] > risk[j] else 0.5 if risk[i] == risk[j] else 0.0
    return concordant / comparable


def test_concordance_is_harrells_index() -> None:
    rng = np.random.default_rng(0)
    times = rng.exponential(size=40).round(1)
    events = rng.random(40) < 0.6
    risk = rng.normal(size=40).round(1)
    assert concordance(times, events, risk) == pytest.approx(_harrell(times, events, risk))
    assert concordance(times, np.ones(40, bool), -times) == pytest.approx(1.0)
    assert concordance(times, np.ones(40, bool), times) == pytest.approx(0.0, abs=0.05)
    assert concordance(times, np.zeros(40, bool), risk) is None


def test_median_split_gives_kaplan_meier_steps_and_a_logrank_p() -> None:
    times = np.array([1.0, 2.0, 3.0, 4.0, 10.0, 11.0, 12.0, 13.0])
    events = np.ones(8, bool)
    risk = np.array([8, 7, 6, 5, 4, 3, 2, 1.0])
    split = median_risk_split(times, events, risk)
    assert (split.n_high, split.n_low) == (4, 4)
    assert split.threshold == pytest.approx(4.5)
    high_times, high_survival = split.high_curve
    assert high_times == [0.0, 1.0, 2.0, 3.0, 4.0]
    assert high_survival == pytest.approx([1.0, 0.75, 0.5, 0.25, 0.0])
    assert split.logrank_p < 0.05
    with pytest.raises(ValueError, match="equal"):
        median_risk_split(times, events, np.zeros(8))


def test_plot_writes_a_png(tmp_path) -> None:
    times = np.arange(1.0, 11.0)
    split = median_risk_split(times, np.ones(10, bool), -times)
    path = plot_kaplan_meier(split, tmp_path / "km.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
