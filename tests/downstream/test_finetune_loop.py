import numpy as np
import pytest
import torch
from torch import nn
from torch_geometric.data import Batch, Data

from hmgdm_core.downstream.finetune import FinetuneConfig, finetune, finetune_cv
from hmgdm_core.downstream.graph_classifier import GraphClassifier, predict_graphs


class StandInEncoder(nn.Module):
    """Per-node MLP: the stand-in for the H-MGDM encoder's ``encoder(batch) -> (h, batch)`` contract."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(in_channels, out_channels), nn.ReLU())

    def forward(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        return self.mlp(batch.x), batch.batch


def _graphs(n: int = 150, seed: int = 0) -> tuple[list[Data], np.ndarray, np.ndarray]:
    """Graphs of noise nodes where two nodes carry a class-specific feature: learnable only by attending."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, n)
    graphs = []
    for label in labels:
        nodes = int(rng.integers(6, 14))
        x = rng.normal(size=(nodes, 6)).astype(np.float32)
        x[rng.choice(nodes, 2, replace=False), label] += 3.0
        graphs.append(Data(x=torch.from_numpy(x), edge_index=torch.empty(2, 0, dtype=torch.long)))
    groups = rng.integers(0, 25, n)
    return graphs, labels, groups


def _model(num_classes: int) -> GraphClassifier:
    return GraphClassifier(StandInEncoder(6, 16), in_channels=16, num_classes=num_classes, hidden_channels=16)


def test_finetune_cv_learns_a_learnable_label() -> None:
    graphs, labels, groups = _graphs()
    config = FinetuneConfig(epochs=25, batch_size=16, lr=1e-2, n_splits=3)
    report = finetune_cv(_model, graphs, labels, groups, config)
    assert report.method == "fine-tuned gated-attention classifier"
    assert report.summary["accuracy"].mean > 0.8
    assert sum(f.n_test for f in report.folds) == len(graphs)


def test_kept_weights_are_those_of_the_best_validation_epoch() -> None:
    graphs, labels, _ = _graphs(n=90)
    torch.manual_seed(0)
    model = _model(3)
    config = FinetuneConfig(epochs=8, batch_size=16, lr=3e-2, class_weight="none")
    result = finetune(model, graphs[:60], labels[:60], graphs[60:], labels[60:], config)
    losses = [epoch.val_loss for epoch in result.history]
    assert result.best_epoch == int(np.argmin(losses))
    assert [epoch.epoch for epoch in result.history] == list(range(8))
    proba = predict_graphs(model, graphs[60:]).proba
    val_loss = -np.mean(np.log(proba[np.arange(30), labels[60:]]))
    assert val_loss == pytest.approx(losses[result.best_epoch], rel=1e-4)


def test_predictions_keep_per_graph_attention() -> None:
    graphs, _, _ = _graphs(n=5)
    predictions = predict_graphs(_model(3), graphs, batch_size=2)
    assert predictions.proba.shape == (5, 3)
    assert np.allclose(predictions.proba.sum(1), 1, atol=1e-5)
    assert [len(a) for a in predictions.attention] == [g.num_nodes for g in graphs]
    assert all(np.isclose(a.sum(), 1, atol=1e-5) for a in predictions.attention)
