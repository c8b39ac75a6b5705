"""Median time of 1024² region reads from a tiled pyramid vs decoding the whole image.

Builds a tiled, pyramidal OME-TIFF (256² zlib tiles) from a real H&E image mirrored to
``--size``² pixels, then times ``Slide.read_region`` of ``--box``² boxes at random places
(level 0 and a 2x coarser target resolution) against the baseline that a reader without
tiles has to pay: decoding the full level-0 image and cropping it.

    OMP_NUM_THREADS=1 python benchmarks/read_region.py [--size 8192] [--repeats 7] [--quick]

Prints a table and one JSON line.
"""

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import tifffile

from hmgdm_core.io import open_slide, write_ome_tiff
from hmgdm_core.sample import sample_slide_path

MONUSEG = Path(__file__).resolve().parents[2] / "shared" / "data" / "monuseg" / "images" / "train"


def source_tile() -> tuple[np.ndarray, str]:
    tiles = sorted(MONUSEG.glob("*.tif"))
    if tiles:
        return tifffile.imread(tiles[0]), tiles[0].name
    return tifffile.imread(sample_slide_path())[:2048, :2048], "CMU-1-Small-Region.svs"


def mirrored(tile: np.ndarray, size: int) -> np.ndarray:
    row = np.concatenate([tile, tile[:, ::-1]], axis=1)
    block = np.concatenate([row, row[::-1]], axis=0)
    reps = (-(-size // block.shape[0]), -(-size // block.shape[1]), 1)
    return np.tile(block, reps)[:size, :size]


def median_ms(fn, repeats: int) -> float:
    fn()  # warm-up (file cache, decoder set-up)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=8192, help="edge of the test image in pixels")
    parser.add_argument("--box", type=int, default=1024, help="edge of each read in level-0 pixels")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--quick", action="store_true", help="2048² image, 3 repeats (smoke run)")
    args = parser.parse_args()
    if args.quick:
        args.size, args.repeats = 2048, 3
    tile, name = source_tile()
    image = mirrored(tile, args.size)
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        path = write_ome_tiff(Path(tmp) / "bench.ome.tif", image, mpp=0.25, tile=256)
        del image
        slide = open_slide(path)
        corners = rng.integers(0, args.size - args.box, size=(args.repeats + 1, 2))
        it = iter(np.tile(corners, (4, 1)))

        def tiled_level0():
            y, x = next(it)
            return slide.read_region(int(y), int(x), args.box, args.box)

        def tiled_half_res():
            y, x = next(it)
            return slide.read_region(int(y), int(x), args.box, args.box, mpp=0.5)

        def full_decode_then_crop():
            y, x = corners[0]
            return tifffile.imread(path)[y : y + args.box, x : x + args.box]

        rows = {
            "read_region level 0 (tiled pyramid)": median_ms(tiled_level0, args.repeats),
            "read_region at 0.5 µm/px (level 1)": median_ms(tiled_half_res, args.repeats),
            "baseline: full level-0 decode + crop": median_ms(full_decode_then_crop, max(3, args.repeats // 2)),
        }
        slide.close()
    base = rows["baseline: full level-0 decode + crop"]
    print(f"source {name}, image {args.size}² RGB, 256² zlib tiles, box {args.box}², median of {args.repeats}")
    print(f"{'method':<42} {'median ms':>10} {'speed-up':>9}")
    for method, ms in rows.items():
        print(f"{method:<42} {ms:>10.1f} {base / ms:>8.1f}x")
    print(json.dumps({
        "benchmark": "read_region", "image_px": args.size, "box_px": args.box, "repeats": args.repeats,
        "median_ms": {k: round(v, 2) for k, v in rows.items()},
        "speedup_vs_full_decode": round(base / rows["read_region level 0 (tiled pyramid)"], 1),
    }))


if __name__ == "__main__":
    main()
