"""Downstream evaluation of frozen or fine-tuned representations (method spec §8).

* :mod:`~hmgdm_core.downstream.classify`: linear / kNN probes on frozen embeddings with
  stratified, group-aware cross-validation (``hmgdm classify``).
* :mod:`~hmgdm_core.downstream.finetune`: end-to-end fine-tuning of any graph encoder with a
  gated-attention pooling head, selected on validation only.
* :mod:`~hmgdm_core.downstream.survival`: attention-MIL Cox models on bags of patch embeddings,
  c-index and Kaplan–Meier analysis (``hmgdm survival``).
* :mod:`~hmgdm_core.downstream.inputs`: the ``.npz`` file formats the CLI reads.
* :mod:`~hmgdm_core.downstream.measurement_features`: hand-crafted patch features, each graph's entity
  measurements pooled (the representation benchmark's baseline; appended to embeddings, the hybrid features).
"""

from hmgdm_core.downstream.classify import ClassifyConfig, classify_embeddings, make_probe
from hmgdm_core.downstream.finetune import (
    EpochEnd,
    FinetuneConfig,
    FinetuneResult,
    finetune,
    finetune_cv,
    iter_finetune,
)
from hmgdm_core.downstream.graph_classifier import GraphClassifier, GraphPredictions, predict_graphs
from hmgdm_core.downstream.inputs import (
    ClassificationData,
    SurvivalData,
    check_classification,
    check_survival,
    load_classification_npz,
    load_survival_npz,
    save_classification_npz,
    save_survival_npz,
)
from hmgdm_core.downstream.measurement_features import pooled_measurements
from hmgdm_core.downstream.metrics import FoldMetrics, MeanStd
from hmgdm_core.downstream.pooling import GatedAttentionPooling
from hmgdm_core.downstream.pretrained_encoder import PretrainedEncoder, pretrained_classifier
from hmgdm_core.downstream.report import ClassificationReport
from hmgdm_core.downstream.splits import grouped_folds, grouped_holdout

__all__ = [
    "ClassificationData",
    "ClassificationReport",
    "ClassifyConfig",
    "EpochEnd",
    "FinetuneConfig",
    "FinetuneResult",
    "FoldMetrics",
    "GatedAttentionPooling",
    "GraphClassifier",
    "GraphPredictions",
    "MeanStd",
    "PretrainedEncoder",
    "SurvivalData",
    "check_classification",
    "check_survival",
    "classify_embeddings",
    "finetune",
    "finetune_cv",
    "grouped_folds",
    "grouped_holdout",
    "iter_finetune",
    "load_classification_npz",
    "load_survival_npz",
    "make_probe",
    "pooled_measurements",
    "predict_graphs",
    "pretrained_classifier",
    "save_classification_npz",
    "save_survival_npz",
]
