"""The pre-trained H-MGDM encoder as the encoder of a :class:`GraphClassifier` (method spec §8.1)."""

from __future__ import annotations

import copy

from torch import Tensor, nn
from torch_geometric.data import Batch

from hmgdm_core.downstream.graph_classifier import GraphClassifier
from hmgdm_core.masking import no_mask
from hmgdm_core.model import HMGDM

__all__ = ["PretrainedEncoder", "pretrained_classifier"]


class PretrainedEncoder(nn.Module):
    """Node latents μ_v of whole graphs (no mask, no noise) from a pre-trained H-MGDM.

    The official evaluation samples z = μ + σ·ε even at evaluation (spec §8.1, a quirk); μ is used here, as in
    :func:`~hmgdm_core.embed.embed_dataset`, so predictions are deterministic. The input embeddings and the
    encoder are fine-tuned; the decoder gets no gradient and is left as it is.

    Parameters
    ----------
    model : HMGDM
        The pre-trained network (``load_checkpoint(path).model``).
    """

    def __init__(self, model: HMGDM) -> None:
        super().__init__()
        self.model = model

    def forward(self, batch: Batch) -> tuple[Tensor, Tensor]:
        """Return the node latents (N, H) and the graph index (N,) of each node."""
        mask = no_mask(batch.num_nodes, batch.edge_index.shape[1], batch.x.device)
        return self.model.encode(batch, mask).node_mu, batch.batch


def pretrained_classifier(model: HMGDM, num_classes: int, hidden_channels: int = 128) -> GraphClassifier:
    """A gated-attention graph classifier on the pre-trained encoder (official head: H → 128 → C).

    Parameters
    ----------
    model : HMGDM
        The pre-trained network; the classifier trains a deep copy of it, so ``model`` stays as it was and every
        call (e.g. every fold of :func:`~hmgdm_core.downstream.finetune_cv`) starts from the same weights.
    num_classes : int
        C.
    hidden_channels : int
        Width of the head's hidden layer and of the attention MLP.

    Returns
    -------
    GraphClassifier
    """
    return GraphClassifier(
        PretrainedEncoder(copy.deepcopy(model)), model.config.hidden_dim, num_classes, hidden_channels
    )
