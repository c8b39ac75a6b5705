"""The pre-training objective: noise the targets of a masked batch, denoise them, weigh KL and MSE terms.

Every random number of a step is drawn graph by graph, each graph from its own generator: first its mask keys,
then (once the split is known) the noise of its targets and the latent noise of its encoded entities. So a
graph's draws never depend on which batch, micro-batch or process it lands in.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import torch
from torch import Tensor
from torch.nn.functional import mse_loss
from torch_geometric.data import Data

from hmgdm_core.config_checks import check_at_least, check_fields
from hmgdm_core.diffusion import NoiseSchedule
from hmgdm_core.masking import EntityMask, MaskConfig, sample_mask
from hmgdm_core.model.edge_pairs import compacted_rows, expand_pairs, shared_pairs
from hmgdm_core.model.hmgdm import HMGDM, Prediction, graph_ids

__all__ = [
    "EntityNoise",
    "LossScale",
    "LossWeights",
    "PretrainingLoss",
    "draw_mask",
    "draw_noise",
    "gaussian_kl",
    "noised_inputs",
    "pretraining_loss",
]


@dataclass(frozen=True)
class LossWeights:
    """L = kl·L_KL + node·L_node + edge·L_edge; defaults are the released weights (method-spec §5.4)."""

    kl: float = 1.0
    """Weight of the encoder latents' KL divergence to N(0, I)."""
    node: float = 0.5
    """Weight of the target-node MSE."""
    edge: float = 0.5
    """Weight of the target-edge MSE."""
    normalise_targets: bool = False
    """Score each target entity against its own window normalised to mean 0 and variance 1 over its F entries
    (MAE's normalised-pixel targets), so that its brightness and contrast, which the tile's context already
    gives away, do not dominate the MSE. An ablation (the ``x0`` objective only): the heads then predict
    normalised windows, which reconstructions cannot show as pixels."""

    def __post_init__(self) -> None:
        check_fields(self)
        for name in ("kl", "node", "edge"):
            check_at_least(self, name, 0.0)


@dataclass(frozen=True)
class EntityNoise:
    """ε of one step, only where it is used (rows in ascending entity order)."""

    node: Tensor
    """(n_t, F): noise of the target nodes."""
    edge_drawn: Tensor
    """(e_t, F) noise of the target edges, or (p_t, F) one row per target pair (pair order) with ``pairs``."""
    node_latent: Tensor
    """(n_enc, H): reparameterisation noise of the encoded nodes."""
    edge_latent: Tensor
    """(e_enc, H): reparameterisation noise of the encoded edges (equal within a pair when drawn with ``paired``)."""
    pairs: tuple[Tensor, Tensor] | None = None
    """:func:`~hmgdm_core.model.edge_pairs.shared_pairs` of the batch when the edge noise was drawn per pair."""
    edge_target: Tensor | None = None
    """(E,) bool target edges of the split, with ``pairs``."""

    @cached_property
    def edge(self) -> Tensor:
        """(e_t, F): noise of the target edges, per direction (equal within a pair when drawn with ``paired``).

        Copied to both directions only when asked: the training loss reads :attr:`edge_drawn` per pair.
        """
        if self.pairs is None:
            return self.edge_drawn
        return expand_pairs(self.edge_drawn, self.edge_target, self.pairs)


@dataclass(frozen=True)
class LossScale:
    """Number of entries each mean divides by, so micro-batches and processes add up to the global batch's means."""

    node: float
    """Target-node feature entries n_t·F."""
    edge: float
    """Target-edge feature entries e_t·F."""
    node_latent: float
    """Encoded-node latent entries n_enc·H."""
    edge_latent: float
    """Encoded-edge latent entries e_enc·H."""

    @classmethod
    def of(cls, mask: EntityMask, feature_dim: int, hidden_dim: int) -> LossScale:
        """The entry counts of one split."""
        return cls(
            float(mask.node_target.sum()) * feature_dim,
            float(mask.edge_target.sum()) * feature_dim,
            float(mask.node_encoded.sum()) * hidden_dim,
            float(mask.edge_encoded.sum()) * hidden_dim,
        )

    def __add__(self, other: LossScale) -> LossScale:
        return LossScale(
            self.node + other.node,
            self.edge + other.edge,
            self.node_latent + other.node_latent,
            self.edge_latent + other.edge_latent,
        )


def _per_graph(graph: Data, flags: Tensor, owner: Tensor) -> list[int]:
    return torch.bincount(owner[flags], minlength=int(getattr(graph, "num_graphs", 1))).tolist()


