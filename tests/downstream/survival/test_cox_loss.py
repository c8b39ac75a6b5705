import numpy as np
import pandas as pd
import pytest
import torch
from lifelines import CoxPHFitter

from hmgdm_core.downstream.survival.cox import cox_loss, cox_partial_log_likelihood


def _cohort(seed: int, n: int = 80, tied: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3))
    hazard = np.exp(x @ np.array([0.8, -0.5, 0.0]))
    times = rng.exponential(1 / hazard)
    times = np.ceil(times * 4) if tied else times  # whole quarter-units: many ties
    events = rng.random(n) < 0.7
    return x, times, events


def _lifelines_fit(x: np.ndarray, times: np.ndarray, events: np.ndarray) -> CoxPHFitter:
    frame = pd.DataFrame(x, columns=["a", "b", "c"]).assign(T=times, E=events)
    return CoxPHFitter().fit(frame, "T", "E")


def _ll(risk: np.ndarray, times: np.ndarray, events: np.ndarray, ties: str) -> float:
    return cox_partial_log_likelihood(torch.tensor(risk), torch.tensor(times), torch.tensor(events), ties).item()


def _breslow_by_definition(risk: np.ndarray, times: np.ndarray, events: np.ndarray) -> float:
    return sum(risk[i] - np.log(np.exp(risk[times >= times[i]]).sum()) for i in np.flatnonzero(events))


@pytest.mark.parametrize("seed", [0, 1])
def test_efron_equals_lifelines_with_ties(seed: int) -> None:
    x, times, events = _cohort(seed)
    assert len(np.unique(times[events])) < events.sum()  # the cohort really has tied event times
    fitter = _lifelines_fit(x, times, events)
    risk = x @ fitter.params_.to_numpy()
    assert _ll(risk, times, events, "efron") == pytest.approx(fitter.log_likelihood_, rel=1e-9)
    # lifelines' estimate maximises the same function: our gradient vanishes there.
    beta = torch.tensor(fitter.params_.to_numpy(), requires_grad=True)
    ll = cox_partial_log_likelihood(torch.tensor(x) @ beta, torch.tensor(times), torch.tensor(events), "efron")
    ll.backward()
    assert beta.grad.abs().max().item() < 1e-4


def test_breslow_equals_lifelines_without_ties_and_the_definition_with_ties() -> None:
    x, times, events = _cohort(2, tied=False)
    fitter = _lifelines_fit(x, times, events)
    risk = x @ fitter.params_.to_numpy()
    assert _ll(risk, times, events, "breslow") == pytest.approx(fitter.log_likelihood_, rel=1e-9)
    assert _ll(risk, times, events, "efron") == pytest.approx(fitter.log_likelihood_, rel=1e-9)
    x, times, events = _cohort(3)
    risk = x @ np.array([0.5, -0.3, 0.2])
    assert _ll(risk, times, events, "breslow") == pytest.approx(_breslow_by_definition(risk, times, events))
    # Breslow's denominator keeps all tied events at risk, so it is never above Efron's likelihood.
    assert _ll(risk, times, events, "breslow") < _ll(risk, times, events, "efron")


def test_likelihood_ignores_order_and_a_constant_risk_shift() -> None:
    x, times, events = _cohort(4)
    risk = x @ np.array([1.0, 0.5, -0.5])
    perm = np.random.default_rng(0).permutation(len(risk))
    for ties in ("breslow", "efron"):
        reference = _ll(risk, times, events, ties)
        assert _ll(risk[perm], times[perm], events[perm], ties) == pytest.approx(reference)
        assert _ll(risk + 50.0, times, events, ties) == pytest.approx(reference)


def test_censored_patient_only_enters_risk_sets() -> None:
    times = np.array([1.0, 2.0, 3.0])
    events = np.array([True, True, False])
    risk = np.array([0.2, -0.1, 0.7])
    expected = (0.2 - np.log(np.exp(risk).sum())) + (-0.1 - np.log(np.exp(risk[1:]).sum()))
    assert _ll(risk, times, events, "breslow") == pytest.approx(expected)


def test_loss_is_mean_negative_likelihood_per_event_and_needs_an_event() -> None:
    x, times, events = _cohort(5)
    risk = torch.tensor(x[:, 0])
    loss = cox_loss(risk, torch.tensor(times), torch.tensor(events))
    assert loss.item() == pytest.approx(-_ll(x[:, 0], times, events, "breslow") / events.sum())
    with pytest.raises(ValueError, match="at least one observed event"):
        cox_loss(risk, torch.tensor(times), torch.zeros(len(times), dtype=torch.bool))
