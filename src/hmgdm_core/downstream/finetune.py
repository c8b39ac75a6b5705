"""End-to-end fine-tuning of a :class:`GraphClassifier`, with model selection on validation only.

The official loop (method spec §8.1, §11.14) never zeroes gradients and evaluates the test fold
every epoch with no selection rule. Here every step starts from zero gradients, the epoch kept
is the one with the lowest validation loss, and the test fold is only predicted once, by
:func:`finetune_cv`, after training ends. Gradient clipping covers every trained parameter,
not only the head. The official plateau scheduler is left out: stepped every 20 epochs with
patience 10 it barely acts (§11.15).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch_geometric.data import Batch, Data

from hmgdm_core.downstream.graph_classifier import GraphClassifier, predict_graphs
from hmgdm_core.downstream.pretrained_encoder import PretrainedEncoder
from hmgdm_core.downstream.report import ClassificationReport, build_report, encode_labels
from hmgdm_core.downstream.splits import grouped_folds, grouped_holdout
from hmgdm_core.errors import DownstreamError
from hmgdm_core.train.memory import budget_bytes, pack_by_memory

__all__ = ["EpochEnd", "FinetuneConfig", "FinetuneResult", "finetune", "finetune_cv", "iter_finetune"]


@dataclass(frozen=True)
class FinetuneConfig:
    """Fine-tuning hyper-parameters; the defaults are the paper's (method spec §8.1)."""

    epochs: int = 100
    """Passes over the training graphs."""
    batch_size: int = 128
    """Graphs per optimisation step."""
    lr: float = 3e-4
    """Adam learning rate."""
    betas: tuple[float, float] = (0.95, 0.999)
    """Adam betas."""
    grad_clip: float = 100.0
    """Maximum global L2 norm of the gradient of all trained parameters."""
    class_weight: Literal["balanced", "none"] = "balanced"
    """``balanced``: cross-entropy weights n / (C · n_c) from the training labels (the official
    weights were hard-coded for one dataset); ``none``: unweighted."""
    validation_splits: int = 5
    """1 / validation_splits of each training part, by group, is held out for model selection (20 %)."""
    n_splits: int = 5
    """Folds of :func:`finetune_cv`."""
    seed: int = 0
    """Seed of the splits, the batch order and, in :func:`finetune_cv`, of model initialisation."""
    device: str = "cpu"
    """Torch device to train on, e.g. ``"cuda"``."""
    memory_gb: float | None = None
    """GiB one forward/backward pass of an H-MGDM encoder may use: each batch is split into passes that fit
    (:mod:`hmgdm_core.train.memory`), with the same loss and gradient. ``None``: from the free RAM / GPU memory."""

    def __post_init__(self) -> None:
        if self.class_weight not in ("balanced", "none"):
            raise DownstreamError(f"class_weight must be 'balanced' or 'none', got {self.class_weight!r}.")
        if self.epochs < 1 or self.batch_size < 1 or self.lr <= 0 or self.grad_clip <= 0:
            raise DownstreamError("epochs and batch_size must be ≥ 1, and lr and grad_clip > 0.")


@dataclass(frozen=True)
class EpochEnd:
    """Losses of one finished epoch."""

    epoch: int
    """0-based epoch index."""
    train_loss: float
    """Mean class-weighted cross-entropy of the epoch's training steps."""
    val_loss: float
    """Class-weighted cross-entropy on the validation graphs, in evaluation mode."""
    val_accuracy: float
    """Fraction of validation graphs classified right."""
    best_epoch: int
    """Epoch with the lowest validation loss so far; its weights are the ones kept."""


@dataclass(frozen=True)
class FinetuneResult:
    """What :func:`finetune` did; the model holds the weights of ``best_epoch``."""

    best_epoch: int
    history: list[EpochEnd]


def _class_weights(labels: np.ndarray, num_classes: int, mode: str, device: str) -> torch.Tensor | None:
    if mode == "none":
        return None
    counts = np.bincount(labels, minlength=num_classes).astype(np.float64)
    weights = np.divide(len(labels), num_classes * counts, out=np.zeros(num_classes), where=counts > 0)
    return torch.as_tensor(weights, dtype=torch.float32, device=device)


