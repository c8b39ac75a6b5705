"""The H-MGDM stage-2 network (one module per file) and its pre-training objective."""

from hmgdm_core.model.config import ModelConfig
from hmgdm_core.model.encoder import EncoderOutput
from hmgdm_core.model.hmgdm import HMGDM, Prediction, graph_ids
from hmgdm_core.model.loss import (
    EntityNoise,
    LossScale,
    LossWeights,
    PretrainingLoss,
    draw_mask,
    draw_noise,
    pretraining_loss,
)

__all__ = [
    "HMGDM",
    "EncoderOutput",
    "EntityNoise",
    "LossScale",
    "LossWeights",
    "ModelConfig",
    "Prediction",
    "PretrainingLoss",
    "draw_mask",
    "draw_noise",
    "graph_ids",
    "pretraining_loss",
]
