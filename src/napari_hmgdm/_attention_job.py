"""Fine-tune the gated-attention classifier on the marked patches' graphs (a worker job; no Qt, no viewer)."""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from hmgdm_core.downstream import EpochEnd, FinetuneConfig, iter_finetune, predict_graphs, pretrained_classifier
from hmgdm_core.errors import InputError
from hmgdm_core.graph.contract import EntityGraph
from hmgdm_core.overlays import EntityPoints, entity_points
from hmgdm_core.train import CancelToken, load_checkpoint
from hmgdm_core.vae import model_inputs

__all__ = ["WIDGET_FINETUNE_DEFAULTS", "AttentionRequest", "AttentionResult", "attention_job"]

# A few-click session fine-tunes on a handful of graphs: a few quick epochs, not the paper's 100 of batch 128.
WIDGET_FINETUNE_DEFAULTS = FinetuneConfig(epochs=15, batch_size=16)


@dataclass(frozen=True)
class AttentionRequest:
    """What to fine-tune: the pre-trained model, the region's patch graphs and the user's marks."""

    checkpoint: Path
    """Pre-trained H-MGDM checkpoint; its encoder is the classifier's starting point."""
    vae_path: Path | None
    """Entity VAE of a latent checkpoint (``None``: the ``vae.pt`` beside it, or raw mode)."""
    graphs: list[EntityGraph]
    """The patch graphs with pixel windows, in grid order."""
    marked_patches: np.ndarray
    """(M,) int: indices of the marked patches."""
    marked_classes: np.ndarray
    """(M,) int: class of each mark, in 0..num_classes-1."""
    num_classes: int
    """C, the classes offered."""
    config: FinetuneConfig
    """Epochs, batch size, learning rate, seed."""


@dataclass(frozen=True)
class AttentionResult:
    """The fine-tuned classifier's predictions over every patch, with its attention per entity."""

    probabilities: np.ndarray
    """(P, C) float: class probabilities of each patch."""
    attention: list[np.ndarray]
    """P arrays (N_p,) float32: the pooling weight of each node; each sums to 1."""
    points: EntityPoints
    """Every node of every patch (level-0 (y, x)) with its relative attention N_p · a (1 = uniform)."""
    epochs: int
    """Epochs run (fewer than asked when cancelled)."""


def attention_job(
    request: AttentionRequest, cancel: CancelToken
) -> Generator[tuple[int, int, EpochEnd | None], None, AttentionResult]:
    """Fine-tune encoder and gated-attention head on the marked graphs, then predict every patch.

    With a handful of marks there is nothing to hold out: the marked graphs are the training and the
    model-selection set, so the epoch kept is the one fitting the marks best.

    Yields
    ------
    tuple
        ``(epochs done, epochs asked, EpochEnd or None)`` before the first epoch and after each; cancelling
        stops after the current epoch and keeps its weights.

    Returns
    -------
    AttentionResult
    """
    config = request.config
    marked, classes = np.asarray(request.marked_patches), np.asarray(request.marked_classes)
    if len(np.unique(classes)) < 2:
        raise InputError("Mark patches of at least two classes before fine-tuning.")
    yield 0, config.epochs, None
    checkpoint = load_checkpoint(request.checkpoint)
    inputs = model_inputs(checkpoint.config.model.feature_dim, request.checkpoint, request.vae_path)
    graphs = inputs.graphs(request.graphs)
    torch.manual_seed(config.seed)
    classifier = pretrained_classifier(checkpoint.model, request.num_classes)
    train = [graphs[i] for i in marked]
    done = 0
    for epoch in iter_finetune(classifier, train, classes, train, classes, config):
        done = epoch.epoch + 1
        yield done, config.epochs, epoch
        if cancel.cancelled:
            break
    predictions = predict_graphs(classifier, graphs, config.batch_size, config.device)
    points = entity_points(request.graphs, predictions.attention, relative=True)
    return AttentionResult(predictions.proba, predictions.attention, points, done)
