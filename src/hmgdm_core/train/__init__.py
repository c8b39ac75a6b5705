"""Pre-training: a generator of typed events, checkpoints, device and process-group handling."""

from hmgdm_core.train.checkpoint import Checkpoint, data_fingerprint, latest_checkpoint, load_checkpoint
from hmgdm_core.train.config import PretrainConfig, TrainConfig
from hmgdm_core.train.device import resolve_device
from hmgdm_core.train.events import (
    Cancelled,
    CancelToken,
    CheckpointWritten,
    Failed,
    Finished,
    MaskDrawn,
    Started,
    StepDone,
    StepSkipped,
    TrainEvent,
)
from hmgdm_core.train.loop import drain, pretrain

__all__ = [
    "CancelToken",
    "Cancelled",
    "Checkpoint",
    "CheckpointWritten",
    "Failed",
    "Finished",
    "MaskDrawn",
    "PretrainConfig",
    "Started",
    "StepDone",
    "StepSkipped",
    "TrainConfig",
    "TrainEvent",
    "data_fingerprint",
    "drain",
    "latest_checkpoint",
    "load_checkpoint",
    "pretrain",
    "resolve_device",
]
