"""Entity-graph construction time per tile, against histocartography's straightforward approach.

Ours: SLIC on a reduced image + vectorised adjacency, bincount statistics and running-sum colour
merge (tissue); LUT colour deconvolution + chamfer-distance watershed + cKDTree kNN (nuclei);
one vectorised gather for all 32×32 windows. Baseline, run in the same process on the same
tiles: what histocartography does (full-resolution skimage SLIC, ``skimage.graph.RAG`` +
``merge_hierarchical`` with per-label feature loops, per-label full-image dilation for the
adjacency, ``regionprops`` centroids, dense N × N kNN, per-entity window loops; nuclei by the
float64 ``rgb2hed`` → EDT → ``peak_local_max`` path). The baseline keeps its merge state as
sums, which makes it faster than histocartography itself (which re-stacks pixels per merge), so
the ratios are conservative.

Tiles: 1024² = a MoNuSeg 1000² 40x tile reflect-padded; 2048² = four MoNuSeg tiles side by
side (40x). ``--kather N`` also times building the tissue-graph dataset of the first N Kather
2016 tiles (150², 0.495 µm/px; N = 2400 for all). Usage:
``python benchmarks/graph_build.py [--quick] [--repeats 5] [--kather 2400]``. Prints a table and
one final JSON line.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np
import tifffile
from scipy import ndimage as ndi

from hmgdm_core.entities import NucleiConfig, SuperpixelConfig
from hmgdm_core.graph import GraphConfig, graph_from_image

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
MONUSEG = SHARED / "monuseg" / "images"
KATHER = SHARED / "kather2016-crc-texture"
MPP = 0.25
WINDOW = 32


def tiles() -> dict[str, np.ndarray]:
    paths = sorted((MONUSEG / "train").glob("*.tif"))
    images = [tifffile.imread(p) for p in paths[:4]]
    one = np.pad(images[3], ((0, 24), (0, 24), (0, 0)), mode="reflect")
    padded = [np.pad(im, ((0, 24), (0, 24), (0, 0)), mode="reflect") for im in images]
    mosaic = np.concatenate([np.concatenate(padded[:2], 1), np.concatenate(padded[2:], 1)], 0)
    return {"1024": np.ascontiguousarray(one), "2048": np.ascontiguousarray(mosaic)}


def timed(fn, repeats: int, warm_up: bool = True) -> tuple[float, float, object]:
    if warm_up:  # the baseline takes seconds per call: no warm-up needed to hide import costs
        fn()
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1000, min(times) * 1000, out


# ---- baseline: histocartography's algorithms, straightforwardly -------------------------------------------------
def _windows_loop(rgb: np.ndarray, points: np.ndarray) -> np.ndarray:
    half = WINDOW // 2
    padded = np.pad(rgb, ((half, half), (half, half), (0, 0)), mode="reflect")
    out = np.empty((len(points), 3 * WINDOW * WINDOW), np.float32)
    for i, (y, x) in enumerate(np.rint(points).astype(int)):
        out[i] = padded[y : y + WINDOW, x : x + WINDOW].transpose(2, 0, 1).ravel() / 127.5 - 1
    return out


def _rag_builder(labels: np.ndarray) -> np.ndarray:
    ids = np.unique(labels[labels > 0])
    adjacency = np.zeros((ids.max() + 1, ids.max() + 1), np.uint8)
    for i in ids:
        mask = labels == i
        ring = ndi.binary_dilation(mask, np.ones((3, 3), bool)) & ~mask
        adjacency[i, np.unique(labels[ring])] = 1
    adjacency[:, 0] = 0
    return np.argwhere(np.triu(adjacency | adjacency.T, 1))


def _node_features(pix: np.ndarray) -> dict:
    mean = pix.mean(0)
    hist = np.stack([np.histogram(pix[:, c], bins=4, range=(0, 256))[0] for c in range(3)]).astype(float)
    return {
        "sum": pix.sum(0).astype(float),
        "count": len(pix),
        "hist_counts": hist,
        "mean": mean / max(np.linalg.norm(mean), 1e-12),
        "hist": hist / np.maximum(np.linalg.norm(hist, axis=1, keepdims=True), 1e-12),
    }


def _weight(a: dict, b: dict) -> float:
    hist = np.linalg.norm(a["hist"] - b["hist"], axis=1).mean() / 2
    return 0.5 * hist + 0.5 * np.linalg.norm(a["mean"] - b["mean"]) / 2


def baseline_tissue(rgb: np.ndarray, n_segments: int, merge: bool) -> tuple[int, int]:
    from skimage import graph as skg
    from skimage.measure import regionprops
    from skimage.segmentation import slic

    labels = slic(rgb, n_segments=n_segments, compactness=20, sigma=1, max_num_iter=10, start_label=1)
    if merge:
        rag = skg.RAG(labels, connectivity=2)
        for n in rag.nodes:  # per-label loop over full-image masks
            rag.nodes[n].update(_node_features(rgb[labels == n]), labels=[n])
        for a, b, d in rag.edges(data=True):
            d["weight"] = _weight(rag.nodes[a], rag.nodes[b])

        def merge_func(graph, src, dst):
            s, d = graph.nodes[src], graph.nodes[dst]
            d["sum"] += s["sum"]
            d["count"] += s["count"]
            d["hist_counts"] += s["hist_counts"]
            mean = d["sum"] / d["count"]
            d["mean"] = mean / max(np.linalg.norm(mean), 1e-12)
            d["hist"] = d["hist_counts"] / np.maximum(np.linalg.norm(d["hist_counts"], axis=1, keepdims=True), 1e-12)

        def weight_func(graph, src, dst, n):
            return {"weight": _weight(graph.nodes[dst], graph.nodes[n])}

        labels = (
            skg.merge_hierarchical(
                labels,
                rag,
                thresh=0.02,
                rag_copy=False,
                in_place_merge=True,
                merge_func=merge_func,
                weight_func=weight_func,
            )
            + 1
        )
    pairs = _rag_builder(labels)
    points = np.array([p.centroid for p in regionprops(labels)])
    _windows_loop(rgb, points)
    _windows_loop(
        rgb,
        (
            points[np.searchsorted(np.unique(labels), pairs[:, 0])]
            + points[np.searchsorted(np.unique(labels), pairs[:, 1])]
        )
        / 2,
    )
    return len(points), 2 * len(pairs)


def baseline_nuclei(rgb: np.ndarray) -> tuple[int, int]:
    from scipy.spatial.distance import cdist
    from skimage.color import rgb2hed
    from skimage.feature import peak_local_max
    from skimage.filters import gaussian, threshold_otsu
    from skimage.measure import label, regionprops
    from skimage.morphology import remove_small_objects
    from skimage.segmentation import watershed

    h = gaussian(rgb2hed(rgb)[..., 0], 2)
    fg = remove_small_objects(h > threshold_otsu(h), max_size=160)
    dist = ndi.distance_transform_edt(fg)
    peaks = peak_local_max(dist, min_distance=6, labels=label(fg), exclude_border=False)
    markers = np.zeros(fg.shape, np.int32)
    markers[tuple(peaks.T)] = np.arange(1, len(peaks) + 1)
    labels = watershed(-dist, markers, mask=fg)
    points = np.array([p.centroid for p in regionprops(labels)])
    d = cdist(points, points)  # dense N × N, as kneighbors_graph(...).toarray()
    np.fill_diagonal(d, np.inf)
    nearest = np.argsort(d, axis=1)[:, :5]
    pairs = {(min(i, j), max(i, j)) for i in range(len(points)) for j in nearest[i] if d[i, j] <= 50}
    pairs = np.array(sorted(pairs))
    _windows_loop(rgb, points)
    _windows_loop(rgb, (points[pairs[:, 0]] + points[pairs[:, 1]]) / 2)
    return len(points), 2 * len(pairs)


def kather_dataset(n: int) -> dict:
    import csv
    import tempfile

    from hmgdm_core.graph import dataset_from_folder

    with (KATHER / "index.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))[:n]
    with tempfile.TemporaryDirectory() as tmp:
        index = Path(tmp) / "index.csv"
        lines = [f"{KATHER / r['path']},{r['class_index']},{r['slide']}\n" for r in rows]
        index.write_text("path,class_index,slide\n" + "".join(lines))
        t0 = time.perf_counter()
        dataset = dataset_from_folder(tmp, 0.495, GraphConfig(kind="tissue"))
        seconds = time.perf_counter() - t0
        saved = dataset.save(Path(tmp) / "kather.pt")
        size_mb = saved.stat().st_size / 1e6
    nodes = np.array([len(r["x"]) for r in dataset.records])
    out = {
        "tiles": len(dataset),
        "seconds": round(seconds, 1),
        "ms_per_tile": round(1000 * seconds / len(dataset), 1),
        "nodes_median": float(np.median(nodes)),
        "empty_graphs": int((nodes == 0).sum()),
        "file_mb": round(size_mb, 1),
    }
    print(
        f"Kather dataset: {out['tiles']} tiles in {out['seconds']} s ({out['ms_per_tile']} ms/tile), median "
        f"{out['nodes_median']:.0f} nodes, {out['empty_graphs']} empty graphs, file {out['file_mb']} MB"
    )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1024² only, 2 repeats, 1 baseline run")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--baseline-repeats", type=int, default=3, help="at 1024²; the 2048² baseline runs once")
    parser.add_argument("--sizes", nargs="+", default=["1024", "2048"], choices=["1024", "2048"])
    parser.add_argument("--kather", type=int, default=0, help="also build graphs of the first N Kather tiles")
    args = parser.parse_args()
    repeats = 2 if args.quick else args.repeats
    base_repeats = 1 if args.quick else args.baseline_repeats
    images = tiles()
    sizes = ["1024"] if args.quick else args.sizes
    cases = {
        "tissue+merge": (GraphConfig(kind="tissue"), True),
        "tissue": (GraphConfig(kind="tissue", superpixels=SuperpixelConfig(merge_threshold=0)), False),
        "nuclei": (GraphConfig(kind="nuclei", nuclei=NucleiConfig()), None),
    }
    rows = []
    for config, _ in cases.values():  # first calls pay for allocator growth; keep that out of every case
        graph_from_image(images["1024"], MPP, config)
    print(
        f"{'tile':>6} {'graph':<13} {'ours ms':>9} {'(min)':>7} {'nodes':>6} {'edges':>6} "
        f"{'baseline ms':>12} {'nodes':>6} {'edges':>6} {'speed-up':>9}"
    )
    for size in sizes:
        rgb = images[size]
        for name, (config, merge) in cases.items():
            med, best, graph = timed(lambda rgb=rgb, config=config: graph_from_image(rgb, MPP, config), repeats)
            n_seg = round(rgb.shape[0] * rgb.shape[1] * MPP**2 / config.superpixels.superpixel_um**2)
            if merge is None:
                b_fn = lambda rgb=rgb: baseline_nuclei(rgb)  # noqa: E731
            else:
                b_fn = lambda rgb=rgb, merge=merge, n_seg=n_seg: baseline_tissue(rgb, n_seg, merge)  # noqa: E731
            # Minutes per call at 2048² (per-label full-image dilation): one run is enough for the ratio.
            b_med, _, (b_nodes, b_edges) = timed(b_fn, base_repeats if size == "1024" else 1, warm_up=False)
            row = {
                "tile": int(size),
                "graph": name,
                "ours_ms": round(med, 1),
                "ours_min_ms": round(best, 1),
                "nodes": graph.num_nodes,
                "edges": graph.num_edges,
                "baseline_ms": round(b_med, 1),
                "baseline_nodes": b_nodes,
                "baseline_edges": b_edges,
                "speedup": round(b_med / med, 1),
            }
            rows.append(row)
            print(
                f"{size + '²':>6} {name:<13} {med:9.1f} {best:7.1f} {graph.num_nodes:6d} {graph.num_edges:6d} "
                f"{b_med:12.1f} {b_nodes:6d} {b_edges:6d} {b_med / med:8.1f}×",
                flush=True,
            )
    kather = kather_dataset(args.kather) if args.kather else None
    print(
        json.dumps(
            {
                "benchmark": "graph_build",
                "baseline": "histocartography-style (full-res SLIC, skimage RAG merge, per-label loops)",
                "repeats": repeats,
                "baseline_repeats_1024": base_repeats,
                "baseline_repeats_2048": 1,
                "results": rows,
                "kather_dataset": kather,
            }
        )
    )


if __name__ == "__main__":
    main()
