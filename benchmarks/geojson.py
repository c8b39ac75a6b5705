"""QuPath GeoJSON export and import of many nuclei: seconds for 100k, against the per-entity methods.

Synthetic nuclei: discs of radius 6 px on a 20-px grid (``--side`` nuclei per side; 317² ≈ 100k),
one region at 0.25 µm/px. Timed stages, export: tracing all outlines at once along pixel edges
(:func:`~hmgdm_core.io.qupath.entity_outlines`), building features, writing the file (orjson);
import: reading and validating it (:func:`~hmgdm_core.io.qupath.read_qupath`: orjson, one numpy
pass over all coordinates), the one-pass scan-line fill alone, and the whole
:func:`~hmgdm_core.entities.nuclei_from_geojson` (reading, filling, measuring the entities).
Baselines, in the same run: the previous per-polygon fill (``skimage.draw.polygon`` per outline,
on the first ``--baseline`` outlines, scaled to all, and checked to give the same labels); the
``json`` module writing and parsing the same features; ``find_contours`` in each entity's
bounding-box crop (first ``--baseline``, scaled) and ``find_contours(labels == i)`` on the whole
image (first 20, scaled). Usage: ``python benchmarks/geojson.py [--quick] [--side 317]
[--repeats 3] [--baseline 5000]``. Prints a table and one final JSON line.
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
from skimage.draw import polygon
from skimage.measure import find_contours

from hmgdm_core.entities import nuclei_from_geojson
from hmgdm_core.io import Region
from hmgdm_core.io.qupath import (
    entity_features,
    entity_outlines,
    polygon_labels,
    polygon_ring_arrays,
    polygon_rings,
    read_qupath,
    write_qupath,
)

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


def per_polygon_fill(objects, region: Region) -> np.ndarray:
    """The previous import: one ``skimage.draw.polygon`` per outline, later outlines overwriting."""
    labels = np.zeros(region.shape, np.int64)
    for number, obj in enumerate(objects, start=1):
        for exterior, _ in polygon_rings(obj.geometry):
            yx = region.from_level0(exterior[:, ::-1])
            rr, cc = polygon(yx[:, 0], yx[:, 1], shape=region.shape)
            labels[rr, cc] = number
    return labels


def export_stages(labels, region, area, path, repeats, rows, base) -> float:
    """Time tracing, building and writing (and the json module on the same features); the file's MiB."""
    rows["trace outlines"], outlines = timed(lambda: entity_outlines(labels, region), repeats)
    rows["build features"], features = timed(
        lambda: entity_features(outlines, measurements={"Area µm^2": area}), repeats
    )
    rows["write file"], _ = timed(lambda: write_qupath(features, path), repeats)
    collection = {"type": "FeatureCollection", "features": features}
    base["json module write"], text = timed(
        lambda: json.dumps(collection, allow_nan=False, ensure_ascii=False, separators=(",", ":")), 1
    )
    base["json module parse"], _ = timed(lambda: json.loads(text), 1)
    return path.stat().st_size / 2**20


def one_pass_fill(objects, region: Region) -> np.ndarray:
    """The fill inside :func:`~hmgdm_core.entities.nuclei_from_geojson`: all outlines in one scan-line pass."""
    xy, sizes, ring_polygon, is_hole, polygon_object = polygon_ring_arrays([o.geometry for o in objects])
    return polygon_labels(
        region.from_level0(xy[:, ::-1]), sizes, ring_polygon, is_hole, polygon_object + 1, region.shape
    )


