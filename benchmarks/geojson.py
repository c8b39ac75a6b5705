"""QuPath GeoJSON export and import of many nuclei: seconds for 100k, against per-entity full-image tracing.

Synthetic nuclei: discs of radius 6 px on a 20-px grid (``--side`` nuclei per side; 317² ≈ 100k),
one region at 0.25 µm/px. Timed stages: tracing all outlines at once along pixel edges
(:func:`~hmgdm_core.io.qupath.entity_outlines`), building features, writing the file, reading and
validating it (:func:`~hmgdm_core.io.qupath.read_qupath`), and rasterising it back into entities
(:func:`~hmgdm_core.entities.nuclei_from_geojson`). Baselines, in the same run: the straightforward
``find_contours(labels == i)`` on the whole label image per entity (what the design note warns
about), timed on the first ``--baseline`` entities and scaled to all; and ``find_contours`` in each
entity's bounding-box crop (``ndimage.find_objects``), timed on all entities. Usage:
``python benchmarks/geojson.py [--quick] [--side 317] [--repeats 3]``. Prints a table and one final JSON line.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi
from skimage.measure import find_contours

from hmgdm_core.entities import nuclei_from_geojson
from hmgdm_core.io import Region
from hmgdm_core.io.qupath import entity_features, entity_outlines, read_qupath, write_qupath

SPACING, RADIUS = 20, 6


def disc_labels(side: int) -> np.ndarray:
    size = side * SPACING
    labels = np.zeros((size, size), np.int32)
    yy, xx = np.mgrid[-RADIUS : RADIUS + 1, -RADIUS : RADIUS + 1]
    disc = yy**2 + xx**2 <= RADIUS**2
    block = np.zeros((SPACING, SPACING), bool)
    block[SPACING // 2 - RADIUS : SPACING // 2 + RADIUS + 1, SPACING // 2 - RADIUS : SPACING // 2 + RADIUS + 1] = disc
    ids = np.arange(1, side * side + 1, dtype=np.int32).reshape(side, side)
    labels[:] = np.kron(ids, np.ones((SPACING, SPACING), np.int32)) * np.tile(block, (side, side))
    return labels


def timed(fn, repeats: int):
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="30² nuclei, one repeat")
    parser.add_argument("--side", type=int, default=317)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--baseline", type=int, default=20, help="entities timed with full-image tracing")
    args = parser.parse_args()
    side, repeats = (30, 1) if args.quick else (args.side, args.repeats)
    labels = disc_labels(side)
    n = side * side
    region = Region(0, 0, *labels.shape, base_mpp=0.25)
    rgb = np.full((*labels.shape, 3), 128, np.uint8)
    area = np.bincount(labels.ravel(), minlength=n + 1)[1:] * 0.0625

    rows = {}
    rows["trace outlines"], outlines = timed(lambda: entity_outlines(labels, region), repeats)
    rows["build features"], features = timed(
        lambda: entity_features(outlines, measurements={"Area µm^2": area}), repeats
    )
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "nuclei.geojson"
        rows["write file"], _ = timed(lambda: write_qupath(features, path), repeats)
        megabytes = path.stat().st_size / 2**20
        rows["read + validate"], objects = timed(lambda: read_qupath(path, image_shape=labels.shape), repeats)
        assert len(objects) == n
        rows["rasterise to entities"], ents = timed(lambda: nuclei_from_geojson(path, rgb, region), 1)
        assert ents.n == n
    t0 = time.perf_counter()
    for label, box in enumerate(ndi.find_objects(labels), start=1):
        find_contours(np.pad(labels[box] == label, 1).astype(np.float32), 0.5)
    crop_baseline = time.perf_counter() - t0
    k = min(args.baseline, n)
    t0 = time.perf_counter()
    for label in range(1, k + 1):
        find_contours((labels == label).astype(np.float32), 0.5)
    per_entity_baseline = (time.perf_counter() - t0) / k
    baseline_total = per_entity_baseline * n
    export = rows["trace outlines"] + rows["build features"] + rows["write file"]
    imported = rows["read + validate"] + rows["rasterise to entities"]

    print(f"{n} nuclei, label image {labels.shape[0]}², file {megabytes:.1f} MiB, median of {repeats}")
    print(f"{'stage':<28}{'seconds':>10}{'µs / nucleus':>15}")
    for name, seconds in rows.items():
        print(f"{name:<28}{seconds:>10.2f}{seconds / n * 1e6:>15.1f}")
    print(
        f"{'baseline: full-image trace':<28}{baseline_total:>10.1f}{per_entity_baseline * 1e6:>15.1f}"
        f"   (timed on {k} entities, scaled to {n})"
    )
    print(f"{'baseline: per-entity crops':<28}{crop_baseline:>10.2f}{crop_baseline / n * 1e6:>15.1f}")
    ratio = baseline_total / rows["trace outlines"]
    print(
        f"export {export:.2f} s, import {imported:.2f} s; tracing {ratio:.0f}× faster than the full-image "
        f"baseline, {crop_baseline / rows['trace outlines']:.1f}× faster than per-entity crops"
    )
    print(
        json.dumps(
            {
                "benchmark": "geojson",
                "nuclei": n,
                "file_mib": round(megabytes, 2),
                "repeats": repeats,
                "stages_s": {k: round(v, 3) for k, v in rows.items()},
                "export_s": round(export, 3),
                "import_s": round(imported, 3),
                "baseline_full_image_trace_s": round(baseline_total, 1),
                "baseline_crop_trace_s": round(crop_baseline, 3),
                "trace_speedup_vs_baseline": round(ratio, 1),
                "trace_speedup_vs_crops": round(crop_baseline / rows["trace outlines"], 2),
            }
        )
    )


if __name__ == "__main__":
    main()
