"""Typed events yielded by :func:`~hmgdm_core.train.pretrain`, and the cooperative cancel token."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = [
    "CancelToken",
    "Cancelled",
    "CheckpointWritten",
    "Failed",
    "Finished",
    "MaskDrawn",
    "Started",
    "StepDone",
    "StepSkipped",
    "TrainEvent",
]


class CancelToken:
    """Thread-safe flag checked by the training loop before every step."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        """Ask the run to stop after the current step (it writes a checkpoint, then yields :class:`Cancelled`)."""
        self._event.set()

    @property
    def cancelled(self) -> bool:
        """Whether :meth:`cancel` was called."""
        return self._event.is_set()


@dataclass(frozen=True)
class Started:
    """The run is set up."""

    start_step: int
    """Steps already done (non-zero when resuming)."""
    total_steps: int
    """Steps the run will reach."""
    num_graphs: int
    """Graphs in the dataset."""
    device: str
    """Device the model runs on."""
    world_size: int
    """Processes sharing each batch (1 without DDP)."""


@dataclass(frozen=True)
class MaskDrawn:
    """The condition/target split of this step's batch, for the mask-schedule overlay."""

    step: int
    """Step (1-based) the mask belongs to."""
    dataset_indices: tuple[int, ...]
    """Dataset index of each graph of the batch, in batch order."""
    node_graph: np.ndarray
    """(N,) int64: position of each node's graph in ``dataset_indices``."""
    node_target: np.ndarray
    """(N,) bool: target nodes (nodes in their graph's order)."""
    edge_target: np.ndarray
    """(E,) bool: target directed edges (edges in their graph's order)."""
    edge_graph: np.ndarray
    """(E,) int64: position of each edge's graph in ``dataset_indices``."""
    node_encoded: np.ndarray
    """(N,) bool: nodes the encoder saw (condition nodes; every node in the ``official`` mask mode)."""
    edge_encoded: np.ndarray
    """(E,) bool: edges the encoder saw (strict mode hides condition edges that touch a target node)."""
    t: np.ndarray
    """(G,) int64: diffusion timestep of each graph, in ``dataset_indices`` order."""


@dataclass(frozen=True)
class StepDone:
    """One optimisation step finished."""

    step: int
    """Steps done so far (1-based)."""
    epoch: int
    """0-based epoch of the step."""
    loss: float
    """Weighted total loss."""
    kl: float
    """KL term (unweighted)."""
    node: float
    """Target-node MSE (unweighted)."""
    edge: float
    """Target-edge MSE (unweighted)."""
    lr: float
    """Learning rate used by the step."""
    graphs_per_second: float
    """Throughput of this step, all processes together."""
    eta_seconds: float
    """Estimated time to the last step at the recent throughput."""


@dataclass(frozen=True)
class StepSkipped:
    """A step's loss or gradient was not finite; the parameters were left unchanged."""

    step: int
    """Step that was skipped (1-based, it still counts as done)."""
    reason: str
    """What was not finite."""
    consecutive: int
    """Skipped steps in a row, this one included."""


@dataclass(frozen=True)
class CheckpointWritten:
    """A checkpoint was written atomically."""

    step: int
    """Steps it contains."""
    path: Path
    """The checkpoint file."""


@dataclass(frozen=True)
class Finished:
    """The run reached its last step."""

    step: int
    """Steps done."""
    checkpoint: Path | None
    """Final checkpoint (``None`` on ranks other than 0)."""


@dataclass(frozen=True)
class Cancelled:
    """The run stopped because its :class:`CancelToken` was cancelled."""

    step: int
    """Steps done."""
    checkpoint: Path | None
    """Checkpoint to resume from (``None`` on ranks other than 0)."""


@dataclass(frozen=True)
class Failed:
    """The run stopped on an error; the generator raises it right after yielding this."""

    step: int
    """Steps done."""
    message: str
    """What went wrong and what to do."""


TrainEvent = Started | MaskDrawn | StepDone | StepSkipped | CheckpointWritten | Finished | Cancelled | Failed
