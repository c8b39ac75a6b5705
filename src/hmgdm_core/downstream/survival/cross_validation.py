"""Cross-validated survival prediction from bags of patch embeddings (method spec §8.2).

Per fold, an :class:`AttentionMIL` is trained with the Cox loss on mini-batches of patients;
the epoch kept is the one with the best validation c-index after a warm-up, where validation is
a grouped sample of the training part as large as the test fold. The test fold is predicted
once. Out-of-fold risks are then pooled for one c-index and a median split with Kaplan–Meier
curves and a log-rank test, as the paper does (risks of different fold models are not on one
calibrated scale; pooling them is the paper's protocol, and the per-fold c-index is the
cleaner number).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from hmgdm_core.downstream.inputs import check_survival
from hmgdm_core.downstream.metrics import MeanStd
from hmgdm_core.downstream.splits import grouped_folds, grouped_holdout
from hmgdm_core.downstream.survival.amil import AttentionMIL
from hmgdm_core.downstream.survival.cox import cox_loss
from hmgdm_core.downstream.survival.evaluation import concordance, median_risk_split, plot_kaplan_meier
from hmgdm_core.errors import DownstreamError

__all__ = ["SurvivalConfig", "SurvivalReport", "survival_cv"]


@dataclass(frozen=True)
class SurvivalConfig:
    """Survival training and evaluation; the defaults are the paper's AMIL setting."""

    n_splits: int = 5
    """Folds, stratified on event status and grouped by patient; at least 3."""
    epochs: int = 100
    batch_size: int = 16
    """Patients per step; Cox risk sets are formed within the batch."""
    lr: float = 1e-4
    weight_decay: float = 5e-4
    """Adam's L2 weight decay."""
    lr_step_epochs: int = 40
    """The learning rate is multiplied by ``lr_gamma`` every this many epochs."""
    lr_gamma: float = 0.5
    dropout: float = 0.25
    hidden_channels: int = 512
    attention_channels: int = 256
    head_channels: int = 128
    risk_activation: Literal["sigmoid", "linear"] = "sigmoid"
    """``sigmoid`` as the official code; ``linear`` for an unbounded log relative hazard."""
    ties: Literal["breslow", "efron"] = "breslow"
    """Tie handling of the Cox loss."""
    selection_warmup: float = 0.2
    """Fraction of epochs trained before validation c-index selects the epoch to keep."""
    seed: int = 1
    """Seeds the splits, the batch order and each fold's model initialisation."""
    device: str = "cpu"
    """Torch device to train on."""

    def __post_init__(self) -> None:
        if self.n_splits < 3:
            raise DownstreamError("n_splits must be ≥ 3: each training part is split again for validation.")
        if self.epochs < 1 or self.batch_size < 2 or not 0 <= self.selection_warmup < 1:
            raise DownstreamError("epochs must be ≥ 1, batch_size ≥ 2 and selection_warmup in [0, 1).")


@dataclass(frozen=True)
class SurvivalReport:
    """Cross-validated c-index and the Kaplan–Meier comparison of predicted risk halves."""

    config: dict
    fold_cindex: list[float | None]
    """Test c-index of each fold (None if a fold has no comparable pair)."""
    cindex: MeanStd
    """Mean ± std of the per-fold c-indices."""
    pooled_cindex: float
    """c-index of all out-of-fold risks together."""
    best_epochs: list[int]
    """Epoch kept in each fold."""
    risks: list[float]
    """Out-of-fold predicted risk of each bag, in input order."""
    risk_threshold: float
    """Median of ``risks``; above it a patient is high risk."""
    n_high: int
    n_low: int
    logrank_p: float
    """Log-rank p-value of high- vs low-risk survival."""
    plot_path: str | None
    """The Kaplan–Meier PNG, if one was asked for."""

    def to_dict(self) -> dict:
        """Return the report as JSON-able nested dicts and lists."""
        return asdict(self)

    def to_json(self) -> str:
        """Return the report as an indented JSON string."""
        return json.dumps(self.to_dict(), indent=2)

    def to_markdown(self) -> str:
        """Return the c-index table and the log-rank result as Markdown."""
        lines = [f"### AMIL survival: {len(self.fold_cindex)}-fold CV", "", "| fold | c-index |", "|---|---|"]
        lines += [f"| {i} | {'–' if c is None else f'{c:.3f}'} |" for i, c in enumerate(self.fold_cindex)]
        lines += [
            f"| mean ± std | {self.cindex.mean:.3f} ± {self.cindex.std:.3f} |",
            f"| pooled | {self.pooled_cindex:.3f} |",
            "",
            f"Median-risk split: {self.n_high} high vs {self.n_low} low risk, log-rank p = {self.logrank_p:.3g}.",
        ]
        return "\n".join(lines) + "\n"


def _predict(model: AttentionMIL, bags: list[torch.Tensor], indices: np.ndarray, config: SurvivalConfig) -> np.ndarray:
    model.eval()
    risks = []
    with torch.no_grad():
        for start in range(0, len(indices), config.batch_size):
            risks.append(_forward(model, bags, indices[start : start + config.batch_size], config.device).cpu())
    return torch.cat(risks).numpy().astype(np.float64)


def _forward(model: AttentionMIL, bags: list[torch.Tensor], chunk: np.ndarray, device: str) -> torch.Tensor:
    x = torch.cat([bags[i] for i in chunk]).to(device)
    bag = torch.repeat_interleave(torch.arange(len(chunk)), torch.tensor([len(bags[i]) for i in chunk])).to(device)
    return model(x, bag, len(chunk))[0]


