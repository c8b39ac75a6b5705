"""Cox partial likelihood of predicted risks, with Breslow or Efron handling of tied times.

The model's scalar output per patient is the log relative hazard :math:`r_i` (the "risk").
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor

__all__ = ["cox_loss", "cox_partial_log_likelihood"]

Ties = Literal["breslow", "efron"]


def _previous(cumulative: Tensor, first: Tensor) -> Tensor:
    # Cumulative sum just before each tie block (0 for the first block).
    padded = torch.cat([cumulative.new_zeros(1), cumulative])
    return padded[first]


def cox_partial_log_likelihood(risk: Tensor, times: Tensor, events: Tensor, ties: Ties = "breslow") -> Tensor:
    r"""Log partial likelihood of Cox's model, differentiable in ``risk``.

    With the risk set :math:`R(t) = \{j : t_j \ge t\}` and, for each distinct event time
    :math:`\tau`, the :math:`d_\tau` patients :math:`D_\tau` whose event is at :math:`\tau`:

    .. math::
        \text{Breslow:}\quad \ell = \sum_{i:\,\delta_i = 1} \Big[ r_i - \log \sum_{j \in R(t_i)} e^{r_j} \Big]

        \text{Efron:}\quad \ell = \sum_\tau \Big[ \sum_{i \in D_\tau} r_i - \sum_{l=0}^{d_\tau - 1}
        \log \Big( \sum_{j \in R(\tau)} e^{r_j} - \tfrac{l}{d_\tau} \sum_{i \in D_\tau} e^{r_i} \Big) \Big]

    Both equal each other without ties. Censored patients (:math:`\delta = 0`) only enter risk
    sets; a censoring time equal to an event time counts as at risk (:math:`t_j \ge t_i`).
    Efron's is what lifelines' ``CoxPHFitter`` maximises.

    Parameters
    ----------
    risk : Tensor, shape (n,), float
        Predicted log relative hazard of each patient.
    times : Tensor, shape (n,)
        Follow-up time of each patient (event or censoring), any unit.
    events : Tensor, shape (n,), bool
        True where the event was observed.
    ties : {"breslow", "efron"}
        How tied event times share their risk set.

    Returns
    -------
    Tensor, scalar
        :math:`\ell`, in the dtype of ``risk``; 0 when there is no event.
    """
    times = times.to(device=risk.device)
    events = events.to(device=risk.device, dtype=torch.bool)
    order = torch.argsort(times, descending=True)
    r, t, d = risk[order], times[order], events[order].to(risk.dtype)
    shift = r.max().detach()  # log-sum-exp shift; cancels exactly
    e = torch.exp(r - shift)
    ascending = -t.contiguous()
    first = torch.searchsorted(ascending, ascending, right=False)  # start of each tie block
    last = torch.searchsorted(ascending, ascending, right=True) - 1  # end of each tie block
    at_risk = torch.cumsum(e, 0)[last]  # sum of e^r over t_j >= t_i, including i's ties
    if ties == "breslow":
        denominator = at_risk
    elif ties == "efron":
        cum_events = torch.cumsum(d, 0)
        cum_event_e = torch.cumsum(e * d, 0)
        tied_e = cum_event_e[last] - _previous(cum_event_e, first)
        n_tied = cum_events[last] - _previous(cum_events, first)
        rank = cum_events - _previous(cum_events, first) - 1  # l = 0 .. d-1 among the block's events
        denominator = at_risk - rank / n_tied.clamp_min(1) * tied_e
    else:
        raise ValueError(f"ties must be 'breslow' or 'efron', got {ties!r}")
    terms = r - shift - torch.log(denominator.clamp_min(torch.finfo(r.dtype).tiny))
    return (terms * d).sum()


def cox_loss(risk: Tensor, times: Tensor, events: Tensor, ties: Ties = "breslow") -> Tensor:
    """Negative Cox log partial likelihood per observed event, the survival training loss.

    Parameters
    ----------
    risk : Tensor, shape (n,), float
        Predicted log relative hazard of each patient of the mini-batch; the risk sets are
        formed within the batch, as in the official code.
    times : Tensor, shape (n,)
    events : Tensor, shape (n,), bool
    ties : {"breslow", "efron"}

    Returns
    -------
    Tensor, scalar
        ``-cox_partial_log_likelihood(...) / number of events``.

    Raises
    ------
    ValueError
        If the batch has no observed event (the likelihood is then constant).
    """
    n_events = int(events.sum())
    if n_events == 0:
        raise ValueError("cox_loss needs at least one observed event in the batch.")
    return -cox_partial_log_likelihood(risk, times, events, ties) / n_events
