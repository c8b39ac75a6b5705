"""Learning-rate control: linear warm-up, then ReduceLROnPlateau checked every few epochs."""

from __future__ import annotations

import math
from typing import Any

from hmgdm_core.train.config import TrainConfig

__all__ = ["LearningRate"]


class LearningRate:
    """lr(step) = base · scale · min(1, step / warmup); ``scale`` shrinks by ``factor`` on a plateau.

    Every ``plateau_every_epochs`` epochs the mean reconstruction loss of the last epoch is compared with the
    best seen; after more than ``patience`` checks without an improvement (relative 1e-4, as PyTorch) the scale
    is multiplied by ``factor`` without going under ``min_lr``. All state is plain numbers, for checkpoints.
    """

    def __init__(self, config: TrainConfig) -> None:
        self.config = config
        self.scale = 1.0
        self.best = math.inf
        self.bad_checks = 0

    def at(self, step: int) -> float:
        """Learning rate of the 1-based ``step``."""
        warmup = min(1.0, step / self.config.warmup_steps) if self.config.warmup_steps else 1.0
        return max(self.config.lr * self.scale, self.config.min_lr) * warmup

    def end_epoch(self, epoch: int, mean_loss: float) -> None:
        """Record the 0-based ``epoch``'s mean 0.5·L_node + 0.5·L_edge; a plateau check every few epochs."""
        if (epoch + 1) % self.config.plateau_every_epochs:
            return
        if mean_loss < self.best * (1 - 1e-4):
            self.best, self.bad_checks = mean_loss, 0
            return
        self.bad_checks += 1
        if self.bad_checks > self.config.plateau_patience:
            self.scale *= self.config.plateau_factor
            self.bad_checks = 0

    def state_dict(self) -> dict[str, Any]:
        """Plain-number state."""
        return {"scale": self.scale, "best": self.best, "bad_checks": self.bad_checks}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`."""
        self.scale, self.best, self.bad_checks = state["scale"], state["best"], state["bad_checks"]
