"""Survival prediction from bags of patch embeddings: AMIL, Cox loss, c-index, Kaplan–Meier."""

from hmgdm_core.downstream.survival.amil import AttentionMIL
from hmgdm_core.downstream.survival.cox import cox_loss, cox_partial_log_likelihood
from hmgdm_core.downstream.survival.cross_validation import SurvivalConfig, SurvivalReport, survival_cv
from hmgdm_core.downstream.survival.evaluation import (
    KaplanMeierSplit,
    concordance,
    median_risk_split,
    plot_kaplan_meier,
)

__all__ = [
    "AttentionMIL",
    "KaplanMeierSplit",
    "SurvivalConfig",
    "SurvivalReport",
    "concordance",
    "cox_loss",
    "cox_partial_log_likelihood",
    "median_risk_split",
    "plot_kaplan_meier",
    "survival_cv",
]
