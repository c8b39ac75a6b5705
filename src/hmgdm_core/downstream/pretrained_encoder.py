"""The pre-trained H-MGDM encoder as the encoder of a :class:`GraphClassifier` (method spec §8.1)."""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
from torch import Tensor, nn
from torch_geometric.data import Batch, Data
from torch_geometric.utils import scatter

from hmgdm_core.downstream.graph_classifier import GraphClassifier
from hmgdm_core.embed import embed_dataset
from hmgdm_core.masking import no_mask
from hmgdm_core.model import HMGDM

__all__ = ["PretrainedEncoder", "pretrained_classifier"]

# Added to the variance before the square root (BatchNorm's ε): a unit that barely varies over the training
# graphs is not blown up into one that fine-tuning can swing by orders of magnitude.
_VARIANCE_EPS = 1e-5


def _with_edge_context(node_mu: Tensor, edge_mu: Tensor, edge_index: Tensor) -> Tensor:
    """[μ_v ‖ mean μ_e over the edges leaving v], shape (N, 2H); a node without edges gets zeros."""
    incident = scatter(edge_mu, edge_index[0], 0, node_mu.shape[0], reduce="mean")
    return torch.cat([node_mu, incident], dim=1)


class PretrainedEncoder(nn.Module):
    """Node vectors of whole graphs (no mask, no noise) from a pre-trained H-MGDM's latent means.

    The official evaluation samples z = μ + σ·ε even at evaluation (spec §8.1, a quirk); μ is used here, as in
    :func:`~hmgdm_core.embed.embed_dataset`, so predictions are deterministic. The input embeddings and the
    encoder are fine-tuned; the decoder gets no gradient and is left as it is.

    The paper's head reads the node latents μ_v as they are. Two options widen and rescale what it reads:

    * ``edge_context``: each node's μ_v is followed by the mean μ_e of its edges (both directions of a pair carry
      the same latent), so the attention pooling, still one weight per node, also sees the edge windows, which
      the linear probe's patch vector pools too.
    * ``standardise``: the vectors are returned as (v − m) / s, with the per-unit mean m and standard deviation s
      that :meth:`fit_standardisation` measures once on the training graphs with the pre-trained weights (the
      linear probe's standardisation, fixed while the encoder fine-tunes, so the loss of a batch does not depend
      on how it is split into passes). Until then they are the identity.

    Parameters
    ----------
    model : HMGDM
        The pre-trained network (``load_checkpoint(path).model``).
    standardise : bool
        Standardise the vectors the head reads.
    edge_context : bool
        Append the mean latent of each node's edges (ignored by a model without the edge branch).
    """

    def __init__(self, model: HMGDM, standardise: bool = False, edge_context: bool = False) -> None:
        super().__init__()
        self.model = model
        self.standardise = standardise
        self.edge_context = edge_context and model.config.edge_branch
        # The width of the node vectors the head reads.
        self.out_channels = model.config.hidden_dim * (2 if self.edge_context else 1)
        if standardise:
            # Buffers, so a fine-tuned classifier's state carries the statistics it was trained with.
            self.register_buffer("latent_mean", torch.zeros(self.out_channels))
            self.register_buffer("latent_std", torch.ones(self.out_channels))
            self.register_buffer("fitted", torch.tensor(False))

    @torch.no_grad()
    def fit_standardisation(
        self, graphs: Sequence[Data], batch_size: int = 32, device: str = "cpu", memory_gb: float | None = None
    ) -> None:
        """Measure m and s of the node vectors over every node of ``graphs`` (the training graphs), once.

        Parameters
        ----------
        graphs : sequence of Data
            Graphs following the graph contract; at least one node in all.
        batch_size, device, memory_gb
            As in :func:`~hmgdm_core.embed.embed_dataset`.
        """
        if not self.standardise:
            raise ValueError("fit_standardisation needs PretrainedEncoder(standardise=True)")
        training = self.model.training
        embedded = embed_dataset(self.model, graphs, batch_size, device, entities=True, memory_gb=memory_gb)
        self.model.train(training)
        rows = []
        for graph, node, edge in zip(graphs, embedded.node, embedded.edge, strict=True):
            node = torch.as_tensor(node, dtype=torch.float64)
            edge = torch.as_tensor(edge, dtype=torch.float64)
            rows.append(_with_edge_context(node, edge, graph.edge_index.cpu()) if self.edge_context else node)
        if not any(len(r) for r in rows):
            raise ValueError("fit_standardisation needs graphs with at least one node")
        vectors = torch.cat(rows)
        self.latent_mean.copy_(vectors.mean(0))
        self.latent_std.copy_((vectors.var(0, unbiased=False) + _VARIANCE_EPS).sqrt())
        self.fitted.fill_(True)

    def forward(self, batch: Batch) -> tuple[Tensor, Tensor]:
        """Return the node vectors (N, H or 2H) and the graph index (N,) of each node."""
        mask = no_mask(batch.num_nodes, batch.edge_index.shape[1], batch.x.device)
        encoded = self.model.encode(batch, mask)
        vectors = encoded.node_mu
        if self.edge_context:
            vectors = _with_edge_context(vectors, encoded.edge_mu, batch.edge_index)
        if self.standardise:
            vectors = (vectors - self.latent_mean) / self.latent_std
        return vectors, batch.batch


def pretrained_classifier(
    model: HMGDM,
    num_classes: int,
    hidden_channels: int = 128,
    standardise: bool = True,
    edge_context: bool = True,
) -> GraphClassifier:
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
    standardise, edge_context : bool
        What the head reads (:class:`PretrainedEncoder`): standardised vectors, fitted on the training graphs
        when :func:`~hmgdm_core.downstream.iter_finetune` starts, of each node's latent and its edges' mean
        latent. Both ``False``: the paper's head on μ_v as it is. On Kather the default head fine-tuned better
        from random and from the bundled weights and worse from 10-minute default weights
        (``docs/representation.md``).

    Returns
    -------
    GraphClassifier
    """
    encoder = PretrainedEncoder(copy.deepcopy(model), standardise, edge_context)
    return GraphClassifier(encoder, encoder.out_channels, num_classes, hidden_channels)
