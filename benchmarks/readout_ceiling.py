"""How far the default patch readout can go: its first projection chosen without, and with, labels (issue 12).

The default readout (``hmgdm_core.embed``, ``readout="projection"``) pools ReLU(W x + b) over a tile's nodes
and over its edge pairs ([mean, std, max] of each), where x is a standardised window and W, b the network's
first projection: the only part of the network a patch vector reads. Pre-training can only move W and b, so
this script asks what other choices of W give, on the same graphs, input statistics, widths and linear probe
as ``benchmarks/representation.py`` (whose cache it reads):

- ``random-init``: the default network untrained (the representation benchmark's row).
- ``bundled``: the bundled model, the default recipe pre-trained outside any budget (``hmgdm_core.pretrained``).
- ``pca``: W = the top H/2 principal directions of the standardised windows with both signs, b = 0: the
  subspace a linear autoencoder converges to, the linear limit of a reconstruction objective.
- ``kmeans``: W = spherical k-means centroids of PCA-whitened windows (Coates and Ng, 2011), b = 0.
- ``supervised``: W, b and a linear head trained with the labels on each fold's training tiles, scored on that
  fold's test tiles: a reference no self-supervised objective is handed, not a method.

Each row is macro-F1 (mean ± std over the slide-grouped folds). ``--network paper`` asks the same at the paper's
widths (H 256). Prints a table and one JSON line.

    OMP_NUM_THREADS=1 python benchmarks/readout_ceiling.py ../shared/data/kather2016-crc-texture \
        --cache /work/logs/rep-cache
"""

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import f1_score
from torch import Tensor
from torch_geometric.utils import scatter

from hmgdm_core.downstream.measurement_features import pooled_measurements
from hmgdm_core.downstream.splits import grouped_folds
from hmgdm_core.embed import embed_dataset
from hmgdm_core.graph import GraphConfig
from hmgdm_core.graph.storage import expand_rows, record_rows
from hmgdm_core.model.inference import folded_input_maps
from hmgdm_core.pretrained import DEFAULT_PRETRAINED, load_pretrained
from representation import NETWORKS, RECIPE, build_graphs, initial_model, probe, sized, tile_index

# Rows of the whitened k-means and PCA fits: a random sample keeps the SVD to seconds.
FIT_ROWS = 50_000
# PCA dimensions kept before k-means, and the whitening's regulariser (in standard deviations).
WHITEN_DIMS, WHITEN_EPS = 256, 0.1


class Windows:
    """The standardised node and pair windows of every graph, one row per entity (pairs once, not per direction).

    Pooling over pairs equals pooling over both directions: a pair's two edges share their window.
    """

    def __init__(self, graphs, mean: dict[str, Tensor], std: dict[str, Tensor]) -> None:
        rows = {"x": [], "pair_attr": []}
        for record in graphs.records:
            stored = record_rows(record)
            for key in rows:
                rows[key].append((expand_rows(stored[key]) - mean[key]) / std[key])
        self.count = len(graphs)
        self.rows = {key: torch.cat(parts) for key, parts in rows.items()}
        self.graph = {
            key: torch.repeat_interleave(torch.tensor([len(p) for p in parts])) for key, parts in rows.items()
        }

    def select(self, graphs: np.ndarray) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
        """Rows and their local graph index (0..len(graphs)-1) of the given graphs."""
        local = torch.full((self.count,), -1)
        local[torch.as_tensor(graphs)] = torch.arange(len(graphs))
        rows, index = {}, {}
        for key, owner in self.graph.items():
            keep = local[owner] >= 0
            rows[key], index[key] = self.rows[key][keep], local[owner[keep]]
        return rows, index


def pool(rows: Tensor, index: Tensor, count: int, eps: float = 0.0) -> Tensor:
    """[mean, std, max] of ``rows`` (R, H) over the ``count`` graphs of ``index`` (R,): (count, 3H), as embed's.

    ``eps`` is added to each variance: training needs it to keep the gradient of a zero spread finite. That is why
    this is not ``hmgdm_core.embed``'s pooling, which it equals at ``eps=0`` (``main`` checks it).
    """
    mean = scatter(rows, index, 0, count, reduce="mean")
    square = scatter(rows.square(), index, 0, count, reduce="mean")
    spread = (square - mean.square()).clamp_min(0).add(eps).sqrt()
    return torch.cat([mean, spread, scatter(rows, index, 0, count, reduce="max")], dim=1)


