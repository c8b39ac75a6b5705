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
widths (H 256). Two options ask whether a different input lifts the whole family:

- ``--kind nuclei`` reads nuclei graphs instead of tissue superpixels; ``--kind both`` reads a tissue and a
  nuclei graph per tile and concatenates their vectors (each kind with its own filters and input statistics).
- ``--context-scale S`` cuts every window at S times its side around the same centre and box-averages it back
  to its side: the same features over S² times the area, at 1/S of the resolution. The untrained network's row
  then applies its filters to the re-cut windows; there is no readout check and no bundled row (both read the
  stored windows).

Prints a table and one JSON line.

    OMP_NUM_THREADS=1 python benchmarks/readout_ceiling.py ../shared/data/kather2016-crc-texture \
        --cache /work/logs/rep-cache [--kind both] [--context-scale 2]
"""

import argparse
import json
import time
from pathlib import Path

import imagecodecs
import numpy as np
import torch
from sklearn.metrics import f1_score
from torch import Tensor
from torch_geometric.utils import scatter

from hmgdm_core.downstream.measurement_features import pooled_measurements
from hmgdm_core.downstream.splits import grouped_folds
from hmgdm_core.embed import embed_dataset
from hmgdm_core.graph import GraphConfig, GraphDataset
from hmgdm_core.graph.storage import expand_rows, record_rows
from hmgdm_core.graph.windows import gather_pixel_groups, unit_range
from hmgdm_core.model.inference import folded_input_maps
from hmgdm_core.pretrained import DEFAULT_PRETRAINED, load_pretrained
from representation import NETWORKS, RECIPE, build_graphs, cache_file, initial_model, probe, sized, tile_index

# Rows of the whitened k-means and PCA fits: a random sample keeps the SVD to seconds.
FIT_ROWS = 50_000
# PCA dimensions kept before k-means, and the whitening's regulariser (in standard deviations).
WHITEN_DIMS, WHITEN_EPS = 256, 0.1
# A graph's feature rows: its nodes' windows and one window per undirected pair.
FIELDS = ("x", "pair_attr")


class Windows:
    """The standardised node and pair windows of every tile's graphs, one row per entity (pairs once, not per
    direction), keyed ``"{kind} x"`` and ``"{kind} pair_attr"`` per entity kind.

    Pooling over pairs equals pooling over both directions: a pair's two edges share their window.

    Parameters
    ----------
    sets : dict of str to GraphDataset
        One dataset per entity kind, the same tiles in the same order.
    stats : dict of str to (Tensor, Tensor), optional
        Per row key, the (F,) mean and std to standardise with (a network's fitted input statistics); without it
        they are fitted to the rows as ``HMGDM.fit_standardisation`` fits them.
    scale : int
        Context scale: each window is cut at ``scale`` times its side around the same centre and box-averaged back
        to its side (the same 3 × w × w features over scale² times the area). At 1 the windows are the stored ones;
        above, every window is re-cut from the record's image, the few it stores because they re-cut differently
        included.
    """

    def __init__(
        self, sets: dict[str, GraphDataset], stats: dict[str, tuple[Tensor, Tensor]] | None = None, scale: int = 1
    ) -> None:
        rows = {f"{kind} {field}": [] for kind in sets for field in FIELDS}
        for kind, graphs in sets.items():
            for record in graphs.records:
                cut = context_windows(record, scale)
                for field in FIELDS:
                    rows[f"{kind} {field}"].append(cut[field])
        self.count = len(next(iter(sets.values())))
        self.graph = {
            key: torch.repeat_interleave(torch.tensor([len(p) for p in parts])) for key, parts in rows.items()
        }
        self.rows = {key: torch.cat(parts) for key, parts in rows.items()}
        del rows  # the per-graph parts: gigabytes, not needed once joined
        for key, values in self.rows.items():
            if stats is None:
                mean = values.mean(0)
                std = (values.square().mean(0) - mean.square()).clamp_min(0).sqrt().clamp_min(1e-3)
            else:
                mean, std = stats[key]
            values.sub_(mean).div_(std)

    def select(self, graphs: np.ndarray) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
        """Rows and their local graph index (0..len(graphs)-1) of the given graphs."""
        local = torch.full((self.count,), -1)
        local[torch.as_tensor(graphs)] = torch.arange(len(graphs))
        rows, index = {}, {}
        for key, owner in self.graph.items():
            keep = local[owner] >= 0
            rows[key], index[key] = self.rows[key][keep], local[owner[keep]]
        return rows, index


def context_windows(record: dict, scale: int) -> dict[str, Tensor]:
    """A record's node and pair windows cut at ``scale`` times its window side and box-averaged back to that side;
    at scale 1 its windows as stored.

    Returns
    -------
    dict
        ``x`` (N, 3 w²) and ``pair_attr`` (P, 3 w²), float32 in [-1, 1], channel-first as stored windows.
    """
    if scale == 1:
        return {field: expand_rows(rows) for field, rows in record_rows(record).items()}
    side = int(json.loads(record["meta"])["window"])
    image = imagecodecs.png_decode(record["image"].numpy().tobytes())
    centres = [record[key].numpy() for key in ("node_centre", "pair_centre")]
    cut = gather_pixel_groups(image, centres, side * scale)
    # (K, 3, w·s, w·s) -> mean over each s × s block -> (K, 3, w, w).
    blocks = [c.reshape(len(c), 3, side, scale, side, scale).float().mean((3, 5)) for c in cut]
    return {field: unit_range(b.reshape(len(b), 3 * side * side)) for field, b in zip(FIELDS, blocks, strict=True)}


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
    """(count, 3H per filter set) patch vectors: pooled ReLU(x W + b) of each row key in ``filters``' order (per
    entity kind its nodes, then its pairs; ``eps``: see pool)."""
    parts = [pool(torch.relu(rows[k] @ w + b), index[k], count, eps) for k, (w, b) in filters.items()]
    return torch.cat(parts, dim=1)


@torch.no_grad()
def all_patches(windows: Windows, filters: dict[str, tuple[Tensor, Tensor]]) -> np.ndarray:
    """(G, 3H per filter set) patch vectors of every tile under ``filters``."""
    return patch_vectors(windows.rows, windows.graph, windows.count, filters).numpy()


def model_filters(model, kind: str) -> dict[str, tuple[Tensor, Tensor]]:
    """The network's own first projection as filters on standardised windows of ``kind``, keyed as ``Windows`` rows.

    The folded map reads raw windows x with the network's statistics m, s inside: A x + c = (A s) x' + (A m + c)
    on x' = (x - m) / s. The result does not depend on m and s, so it applies to windows standardised with their
    own statistics too.
    """
    stats = {"x": (model.node_mean, model.node_std), "pair_attr": (model.edge_mean, model.edge_std)}
    maps = dict(zip(FIELDS, folded_input_maps(model), strict=True))
    return {f"{kind} {k}": ((a * stats[k][1]).T.contiguous(), a @ stats[k][0] + c) for k, (a, c) in maps.items()}


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
    dims = next(iter(windows.rows.values())).shape[1]
    params = {k: torch.nn.Linear(dims, width) for k in windows.rows}
    pooled = 3 * width * len(params)
    head = torch.nn.Sequential(torch.nn.BatchNorm1d(pooled), torch.nn.Linear(pooled, int(labels.max()) + 1))
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
    parser.add_argument(
        "--kind",
        choices=("tissue", "nuclei", "both"),
        default="tissue",
        help="entity graphs the vector reads; both: a tissue and a nuclei graph per tile, their vectors concatenated",
    )
    parser.add_argument(
        "--context-scale",
        type=int,
        default=1,
        help="cut each window at this many times its side, box-averaged back to its side (1: the stored windows)",
    )
    parser.add_argument("--steps", type=int, default=400, help="optimiser steps per fold of the supervised row")
    parser.add_argument("--batch", type=int, default=128, help="tiles per supervised step")
    args = parser.parse_args()
    if args.context_scale < 1:
        parser.error("--context-scale must be at least 1")
    torch.set_num_threads(1)
    rows = tile_index(args.data_dir, "class_index", "slide", None)
    kinds = ("tissue", "nuclei") if args.kind == "both" else (args.kind,)
    window = GraphConfig().window
    sets = {}
    for kind in kinds:
        cache = cache_file(args.cache, args.data_dir, len(rows), window, kind)
        sets[kind] = build_graphs(rows, cache, args.mpp, window, kind)[0]
    graphs = sets[kinds[0]]
    labels, groups = graphs.labels, np.asarray(graphs.groups)
    for other in sets.values():
        if not (np.array_equal(other.labels, labels) and list(other.groups) == list(groups)):
            raise SystemExit("the entity kinds' caches hold different tiles: delete them and run again")
    dropped = sorted(c for c in set(labels.tolist()) if len(set(groups[labels == c])) < args.folds)
    keep = ~np.isin(labels, dropped)
    config = sized(RECIPE, args.network, "cpu")
    width = config.model.hidden_dim

    def probed(patches: np.ndarray) -> tuple[float, float]:
        return probe(patches, labels, groups, keep, args.folds)["macro_f1"]

    started = time.perf_counter()
    # The same seed gives every kind the same weights; each kind gets its own input statistics.
    models = {kind: initial_model(config, sets[kind]) for kind in kinds}
    own_filters = {key: f for kind, model in models.items() for key, f in model_filters(model, kind).items()}
    results = {"handcrafted": probed(np.hstack([pooled_measurements(sets[kind]) for kind in kinds]))}
    gap = None
    if args.context_scale == 1:
        untrained = np.hstack([embed_dataset(models[kind], sets[kind]).patch for kind in kinds])
        results["random-init"] = probed(untrained)
        bundled = load_pretrained(DEFAULT_PRETRAINED).model
        results["bundled"] = probed(np.hstack([embed_dataset(bundled, sets[kind]).patch for kind in kinds]))
        stats = {}
        for kind, model in models.items():
            stats[f"{kind} x"] = (model.node_mean, model.node_std)
            stats[f"{kind} pair_attr"] = (model.edge_mean, model.edge_std)
        windows = Windows(sets, stats)
        own = all_patches(windows, own_filters)
        # The rows below are only comparable if this script's readout is embed's: check it on the untrained network.
        gap = float(np.abs(own - untrained).max() / np.abs(untrained).max())
        if gap > 1e-3:
            raise SystemExit(f"this script's patch vectors differ from embed_dataset's by {gap:.2e} (relative)")
    else:
        # embed_dataset and the bundled model read the stored windows: the untrained network's row applies its
        # filters to the re-cut windows, standardised with their own statistics as fitting the network would.
        windows = Windows(sets, scale=args.context_scale)
        results["random-init"] = probed(all_patches(windows, own_filters))
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

    print(
        f"{int(keep.sum())} tiles probed, H = {width}, {args.folds} slide-grouped folds, entity graphs: "
        f"{' + '.join(kinds)}, context scale {args.context_scale}, {seconds:.0f} s"
    )
    if gap is None:
        print("readout check: not made (re-cut windows; embed_dataset reads the stored ones); no bundled row")
    else:
        print(f"readout check: the untrained network's patch vectors here and from embed_dataset differ by {gap:.1e}")
    print("| first projection W | macro-F1 % |")
    print("|---|---|")
    for name, (m, s) in results.items():
        print(f"| {name} | {m:.1f} ± {s:.1f} |")
    record = {k: [round(m, 2), round(s, 2)] for k, (m, s) in results.items()}
    summary = {"macro_f1": record, "readout_gap": gap, "seconds": round(seconds)}
    setup = {"network": args.network, "hidden": width, "kind": args.kind, "context_scale": args.context_scale}
    print(json.dumps({"benchmark": "readout_ceiling", **setup, **summary}))


if __name__ == "__main__":
    main()