def fill_stages(path, region, n, k, repeats, rows, base) -> None:
    """Time reading and the one-pass fill, against the per-polygon fill on the first ``k`` outlines (same labels)."""
    rows["read + validate"], objects = timed(lambda: read_qupath(path, image_shape=region.shape), repeats)
    assert len(objects) == n
    rows["fill (one pass)"], filled = timed(lambda: one_pass_fill(objects, region), repeats)
    seconds, reference = timed(lambda: per_polygon_fill(objects[:k], region), 1)
    base["per-polygon skimage fill"] = seconds * n / k
    assert np.array_equal(filled * (filled <= k), reference), "one-pass fill differs from skimage.draw.polygon"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="30² nuclei, one repeat")
    parser.add_argument("--side", type=int, default=317)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--baseline", type=int, default=5000, help="entities timed with the per-entity baselines")
    args = parser.parse_args()
    side, repeats = (30, 1) if args.quick else (args.side, args.repeats)
    labels = disc_labels(side)
    n = side * side
    k = min(args.baseline, n)
    region = Region(0, 0, *labels.shape, base_mpp=0.25)
    rgb = np.full((*labels.shape, 3), 128, np.uint8)
    area = np.bincount(labels.ravel(), minlength=n + 1)[1:] * 0.0625

    rows, base = {}, {}
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "nuclei.geojson"
        # Its features die with the call: the import is timed without the export's millions of objects.
        megabytes = export_stages(labels, region, area, path, repeats, rows, base)
        fill_stages(path, region, n, k, repeats, rows, base)
        rows["import (read + fill + measure)"], ents = timed(lambda: nuclei_from_geojson(path, rgb, region), repeats)
        assert ents.n == n
    t0 = time.perf_counter()
    for label, box in enumerate(ndi.find_objects(labels)[:k], start=1):
        find_contours(np.pad(labels[box] == label, 1).astype(np.float32), 0.5)
    base["per-entity crop trace"] = (time.perf_counter() - t0) * n / k
    t0 = time.perf_counter()
    for label in range(1, min(20, n) + 1):
        find_contours((labels == label).astype(np.float32), 0.5)
    base["full-image trace"] = (time.perf_counter() - t0) * n / min(20, n)
    fill = rows["fill (one pass)"]
    export = rows["trace outlines"] + rows["build features"] + rows["write file"]
    imported = rows["import (read + fill + measure)"]
    ratios = {
        "fill_vs_per_polygon": base["per-polygon skimage fill"] / fill,
        "write_vs_json_module": base["json module write"] / rows["write file"],
        "trace_vs_crops": base["per-entity crop trace"] / rows["trace outlines"],
        "trace_vs_full_image": base["full-image trace"] / rows["trace outlines"],
    }

    print(f"{n} nuclei, label image {labels.shape[0]}², file {megabytes:.1f} MiB, median of {repeats}")
    print(f"{'stage':<34}{'seconds':>10}{'µs / nucleus':>15}")
    for name, value in rows.items():
        print(f"{name:<34}{value:>10.2f}{value / n * 1e6:>15.1f}")
    for name, value in base.items():
        print(f"{'baseline: ' + name:<34}{value:>10.2f}{value / n * 1e6:>15.1f}")
    print(f"(per-entity baselines timed on {k} entities, full-image trace on {min(20, n)}, scaled to {n})")
    print(
        f"export {export:.2f} s, import {imported:.2f} s; fill {ratios['fill_vs_per_polygon']:.1f}× faster than "
        f"per-polygon skimage (same labels), write {ratios['write_vs_json_module']:.1f}× faster than json.dumps, "
        f"tracing {ratios['trace_vs_crops']:.1f}× faster than per-entity crops"
    )
    print(
        json.dumps(
            {
                "benchmark": "geojson",
                "nuclei": n,
                "file_mib": round(megabytes, 2),
                "repeats": repeats,
                "stages_s": {name: round(value, 3) for name, value in rows.items()},
                "fill_s": round(fill, 3),
                "export_s": round(export, 3),
                "import_s": round(imported, 3),
                "baselines_s": {name: round(value, 3) for name, value in base.items()},
                "speedups": {name: round(value, 1) for name, value in ratios.items()},
            }
        )
    )


if __name__ == "__main__":
    main()