def patch_vectors(
    rows: dict[str, Tensor],
    index: dict[str, Tensor],
    count: int,
    filters: dict[str, tuple[Tensor, Tensor]],
    eps: float = 0.0,
) -> Tensor:
    """(count, 6H) patch vectors: pooled ReLU(x W + b) of the nodes, then of the pairs (``eps``: see pool)."""
    parts = [pool(torch.relu(rows[k] @ w + b), index[k], count, eps) for k, (w, b) in filters.items()]
    return torch.cat(parts, dim=1)


@torch.no_grad()
def all_patches(windows: Windows, filters: dict[str, tuple[Tensor, Tensor]]) -> np.ndarray:
    """(G, 6H) patch vectors of every graph under ``filters``."""
    return patch_vectors(windows.rows, windows.graph, windows.count, filters).numpy()


def model_filters(model, mean: dict[str, Tensor], std: dict[str, Tensor]) -> dict[str, tuple[Tensor, Tensor]]:
    """The network's own first projection as filters on the standardised windows: A x + c = (A s) x' + (A m + c)."""
    maps = dict(zip(("x", "pair_attr"), folded_input_maps(model), strict=True))
    return {k: ((a * std[k]).T.contiguous(), a @ mean[k] + c) for k, (a, c) in maps.items()}


def sample(rows: Tensor, generator: torch.Generator) -> Tensor:
    """Up to FIT_ROWS random rows of ``rows``, centred."""
    picked = rows[torch.randperm(len(rows), generator=generator)[:FIT_ROWS]]
    return picked - picked.mean(0)