def draw_mask(graph: Data, config: MaskConfig, generators: Sequence[torch.Generator]) -> EntityMask:
    """Draw the split of a batch from one generator per graph (node keys, then directed-edge keys).

    Parameters
    ----------
    graph : Data or Batch
        Structure of the batch (``edge_index``, ``edge_pair``, ``batch``); features are not read.
    config : MaskConfig
        Ratios and mode.
    generators : sequence of torch.Generator
        One per graph, on the batch's device.

    Returns
    -------
    EntityMask
    """
    node_graph, edge_graph, num_graphs = graph_ids(graph)
    if len(generators) != num_graphs:
        raise ValueError(f"{len(generators)} generators for {num_graphs} graphs")
    device = graph.edge_index.device
    nodes = torch.bincount(node_graph, minlength=num_graphs).tolist()
    edges = torch.bincount(edge_graph, minlength=num_graphs).tolist()
    node_keys, edge_keys = [], []
    for generator, n, e in zip(generators, nodes, edges, strict=True):
        node_keys.append(torch.rand(n, generator=generator, device=device, dtype=torch.float64))
        edge_keys.append(torch.rand(e, generator=generator, device=device, dtype=torch.float64))
    return sample_mask(
        graph.edge_index, graph.edge_pair, node_graph, num_graphs, config, torch.cat(node_keys), torch.cat(edge_keys)
    )


def draw_noise(
    graph: Data,
    mask: EntityMask,
    feature_dim: int,
    hidden_dim: int,
    generators: Sequence[torch.Generator],
    *,
    paired: bool,
) -> EntityNoise:
    """Draw the step's ε graph by graph, continuing each graph's generator after :func:`draw_mask`.

    Parameters
    ----------
    graph : Data or Batch
        The batch (``edge_index``, ``batch``).
    mask : EntityMask
        Its split.
    feature_dim, hidden_dim : int
        F and H.
    generators : sequence of torch.Generator
        One per graph.
    paired : bool
        Draw the edge noise once per undirected pair and give it to both directions, where the split keeps
        pairs together (:func:`~hmgdm_core.model.edge_pairs.shared_pairs`); pass ``ModelConfig.pair_tokens``.
        ``EntityNoise.edge_drawn`` then holds one row per target pair and ``EntityNoise.edge`` both directions'.

    Returns
    -------
    EntityNoise
    """
    node_graph, edge_graph, _ = graph_ids(graph)
    device = graph.edge_index.device
    pairs = shared_pairs(graph.edge_index, mask) if paired else None
    edge_target, edge_encoded, edge_owner = mask.edge_target, mask.edge_encoded, edge_graph
    if pairs is not None:
        first = pairs[0]
        edge_target, edge_encoded, edge_owner = edge_target[first], edge_encoded[first], edge_graph[first]
    counts = [
        _per_graph(graph, mask.node_target, node_graph),
        _per_graph(graph, edge_target, edge_owner),
        _per_graph(graph, mask.node_encoded, node_graph),
        _per_graph(graph, edge_encoded, edge_owner),
    ]
    widths = (feature_dim, feature_dim, hidden_dim, hidden_dim)
    # Each graph's draws go straight into its rows of the step's tensors: no per-graph pieces to concatenate.
    node, edge, node_latent, edge_latent = parts = [
        torch.empty(sum(count), width, device=device) for count, width in zip(counts, widths, strict=True)
    ]
    starts = [0, 0, 0, 0]
    for g, generator in enumerate(generators):
        for part, count in enumerate(counts):
            rows = parts[part][starts[part] : starts[part] + count[g]]
            torch.randn(rows.shape, generator=generator, device=device, out=rows)
            starts[part] += count[g]
    if pairs is None:
        return EntityNoise(node, edge, node_latent, edge_latent)
    edge_latent = expand_pairs(edge_latent, mask.edge_encoded, pairs)
    return EntityNoise(node, edge, node_latent, edge_latent, pairs, mask.edge_target)


@dataclass(frozen=True)
class PretrainingLoss:
    """Loss parts of one (micro-)batch; ``total`` carries the autograd graph."""

    total: Tensor
    """Scalar: the weighted sum."""
    kl: Tensor
    """Scalar: node KL + edge KL (means over latents × dims)."""
    node: Tensor
    """Scalar: mean squared error over target nodes × features (0 when there is none)."""
    edge: Tensor
    """Scalar: mean squared error over target edges × features (0 when there is none)."""


def gaussian_kl(mu: Tensor, logvar: Tensor, entries: float | None = None) -> Tensor:
    """½·Σ(σ² + μ² - 1 - log σ²) over (M, H) tensors, divided by ``entries`` (default M·H); 0 when empty."""
    # In fp32 also under autocast: a bf16 sum keeps three significant digits (a KL of 13.04 reads 13.0).
    mu, logvar = mu.float(), logvar.float()
    total = 0.5 * torch.sum(torch.exp(logvar) + mu.square() - 1.0 - logvar)
    count = mu.numel() if entries is None else entries
    return total / count if count else total


def _normalised_rows(values: Tensor, eps: float = 1e-6) -> Tensor:
    """Each row shifted and scaled to mean 0 and variance 1 over its entries; ``eps`` guards flat rows."""
    mean = values.mean(dim=1, keepdim=True)
    var = values.var(dim=1, keepdim=True, unbiased=False)
    return (values - mean) / torch.sqrt(var + eps)


def _mse(prediction: Tensor, target: Tensor, entries: float) -> Tensor:
    # One fused pass forward and one backward, where (p - t).square().sum() takes three and two over (K, F).
    total = mse_loss(prediction.to(target.dtype), target, reduction="sum")
    return total / entries if entries else total


