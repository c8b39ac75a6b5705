"""Quality of the default nuclei segmenter on the 27 MoNuSeg 2018 images with instance masks.

Dice (binary foreground), AJI (Kumar et al. 2017) and PQ (Kirillov et al. 2019) per image and
their mean, with the segmentation time. The baseline measured in the same run is Otsu on the
haematoxylin channel with connected components (no splitting), the simplest classical method.
Usage: ``python benchmarks/nuclei_quality.py [--quick]`` (``--quick``: 4 images). Prints a
table and one final JSON line.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import statistics
import time
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import tifffile
from scipy import ndimage as ndi

from hmgdm_core.entities import NucleiConfig, instance_scores, nuclei_entities, stain_od

MONUSEG = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "monuseg"


def otsu_components(rgb: np.ndarray) -> np.ndarray:
    from skimage.filters import threshold_otsu

    h = stain_od(rgb, 0)
    return ndi.label(h > threshold_otsu(h))[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="first 4 images only")
    args = parser.parse_args()
    with (MONUSEG / "index.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    if args.quick:
        rows = rows[:4]
    config = NucleiConfig()
    results = []
    print(
        f"{'image':<26} {'organ':<9} {'n_true':>6} {'n_pred':>6} {'dice':>6} {'aji':>6} {'pq':>6} {'ms':>6} "
        f"| {'otsu-cc aji':>11} {'pq':>6}"
    )
    for row in rows:
        mpp = float(row["mpp"]) if row["mpp"] and not math.isnan(float(row["mpp"])) else 0.25
        rgb = tifffile.imread(MONUSEG / row["image"])
        truth = iio.imread(MONUSEG / row["instance_mask"])
        t0 = time.perf_counter()
        ents = nuclei_entities(rgb, mpp, config)
        ms = (time.perf_counter() - t0) * 1000
        s = instance_scores(truth, ents.labels)
        b = instance_scores(truth, otsu_components(rgb))
        results.append(
            {
                "id": row["id"],
                "organ": row["organ"],
                **{k: round(float(v), 4) for k, v in s.items()},
                "ms": round(ms, 1),
                "baseline_aji": round(b["aji"], 4),
                "baseline_pq": round(b["pq"], 4),
                "baseline_dice": round(b["dice"], 4),
            }
        )
        print(
            f"{row['id']:<26} {row['organ']:<9} {s['n_true']:6d} {s['n_pred']:6d} {s['dice']:6.3f} "
            f"{s['aji']:6.3f} {s['pq']:6.3f} {ms:6.0f} | {b['aji']:11.3f} {b['pq']:6.3f}",
            flush=True,
        )
    mean = {
        k: round(statistics.fmean(r[k] for r in results), 4)
        for k in ("dice", "aji", "pq", "baseline_dice", "baseline_aji", "baseline_pq")
    }
    median_ms = statistics.median(r["ms"] for r in results)
    print(
        f"{'mean':<36} {'':>13} {mean['dice']:6.3f} {mean['aji']:6.3f} {mean['pq']:6.3f} {median_ms:6.0f} | "
        f"{mean['baseline_aji']:11.3f} {mean['baseline_pq']:6.3f}"
    )
    print(
        json.dumps(
            {
                "benchmark": "nuclei_quality",
                "baseline": "otsu-haematoxylin connected components",
                "images": len(results),
                "mean": mean,
                "median_ms": median_ms,
                "per_image": results,
            }
        )
    )


if __name__ == "__main__":
    main()