def pca_filters(rows: Tensor, width: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """(F, width) top width/2 principal directions of ``rows`` with both signs, and a zero bias.

    A direction's sign is arbitrary (the SVD's), and ReLU keeps one half of it: both halves make the row
    independent of the draw.
    """
    _, _, v = torch.linalg.svd(sample(rows, generator), full_matrices=False)
    top = v[: width // 2].T
    return torch.cat([top, -top], dim=1).contiguous(), torch.zeros(width)


def kmeans_filters(rows: Tensor, width: int, generator: torch.Generator, iterations: int = 20) -> tuple[Tensor, Tensor]:
    """(F, width) spherical k-means centroids of PCA-whitened ``rows``, mapped back to input space, zero bias."""
    centred = sample(rows, generator)
    _, s, v = torch.linalg.svd(centred, full_matrices=False)
    whiten = v[:WHITEN_DIMS].T / (s[:WHITEN_DIMS] / len(centred) ** 0.5 + WHITEN_EPS)
    points = torch.nn.functional.normalize(centred @ whiten, dim=1)
    centroids = points[torch.randperm(len(points), generator=generator)[:width]].clone()
    for _ in range(iterations):
        nearest = (points @ centroids.T).argmax(1)
        summed = torch.zeros_like(centroids).index_add_(0, nearest, points)
        # An emptied centroid keeps its place instead of becoming zero.
        filled = torch.bincount(nearest, minlength=width) > 0
        centroids[filled] = torch.nn.functional.normalize(summed[filled], dim=1)
    return (whiten @ centroids.T).contiguous(), torch.zeros(width)


def fold_score(
    windows: Windows,
    labels: np.ndarray,
    train: np.ndarray,
    test: np.ndarray,
    width: int,
    steps: int,
    batch: int,
    seed: int,
) -> float:
    """Macro-F1 (%) on ``test`` of W, b (``width`` filters) and a linear head trained with the labels of ``train``."""
    torch.manual_seed(seed)
    dims = windows.rows["x"].shape[1]
    params = {k: torch.nn.Linear(dims, width) for k in windows.rows}
    head = torch.nn.Sequential(torch.nn.BatchNorm1d(6 * width), torch.nn.Linear(6 * width, int(labels.max()) + 1))
    modules = [*params.values(), head]
    optimiser = torch.optim.Adam([p for m in modules for p in m.parameters()], lr=1e-3, weight_decay=1e-4)
    target = torch.as_tensor(labels).long()
    rng = np.random.default_rng(seed)

    def logits(graphs: np.ndarray) -> Tensor:
        rows, index = windows.select(graphs)
        filters = {k: (p.weight.T, p.bias) for k, p in params.items()}
        return head(patch_vectors(rows, index, len(graphs), filters, eps=1e-6))

    for _ in range(steps):
        graphs = rng.choice(train, size=min(batch, len(train)), replace=False)
        loss = torch.nn.functional.cross_entropy(logits(graphs), target[graphs])
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    head.eval()
    with torch.no_grad():
        predicted = logits(test).argmax(1).numpy()
    return 100 * f1_score(labels[test], predicted, average="macro")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data_dir", type=Path)
    parser.add_argument("--cache", type=Path, required=True, help="the representation benchmark's graph cache")
    parser.add_argument("--mpp", type=float, default=0.495)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument(
        "--network",
        choices=list(NETWORKS),
        default="small",
        help="widths of the untrained network and H of every other row (the bundled model keeps its own)",
    )
    parser.add_argument("--steps", type=int, default=400, help="optimiser steps per fold of the supervised row")
    parser.add_argument("--batch", type=int, default=128, help="tiles per supervised step")
    args = parser.parse_args()
    torch.set_num_threads(1)
    rows = tile_index(args.data_dir, "class_index", "slide", None)
    cache = args.cache / f"{args.data_dir.resolve().name}-{len(rows)}.pt"
    graphs, _ = build_graphs(rows, cache, args.mpp, GraphConfig().window)
    labels, groups = graphs.labels, np.asarray(graphs.groups)
    dropped = sorted(c for c in set(labels.tolist()) if len(set(groups[labels == c])) < args.folds)
    keep = ~np.isin(labels, dropped)
    config = sized(RECIPE, args.network, "cpu")
    width = config.model.hidden_dim

    def probed(patches: np.ndarray) -> tuple[float, float]:
        return probe(patches, labels, groups, keep, args.folds)["macro_f1"]

    started = time.perf_counter()
    model = initial_model(config, graphs)
    results = {"handcrafted": probed(pooled_measurements(graphs))}
    untrained = embed_dataset(model, graphs).patch
    results["random-init"] = probed(untrained)
    results["bundled"] = probed(embed_dataset(load_pretrained(DEFAULT_PRETRAINED).model, graphs).patch)
    mean = {"x": model.node_mean, "pair_attr": model.edge_mean}
    std = {"x": model.node_std, "pair_attr": model.edge_std}
    windows = Windows(graphs, mean, std)
    own = all_patches(windows, model_filters(model, mean, std))
    # The rows below are only comparable if this script's readout is embed's: check it on the untrained network.
    gap = float(np.abs(own - untrained).max() / np.abs(untrained).max())
    if gap > 1e-3:
        raise SystemExit(f"this script's patch vectors differ from embed_dataset's by {gap:.2e} (relative)")
    generator = torch.Generator().manual_seed(0)
    for name, fit in (("pca", pca_filters), ("kmeans", kmeans_filters)):
        filters = {k: fit(windows.rows[k], width, generator) for k in windows.rows}
        results[name] = probed(all_patches(windows, filters))
    kept = np.flatnonzero(keep)
    folds = [(kept[a], kept[b]) for a, b in grouped_folds(labels[keep], groups[keep], args.folds, 0)]
    scores = [
        fold_score(windows, labels, train, test, width, args.steps, args.batch, seed)
        for seed, (train, test) in enumerate(folds)
    ]
    results["supervised"] = (float(np.mean(scores)), float(np.std(scores)))
    seconds = time.perf_counter() - started

    print(f"{int(keep.sum())} tiles probed, H = {width}, {args.folds} slide-grouped folds, {seconds:.0f} s")
    print(f"readout check: the untrained network's patch vectors here and from embed_dataset differ by {gap:.1e}")
    print("| first projection W | macro-F1 % |")
    print("|---|---|")
    for name, (m, s) in results.items():
        print(f"| {name} | {m:.1f} ± {s:.1f} |")
    record = {k: [round(m, 2), round(s, 2)] for k, (m, s) in results.items()}
    summary = {"macro_f1": record, "readout_gap": gap, "seconds": round(seconds)}
    print(json.dumps({"benchmark": "readout_ceiling", "network": args.network, "hidden": width, **summary}))


if __name__ == "__main__":
    main()