def noised_inputs(
    graph: Data, mask: EntityMask, t: Tensor, schedule: NoiseSchedule, noise: EntityNoise
) -> tuple[Tensor, Tensor]:
    """Features with the target rows replaced by q_sample at their graph's t.

    Returns
    -------
    x_t : Tensor, shape (N, F)
    edge_attr_t : Tensor, shape (E, F)
    """
    node_graph, edge_graph, _ = graph_ids(graph)
    return (
        _noised(graph.x, mask.node_target.nonzero().squeeze(1), node_graph, t, schedule, noise.node),
        _noised(graph.edge_attr, mask.edge_target.nonzero().squeeze(1), edge_graph, t, schedule, noise.edge),
    )


def _noised(features: Tensor, rows: Tensor, owner: Tensor, t: Tensor, schedule: NoiseSchedule, eps: Tensor) -> Tensor:
    """``features`` (M, F) with ``rows`` replaced by q_sample at their graph's t (``owner`` (M,) graph ids)."""
    return features.index_put((rows,), schedule.q_sample(features[rows], eps, t[owner[rows]]))


def pretraining_loss(
    model: HMGDM,
    schedule: NoiseSchedule,
    graph: Data,
    mask: EntityMask,
    t: Tensor,
    noise: EntityNoise,
    weights: LossWeights,
    scale: LossScale | None = None,
) -> PretrainingLoss:
    """One denoising pass: noise the targets, predict, score.

    Parameters
    ----------
    model : HMGDM
        The network (or a ``DistributedDataParallel`` around it).
    schedule : NoiseSchedule
        Forward process and objective.
    graph : Data or Batch
        Clean batch following the graph contract.
    mask : EntityMask
        The split (:func:`draw_mask`).
    t : Tensor, shape (G,), int64
        Timestep of each graph.
    noise : EntityNoise
        The step's ε (:func:`draw_noise`).
    weights : LossWeights
        Loss weights.
    scale : LossScale, optional
        Entry counts of the whole step when this batch is one of several micro-batches or processes; the
        parts of all of them then add up to the step's means. Default: this batch's own counts.

    Returns
    -------
    PretrainingLoss
    """
    node_graph, edge_graph, _ = graph_ids(graph)
    network: HMGDM = getattr(model, "module", model)
    latent_noise = (noise.node_latent, noise.edge_latent)
    pairs = network.decoder_pairs(graph.edge_index, mask)
    # Standardised inputs: noise, targets and loss all live in the standardised units.
    if pairs is None:
        graph = network.standardise(graph)
        edges, edge_owner, edge_noise = graph.edge_attr, edge_graph, noise.edge
        edge_rows = mask.edge_target.nonzero().squeeze(1)
        copies = 1
    else:
        # Both directions of a pair carry the same window, fate and noise (``draw_noise(paired=True)``), so each
        # edge row is standardised, noised, predicted and scored once per pair and its error counted twice: the
        # directed loss and gradient up to float rounding, without the (E, F) work per direction.
        first = pairs[0]
        graph = network.standardise(graph, first)
        edges = graph.edge_attr
        edge_rows, edge_owner = mask.edge_target[first].nonzero().squeeze(1), edge_graph[first]
        # Each target pair's noise, drawn once per pair; else the row of its first direction among the targets.
        edge_noise = (
            noise.edge_drawn
            if noise.pairs is not None
            else noise.edge[compacted_rows(mask.edge_target)[first[edge_rows]]]
        )
        copies = 2
    node_rows = mask.node_target.nonzero().squeeze(1)
    # The clean target rows and their timesteps, gathered once for the noising and the regression target.
    node_clean, node_t = graph.x[node_rows], t[node_graph[node_rows]]
    edge_clean, edge_t = edges[edge_rows], t[edge_owner[edge_rows]]
    x_t = graph.x.index_put((node_rows,), schedule.q_sample(node_clean, noise.node, node_t))
    edge_attr_t = edges.index_put((edge_rows,), schedule.q_sample(edge_clean, edge_noise, edge_t))
    prediction: Prediction = model(graph, x_t, edge_attr_t, mask, t, latent_noise, pairs=pairs)
    node_goal = schedule.regression_target(node_clean, noise.node, node_t)
    edge_goal = schedule.regression_target(edge_clean, edge_noise, edge_t)
    if weights.normalise_targets:
        node_goal, edge_goal = _normalised_rows(node_goal), _normalised_rows(edge_goal)
    scale = scale or LossScale.of(mask, graph.x.shape[1], prediction.encoded.node_mu.shape[1])
    encoded = prediction.encoded
    kl = gaussian_kl(encoded.node_mu, encoded.node_logvar, scale.node_latent) + gaussian_kl(
        encoded.edge_mu, encoded.edge_logvar, scale.edge_latent
    )
    node = _mse(prediction.node, node_goal, scale.node)
    edge = copies * _mse(prediction.edge, edge_goal, scale.edge)
    total = weights.kl * kl + weights.node * node + weights.edge * edge
    return PretrainingLoss(total=total, kl=kl, node=node, edge=edge)
