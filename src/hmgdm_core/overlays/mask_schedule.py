"""Which entities were condition and which were target at each recorded training step (the mask-schedule overlay).

Every entity of a masked graph takes one of three roles, coded as small integers for napari Labels, Points and
Vectors layers:

* :data:`CONDITION` (0): seen by the encoder, not noised;
* :data:`TARGET` (1): noised and reconstructed by the decoder;
* :data:`HIDDEN` (2): neither; in the ``strict`` mask mode a condition edge touching a target node is kept out of
  the encoder (the decoder sees it as a clean token).

In the ``official`` mask mode the encoder also sees the target nodes; they are still coded :data:`TARGET`.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from hmgdm_core.diffusion import DiffusionConfig, NoiseSchedule
from hmgdm_core.errors import InputError
from hmgdm_core.masking import EntityMask
from hmgdm_core.train.events import MaskDrawn

__all__ = ["CONDITION", "HIDDEN", "TARGET", "MaskSchedule", "MaskScheduleRecorder", "edge_vectors", "label_roles",
           "mask_roles", "roles"]

CONDITION = 0
"""Role code of entities the encoder sees."""
TARGET = 1
"""Role code of noised, reconstructed entities."""
HIDDEN = 2
"""Role code of entities neither encoded nor reconstructed."""


def roles(target: np.ndarray, encoded: np.ndarray) -> np.ndarray:
    """Role codes from target and encoder-input flags.

    Parameters
    ----------
    target, encoded : ndarray, shape (K,), bool
        Whether each entity is a target, and whether the encoder sees it.

    Returns
    -------
    ndarray, shape (K,), int8
        :data:`TARGET` where ``target``, else :data:`CONDITION` where ``encoded``, else :data:`HIDDEN`.
    """
    target, encoded = np.asarray(target, dtype=bool), np.asarray(encoded, dtype=bool)
    if target.shape != encoded.shape:
        raise InputError(f"target {target.shape} and encoded {encoded.shape} flags differ in shape.")
    return np.where(target, TARGET, np.where(encoded, CONDITION, HIDDEN)).astype(np.int8)


def mask_roles(mask: EntityMask) -> tuple[np.ndarray, np.ndarray]:
    """Role codes of the nodes and directed edges of a split.

    Parameters
    ----------
    mask : EntityMask
        A split of one graph or a batch (:func:`~hmgdm_core.masking.sample_mask`, ``Reconstruction.mask``).

    Returns
    -------
    node_role : ndarray, shape (N,), int8
    edge_role : ndarray, shape (E,), int8
    """

    def flags(t: Tensor) -> np.ndarray:
        return t.detach().cpu().numpy()

    return (
        roles(flags(mask.node_target), flags(mask.node_encoded)),
        roles(flags(mask.edge_target), flags(mask.edge_encoded)),
    )


def edge_vectors(pos: Tensor | np.ndarray, edge_index: Tensor | np.ndarray) -> np.ndarray:
    """Directed edges as napari vectors: start point and displacement.

    Parameters
    ----------
    pos : Tensor or ndarray, shape (N, 2)
        Node points, ``(y, x)`` (level-0 pixels for a graph's ``pos``).
    edge_index : Tensor or ndarray, shape (2, E), int
        Directed edges (both directions of each pair: two opposite vectors per pair).

    Returns
    -------
    ndarray, shape (E, 2, 2), float32
        ``[[y, x], [dy, dx]]`` from the source node to the destination node, in the units of ``pos``.
    """
    pos = torch.as_tensor(pos).detach().cpu().numpy().astype(np.float32)
    edge_index = torch.as_tensor(edge_index).detach().cpu().numpy().astype(np.int64)
    start, end = pos[edge_index[0]], pos[edge_index[1]]
    return np.stack([start, end - start], axis=1)


def label_roles(node_role: np.ndarray, entity_id: np.ndarray, num_labels: int) -> np.ndarray:
    """Per-step lookup tables from entity label to role, for painting a label image by role.

    Parameters
    ----------
    node_role : ndarray, shape (S, N), int
        Role code of each node at each step (:attr:`MaskSchedule.node_role`).
    entity_id : ndarray, shape (N,), int
        Label of each node's entity in the region's label image (the graph's ``entity_id``), ≥ 1.
    num_labels : int
        One more than the largest label of the label image.

    Returns
    -------
    ndarray, shape (S, num_labels), uint8
        ``role + 1`` at each node's label (so 0 stays background), 0 for background and for labels of no node:
        ``lookup[s][labels]`` is step ``s``'s role image.
    """
    node_role = np.asarray(node_role)
    entity_id = np.asarray(entity_id, dtype=np.int64).reshape(-1)
    if node_role.ndim != 2 or node_role.shape[1] != len(entity_id):
        raise InputError(f"node_role must be (S, {len(entity_id)}), got {node_role.shape}.")
    if len(entity_id) and (entity_id.min() < 1 or entity_id.max() >= num_labels):
        raise InputError(f"entity ids must lie in 1..{num_labels - 1}.")
    lookup = np.zeros((node_role.shape[0], num_labels), dtype=np.uint8)
    lookup[:, entity_id] = node_role.astype(np.uint8) + 1
    return lookup


@dataclass(frozen=True)
class MaskSchedule:
    """The roles of one graph's entities at the recorded steps, with each step's noise level."""

    dataset_index: int
    """Index of the graph in the training dataset."""
    steps: np.ndarray
    """(S,) int64: recorded training steps (1-based), ascending."""
    t: np.ndarray
    """(S,) int64: the graph's diffusion timestep at each step."""
    alpha_bar: np.ndarray
    """(S,) float64: ᾱ_t, the fraction of signal variance kept in the noised targets."""
    noise_std: np.ndarray
    """(S,) float64: √(1 - ᾱ_t), the standard deviation of the noise added to the targets."""
    node_role: np.ndarray
    """(S, N) int8: role code of each node at each step."""
    edge_role: np.ndarray
    """(S, E) int8: role code of each directed edge at each step."""


class MaskScheduleRecorder:
    """Collect one graph's masks from the :class:`~hmgdm_core.train.MaskDrawn` events of a run.

    Feed it every event (:meth:`record` ignores other graphs and steps), then call :meth:`schedule`.

    Parameters
    ----------
    dataset_index : int
        The graph to follow.
    diffusion : DiffusionConfig, optional
        The run's schedule (``PretrainConfig.diffusion``), for ᾱ_t; default: the paper's.
    steps : collection of int, optional
        Steps to keep; default: every step whose batch holds the graph (once per epoch).
    """

    def __init__(
        self, dataset_index: int, diffusion: DiffusionConfig | None = None, steps: Collection[int] | None = None
    ) -> None:
        self.dataset_index = dataset_index
        self.steps = None if steps is None else frozenset(steps)
        self._alpha_bar = NoiseSchedule(diffusion or DiffusionConfig()).alphas_cumprod.double().numpy()
        self._records: list[tuple[int, int, np.ndarray, np.ndarray]] = []

    def record(self, event: MaskDrawn) -> bool:
        """Keep the graph's roles from ``event`` if it holds the graph at a wanted step.

        Parameters
        ----------
        event : MaskDrawn

        Returns
        -------
        bool
            Whether the event was recorded.
        """
        if self.dataset_index not in event.dataset_indices or (self.steps is not None and event.step not in self.steps):
            return False
        position = event.dataset_indices.index(self.dataset_index)
        nodes, edges = event.node_graph == position, event.edge_graph == position
        node_role = roles(event.node_target[nodes], event.node_encoded[nodes])
        edge_role = roles(event.edge_target[edges], event.edge_encoded[edges])
        self._records.append((event.step, int(event.t[position]), node_role, edge_role))
        return True

    def schedule(self) -> MaskSchedule:
        """The recorded steps, in step order.

        Returns
        -------
        MaskSchedule
        """
        records = sorted(self._records, key=lambda r: r[0])
        t = np.array([r[1] for r in records], dtype=np.int64)
        alpha_bar = self._alpha_bar[t]
        return MaskSchedule(
            dataset_index=self.dataset_index,
            steps=np.array([r[0] for r in records], dtype=np.int64),
            t=t,
            alpha_bar=alpha_bar,
            noise_std=np.sqrt(1.0 - alpha_bar),
            node_role=np.stack([r[2] for r in records]) if records else np.zeros((0, 0), np.int8),
            edge_role=np.stack([r[3] for r in records]) if records else np.zeros((0, 0), np.int8),
        )
