"""Embeddings of entity graphs with a pre-trained encoder, and reconstructions for the diffusion overlays."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from torch import Tensor
from torch_geometric.data import Data
from torch_geometric.utils import scatter

from hmgdm_core.diffusion import DiffusionConfig, NoiseSchedule
from hmgdm_core.errors import InputError
from hmgdm_core.graph.contract import collate
from hmgdm_core.masking import EntityMask, MaskConfig
from hmgdm_core.model import HMGDM, draw_mask, draw_noise, graph_ids
from hmgdm_core.model.inference import FoldedMaps, encode_graphs, folded_input_maps
from hmgdm_core.model.loss import noised_inputs
from hmgdm_core.train.device import resolve_device
from hmgdm_core.train.events import CancelToken
from hmgdm_core.train.interrupt import cancel_points
from hmgdm_core.train.loop import check_finite
from hmgdm_core.train.memory import budget_bytes, pack_by_memory, release_free_heap
from hmgdm_core.vae import EntityVAE

__all__ = [
    "DEFAULT_READOUT",
    "READOUTS",
    "DatasetEmbedding",
    "GraphEmbedding",
    "Readout",
    "Reconstruction",
    "embed_dataset",
    "embed_graph",
    "patch_width",
    "reconstruct",
]

Readout = Literal["projection", "first", "mu", "states"]
READOUTS: tuple[Readout, ...] = ("projection", "first", "mu", "states")
"""What the patch vector pools: the encoder's first ``projection`` of every entity alone (the default), the states
of its ``first`` layer, the latent means ``mu`` (the paper's embedding) or the last-layer ``states``, the input of
the Gaussian heads.

``projection`` is ReLU(Θ₀ h) of each entity's own input embedding h, Θ₀ being the first layer's projection: the
first layer before it mixes in any neighbour. Its patch vector is [mean, std, max] over the nodes, then the
same over the edges (6H); the others are [mean, max] over the nodes, then the edges (4H).

Pre-training leaves what it adds mostly in the first layer: the deeper layers and μ serve the decoder's
reconstruction. On Kather (``benchmarks/representation.py``, ``docs/representation.md``) the first layer's
pooled states probed 2-4 points above pooled μ after training, and its own projections, pooled with their
spread, 1-3.5 points above those in two training runs and the bundled model."""
DEFAULT_READOUT: Readout = "projection"


def patch_width(readout: Readout, hidden_dim: int) -> int:
    """Length of the patch vector of ``readout`` for a network of width H = ``hidden_dim``."""
    return (6 if readout == "projection" else 4) * hidden_dim


@dataclass(frozen=True)
class GraphEmbedding:
    """One graph through the encoder on the whole graph, without mask or noise: entity latents μ, patch vector."""

    node: Tensor
    """Shape (N, H): node latents μ_v."""
    edge: Tensor
    """Shape (E, H): edge latents μ_e, one per directed edge."""
    patch: Tensor
    """Shape (:func:`patch_width`,): the patch vector of the ``readout``'s node and edge rows h, e.g.
    [mean h_v, max h_v, mean h_e, max h_e] (:data:`READOUTS`; edge parts are 0 when E = 0)."""


@dataclass(frozen=True)
class DatasetEmbedding:
    """Embeddings of a dataset, in dataset order."""

    patch: np.ndarray
    """(G, :func:`patch_width`) float32 patch vectors (see :class:`GraphEmbedding`)."""
    node: list[np.ndarray] | None
    """Per graph (N_g, H) node latents, when requested."""
    edge: list[np.ndarray] | None
    """Per graph (E_g, H) edge latents, when requested."""


def _patch_vectors(
    node_rows: Tensor, edge_rows: Tensor, node_graph: Tensor, edge_graph: Tensor, num_graphs: int, spread: bool
) -> Tensor:
    parts = []
    for rows, graph in ((node_rows, node_graph), (edge_rows, edge_graph)):
        mean = scatter(rows, graph, 0, num_graphs, reduce="mean")
        parts.append(mean)
        if spread:
            square = scatter(rows.square(), graph, 0, num_graphs, reduce="mean")
            parts.append((square - mean.square()).clamp_min(0).sqrt())
        parts.append(scatter(rows, graph, 0, num_graphs, reduce="max"))
    return torch.cat(parts, dim=1)


def _check_readout(readout: str) -> None:
    if readout not in READOUTS:
        raise InputError(f"unknown readout {readout!r}: use one of {list(READOUTS)}")


@torch.inference_mode()
def _embed_graphs(
    model: HMGDM, graphs: Sequence[Data], device: torch.device, readout: Readout, maps: FoldedMaps | None
) -> tuple[Tensor, Tensor, Tensor]:
    structure, encoded = encode_graphs(model, graphs, device, maps)
    node_graph, edge_graph, num_graphs = graph_ids(structure)
    pooled = {
        "projection": (torch.relu(encoded.node_projection), torch.relu(encoded.edge_projection)),
        "first": (encoded.node_skips[0], encoded.edge_skips[0]),
        "mu": (encoded.node_mu, encoded.edge_mu),
        "states": (encoded.node_skips[-1], encoded.edge_skips[-1]),
    }[readout]
    patch = _patch_vectors(*pooled, node_graph, edge_graph, num_graphs, spread=readout == "projection")
    return encoded.node_mu, encoded.edge_mu, patch


def embed_graph(model: HMGDM, graph: Data, readout: Readout = DEFAULT_READOUT) -> GraphEmbedding:
    """Embed one graph (on the model's device).

    For many graphs use :func:`embed_dataset`: it folds the model's input maps once
    (:func:`~hmgdm_core.model.inference.folded_input_maps`), where this call folds them for its one graph.

    Parameters
    ----------
    model : HMGDM
        A pre-trained network (e.g. ``load_checkpoint(path).model``).
    graph : Data
        A graph following the graph contract.
    readout : {"projection", "first", "mu", "states"}
        What the patch vector pools (:data:`READOUTS`); the entity rows are μ either way.

    Returns
    -------
    GraphEmbedding
    """
    _check_readout(readout)
    model.eval()
    device = next(model.parameters()).device
    node, edge, patch = _embed_graphs(model, [graph], device, readout, folded_input_maps(model))
    return GraphEmbedding(node=node, edge=edge, patch=patch[0])


def embed_dataset(
    model: HMGDM,
    dataset: Sequence[Data],
    batch_size: int = 32,
    device: str = "auto",
    entities: bool = False,
    progress: Callable[[int, int], None] | None = None,
    memory_gb: float | None = None,
    cancel: CancelToken | None = None,
    readout: Readout = DEFAULT_READOUT,
) -> DatasetEmbedding:
    """Embed every graph of a dataset in batches that fit a memory budget.

    Parameters
    ----------
    model : HMGDM
        A pre-trained network; it is moved to ``device``.
    dataset : sequence of Data
        Graphs following the graph contract.
    batch_size : int
        Graphs read at a time; each forward pass holds at most these, fewer when they would not fit ``memory_gb``.
    device : str
        ``auto``, ``cpu``, ``cuda[:i]`` or ``mps``.
    entities : bool
        Also return the node and edge latents of every graph.
    progress : callable, optional
        Called as ``progress(done, total)`` graphs after each batch.
    memory_gb : float, optional
        GiB one forward pass may use (default: :func:`~hmgdm_core.train.memory.default_budget_bytes`).
    cancel : CancelToken, optional
        Checked inside every forward pass; when set, :class:`~hmgdm_core.train.interrupt.PassCancelled` is raised.
    readout : {"projection", "first", "mu", "states"}
        What the patch vectors pool (:data:`READOUTS`); the entity rows are μ either way.

    Returns
    -------
    DatasetEmbedding

    Raises
    ------
    InputError
        If ``batch_size`` < 1, a graph has NaN/Inf features (its embedding would be NaN), or one graph alone
        does not fit the memory budget.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise InputError(f"batch_size must be an integer ≥ 1, got {batch_size!r}")
    _check_readout(readout)
    check_finite(dataset)
    target = resolve_device(device)
    model = model.to(target).eval()
    maps = folded_input_maps(model)
    budget = budget_bytes(memory_gb, target)
    patches, nodes, edges = [], [], []
    for start in range(0, len(dataset), batch_size):
        graphs = [dataset[i] for i in range(start, min(start + batch_size, len(dataset)))]
        sizes = [(g.num_nodes, g.edge_index.shape[1]) for g in graphs]
        rows: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        for chunk in pack_by_memory(sizes, model.config, budget, training=False, what="embedding"):
            with cancel_points(model, cancel):
                node, edge, patch = _embed_graphs(model, [graphs[i] for i in chunk], target, readout, maps)
            node_parts = np.split(node.float().cpu().numpy(), np.cumsum([sizes[i][0] for i in chunk])[:-1])
            edge_parts = np.split(edge.float().cpu().numpy(), np.cumsum([sizes[i][1] for i in chunk])[:-1])
            for k, i in enumerate(chunk):
                rows[i] = (patch[k].float().cpu().numpy(), node_parts[k], edge_parts[k])
        patches += [rows[i][0] for i in range(len(graphs))]
        if entities:
            nodes += [rows[i][1] for i in range(len(graphs))]
            edges += [rows[i][2] for i in range(len(graphs))]
        done = start + len(graphs)
        del graphs, rows  # the batch's float graphs, before the heap is trimmed
        release_free_heap()
        if progress is not None:
            progress(done, len(dataset))
    width = patch_width(readout, model.config.hidden_dim)
    patch = np.stack(patches) if patches else np.zeros((0, width), np.float32)
    return DatasetEmbedding(patch=patch, node=nodes if entities else None, edge=edges if entities else None)


@dataclass(frozen=True)
class Reconstruction:
    """Noised targets and the network's x0 estimate for one graph, mask and t (for the overlays)."""

    mask: EntityMask
    """The split used."""
    t: int
    """Timestep of the noise."""
    node_noised: Tensor
    """(n_t, F): x_t of the target nodes (ascending node order)."""
    node_predicted: Tensor
    """(n_t, F): predicted x0 of the target nodes."""
    edge_noised: Tensor
    """(e_t, F): x_t of the target edges (ascending edge order)."""
    edge_predicted: Tensor
    """(e_t, F): predicted x0 of the target edges."""
    node_windows: tuple[Tensor, Tensor] | None
    """(noised, predicted) node pixel windows (n_t, 3, w, w) in [-1, 1], decoded through the entity VAE."""
    edge_windows: tuple[Tensor, Tensor] | None
    """(noised, predicted) edge pixel windows (e_t, 3, w, w) in [-1, 1]."""


@torch.inference_mode()
def reconstruct(
    model: HMGDM,
    graph: Data,
    t: int,
    mask: EntityMask | None = None,
    diffusion: DiffusionConfig | None = None,
    mask_config: MaskConfig | None = None,
    seed: int = 0,
    vae: EntityVAE | None = None,
    decode_edges: bool = True,
) -> Reconstruction:
    """Noise the targets of one graph at timestep ``t`` and predict their clean features.

    Parameters
    ----------
    model : HMGDM
        A pre-trained network.
    graph : Data
        One graph following the graph contract.
    t : int
        Timestep in [0, T-1].
    mask : EntityMask, optional
        The split; drawn from ``mask_config`` with ``seed`` when omitted.
    diffusion : DiffusionConfig, optional
        Schedule and objective the model was trained with (default: :class:`DiffusionConfig`'s).
    mask_config : MaskConfig, optional
        Used only when ``mask`` is omitted.
    seed : int
        Seed of the split and the noise.
    vae : EntityVAE, optional
        Entity VAE whose latents the graph holds; its decoder turns features into pixel windows. Without it,
        windows are returned only when the features are raw windows (F = 3·w²).
    decode_edges : bool
        Also decode the target edges' windows; the overlays paint nodes only, and decoding the (many) edges
        through the VAE costs more than the whole reconstruction.

    Returns
    -------
    Reconstruction
    """
    model.eval()
    device = next(model.parameters()).device
    batch = model.standardise(collate([graph]).to(device))
    schedule = NoiseSchedule(diffusion or DiffusionConfig()).to(device)
    times = torch.full((1,), t, dtype=torch.long, device=device)
    generator = torch.Generator(device=device).manual_seed(seed)
    if mask is None:
        mask = draw_mask(batch, mask_config or MaskConfig(), [generator])
    noise = draw_noise(
        batch, mask, batch.x.shape[1], model.config.hidden_dim, [generator], paired=model.config.pair_tokens
    )
    x_t, edge_attr_t = noised_inputs(batch, mask, times, schedule, noise)
    prediction = model(batch, x_t, edge_attr_t, mask, times)
    node_rows, edge_rows = mask.node_target.nonzero().squeeze(1), mask.edge_target.nonzero().squeeze(1)
    node_noised, edge_noised = x_t[node_rows], edge_attr_t[edge_rows]
    node_pred = schedule.predict_x0(node_noised, prediction.node, times[torch.zeros_like(node_rows)])
    edge_pred = schedule.predict_x0(edge_noised, prediction.edge, times[torch.zeros_like(edge_rows)])
    # Back to the data's units (the windows' [-1, 1] or the VAE's latents) when the model standardises.
    node_noised, node_pred = (model.unstandardise(x, "node") for x in (node_noised, node_pred))
    edge_noised, edge_pred = (model.unstandardise(x, "edge") for x in (edge_noised, edge_pred))
    return Reconstruction(
        mask=mask,
        t=t,
        node_noised=node_noised,
        node_predicted=node_pred,
        edge_noised=edge_noised,
        edge_predicted=edge_pred,
        node_windows=_windows(vae, node_noised, node_pred),
        edge_windows=_windows(vae, edge_noised, edge_pred) if decode_edges else None,
    )


def _windows(vae: EntityVAE | None, noised: Tensor, predicted: Tensor) -> tuple[Tensor, Tensor] | None:
    if vae is not None:
        return vae.decode_features(noised), vae.decode_features(predicted)
    side = round((noised.shape[1] / 3) ** 0.5)
    if 3 * side * side != noised.shape[1]:
        return None
    return noised.reshape(-1, 3, side, side), predicted.reshape(-1, 3, side, side)