def _train_fold(
    bags: list[torch.Tensor],
    times: np.ndarray,
    events: np.ndarray,
    fit: np.ndarray,
    val: np.ndarray,
    config: SurvivalConfig,
    fold: int,
) -> tuple[AttentionMIL, int]:
    torch.manual_seed(config.seed + fold)
    model = AttentionMIL(
        bags[0].shape[1],
        config.hidden_channels,
        config.attention_channels,
        config.head_channels,
        config.dropout,
        config.risk_activation,
    ).to(config.device)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, config.lr_step_epochs, config.lr_gamma)
    t = torch.as_tensor(times, device=config.device)
    e = torch.as_tensor(events, device=config.device)
    rng = np.random.default_rng(config.seed + fold)
    warmup = int(config.selection_warmup * config.epochs)
    best_c, best_epoch, best_state = -1.0, config.epochs - 1, None
    for epoch in range(config.epochs):
        model.train()
        order = rng.permutation(fit)
        for start in range(0, len(order), config.batch_size):
            chunk = order[start : start + config.batch_size]
            if not events[chunk].any():  # no event: the partial likelihood is constant
                continue
            optimizer.zero_grad()
            index = torch.as_tensor(chunk, device=config.device)
            cox_loss(_forward(model, bags, chunk, config.device), t[index], e[index], config.ties).backward()
            optimizer.step()
        scheduler.step()
        if epoch >= warmup:
            c = concordance(times[val], events[val], _predict(model, bags, val, config))
            if c is not None and c > best_c:
                best_c, best_epoch, best_state = c, epoch, copy.deepcopy(model.state_dict())
    if best_state is not None:
        model.load_state_dict(best_state)
    return model, best_epoch


def survival_cv(
    bags: list[np.ndarray],
    times: np.ndarray,
    events: np.ndarray,
    groups: np.ndarray | None = None,
    config: SurvivalConfig | None = None,
    plot_path: str | Path | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> SurvivalReport:
    """Cross-validate an attention-MIL Cox model on bags of patch embeddings.

    Parameters
    ----------
    bags : list of np.ndarray
        B arrays of shape (n_b, d): the patch embeddings of each slide.
    times : np.ndarray, shape (B,)
        Follow-up time of each slide's patient (> 0).
    events : np.ndarray, shape (B,), bool or 0/1
        True where death (the event) was observed, False where censored.
    groups : np.ndarray, shape (B,), optional
        Patient of each slide; slides of one patient stay on one side of every split. Default:
        each slide its own patient.
    config : SurvivalConfig, optional
        Defaults to ``SurvivalConfig()``.
    plot_path : str or Path, optional
        Where to save the Kaplan–Meier PNG of the median-risk split.
    progress : callable, optional
        Called as ``progress(done, total)`` folds after each fold.

    Returns
    -------
    SurvivalReport

    Raises
    ------
    DownstreamError
        If the inputs are inconsistent (see :func:`~hmgdm_core.downstream.inputs.check_survival`) or
        there are fewer patients with (or without) an event than folds.
    ValueError
        If every out-of-fold risk is equal (a collapsed model), so the median split is undefined.
    """
    config = SurvivalConfig() if config is None else config
    data = check_survival(bags, times, events, groups)
    tensors = [torch.as_tensor(bag, dtype=torch.float32) for bag in data.bags]
    for observed, what in ((True, "an observed event"), (False, "censored follow-up")):
        n_patients = len(np.unique(data.groups[data.events == observed]))
        if 0 < n_patients < config.n_splits:
            raise DownstreamError(
                f"Only {n_patients} patients with {what} for {config.n_splits} folds stratified on event status; "
                "use fewer folds (n_splits ≥ 3) or a larger cohort."
            )
    strata = data.events.astype(np.int64)
    folds = grouped_folds(strata, data.groups, config.n_splits, config.seed)
    risks = np.zeros(len(tensors))
    fold_cindex, best_epochs = [], []
    for fold, (train, test) in enumerate(folds):
        # One of n_splits - 1 parts of the training portion is as large as the test fold (as the paper).
        fit, val = grouped_holdout(strata[train], data.groups[train], config.n_splits - 1, config.seed + fold)
        model, best_epoch = _train_fold(tensors, data.times, data.events, train[fit], train[val], config, fold)
        risks[test] = _predict(model, tensors, test, config)
        fold_cindex.append(concordance(data.times[test], data.events[test], risks[test]))
        best_epochs.append(best_epoch)
        if progress is not None:
            progress(fold + 1, len(folds))
    split = median_risk_split(data.times, data.events, risks)
    if plot_path is not None:
        plot_path = str(plot_kaplan_meier(split, plot_path))
    scored = [c for c in fold_cindex if c is not None]
    return SurvivalReport(
        config=asdict(config),
        fold_cindex=fold_cindex,
        cindex=MeanStd(float(np.mean(scored)), float(np.std(scored))),
        pooled_cindex=concordance(data.times, data.events, risks),
        best_epochs=best_epochs,
        risks=risks.tolist(),
        risk_threshold=split.threshold,
        n_high=split.n_high,
        n_low=split.n_low,
        logrank_p=split.logrank_p,
        plot_path=plot_path,
    )