def iter_finetune(
    model: GraphClassifier,
    train_graphs: Sequence[Data],
    train_labels: np.ndarray,
    val_graphs: Sequence[Data],
    val_labels: np.ndarray,
    config: FinetuneConfig,
) -> Iterator[EpochEnd]:
    """Train ``model`` epoch by epoch, yielding after each; then load the best epoch's weights.

    Parameters
    ----------
    model : GraphClassifier
        Trained in place (encoder and head), moved to ``config.device``. A :class:`PretrainedEncoder` that
        standardises its latents and has no statistics yet is first fitted on ``train_graphs``.
    train_graphs, val_graphs : sequence of Data
        Graphs collated with :meth:`Batch.from_data_list` and passed to the encoder.
    train_labels, val_labels : np.ndarray, shape (n_train,) and (n_val,), int
        Class indices in ``[0, model.num_classes)``.
    config : FinetuneConfig

    Yields
    ------
    EpochEnd
        One per epoch. If the caller stops iterating early, the model keeps its last weights.

    Raises
    ------
    DownstreamError
        If there are no training or no validation graphs.
    """
    if not len(train_graphs) or not len(val_graphs):
        raise DownstreamError(
            f"Fine-tuning needs training and validation graphs, got {len(train_graphs)} and {len(val_graphs)}."
        )
    device = config.device
    model.to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr, betas=config.betas)
    weight = _class_weights(train_labels, model.num_classes, config.class_weight, device)
    train_y = torch.as_tensor(train_labels, dtype=torch.long, device=device)
    val_y = torch.as_tensor(val_labels, dtype=torch.long, device=device)
    rng = np.random.default_rng(config.seed)
    best_loss, best_epoch, best_state = float("inf"), -1, None
    encoder = model.encoder.model.config if isinstance(model.encoder, PretrainedEncoder) else None
    budget = budget_bytes(config.memory_gb, torch.device(device))
    if isinstance(model.encoder, PretrainedEncoder) and model.encoder.standardise and not model.encoder.fitted:
        # Once, with the weights fine-tuning starts from; a model trained further keeps the statistics it has.
        model.encoder.fit_standardisation(train_graphs, config.batch_size, device, config.memory_gb)
    for epoch in range(config.epochs):
        model.train()
        losses = []
        order = rng.permutation(len(train_graphs))
        for start in range(0, len(order), config.batch_size):
            chunk = order[start : start + config.batch_size]
            optimizer.zero_grad()
            y = train_y[torch.as_tensor(chunk, device=device)]
            # The batch's weighted mean, accumulated over passes: each pass adds its share of the sum.
            total = weight[y].sum() if weight is not None else torch.tensor(float(len(chunk)), device=device)
            passes = [list(range(len(chunk)))]
            if encoder is not None:
                sizes = [(train_graphs[i].num_nodes, train_graphs[i].edge_index.shape[1]) for i in chunk]
                passes = pack_by_memory(sizes, encoder, budget, what="fine-tuning")
            loss_value = 0.0
            for part in passes:
                batch = Batch.from_data_list([train_graphs[chunk[k]] for k in part]).to(device)
                logits, _ = model(batch)
                loss = F.cross_entropy(logits, y[part], weight=weight, reduction="sum") / total
                loss.backward()
                loss_value += loss.item()
            torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
            optimizer.step()
            losses.append(loss_value)
        proba = torch.as_tensor(predict_graphs(model, val_graphs, config.batch_size, device).proba, device=device)
        val_loss = F.nll_loss(torch.log(proba.clamp_min(1e-12)), val_y, weight=weight).item()
        if val_loss < best_loss:
            best_loss, best_epoch, best_state = val_loss, epoch, copy.deepcopy(model.state_dict())
        val_accuracy = (proba.argmax(dim=1) == val_y).float().mean().item()
        yield EpochEnd(epoch, float(np.mean(losses)), val_loss, val_accuracy, best_epoch)
    if best_state is not None:  # None only if every validation loss was NaN: keep the last weights
        model.load_state_dict(best_state)


def finetune(
    model: GraphClassifier,
    train_graphs: Sequence[Data],
    train_labels: np.ndarray,
    val_graphs: Sequence[Data],
    val_labels: np.ndarray,
    config: FinetuneConfig | None = None,
) -> FinetuneResult:
    """Run :func:`iter_finetune` to the end; the model is left with the best validation epoch's weights.

    Parameters
    ----------
    model, train_graphs, train_labels, val_graphs, val_labels
        As in :func:`iter_finetune`.
    config : FinetuneConfig, optional
        Defaults to ``FinetuneConfig()``.

    Returns
    -------
    FinetuneResult
    """
    config = FinetuneConfig() if config is None else config
    history = list(iter_finetune(model, train_graphs, train_labels, val_graphs, val_labels, config))
    return FinetuneResult(history[-1].best_epoch, history)


def finetune_cv(
    make_model: Callable[[int], GraphClassifier],
    graphs: Sequence[Data],
    labels: np.ndarray,
    groups: np.ndarray,
    config: FinetuneConfig | None = None,
    method: str = "fine-tuned gated-attention classifier",
) -> ClassificationReport:
    """Fine-tune a fresh model per grouped fold and report its test metrics.

    Parameters
    ----------
    make_model : callable
        ``make_model(num_classes)`` returns a new, untrained :class:`GraphClassifier`; it is
        called once per fold after seeding torch with ``config.seed + fold``.
    graphs : sequence of Data, length n
    labels : np.ndarray, shape (n,), int or str
        Class of each graph.
    groups : np.ndarray, shape (n,)
        Slide or patient of each graph; splits never cross groups, neither test nor validation.
    config : FinetuneConfig, optional
        Defaults to ``FinetuneConfig()``.
    method : str
        What the report says was evaluated.

    Returns
    -------
    ClassificationReport
        Same metrics as the linear probe's, so the two compare directly.
    """
    config = FinetuneConfig() if config is None else config
    labels, groups = np.asarray(labels), np.asarray(groups)
    if len(labels) != len(graphs) or len(groups) != len(graphs):
        raise DownstreamError(f"{len(graphs)} graphs but {len(labels)} labels and {len(groups)} groups.")
    codes, class_names = encode_labels(labels)
    folds = grouped_folds(codes, groups, config.n_splits, config.seed)
    proba = np.zeros((len(codes), len(class_names)))
    for fold, (train, test) in enumerate(folds):
        fit, val = grouped_holdout(codes[train], groups[train], config.validation_splits, config.seed)
        fit, val = train[fit], train[val]
        torch.manual_seed(config.seed + fold)
        model = make_model(len(class_names))
        finetune(model, [graphs[i] for i in fit], codes[fit], [graphs[i] for i in val], codes[val], config)
        proba[test] = predict_graphs(model, [graphs[i] for i in test], config.batch_size, config.device).proba
    return build_report(
        method, asdict(config), codes, class_names, [test for _, test in folds], proba
    )
