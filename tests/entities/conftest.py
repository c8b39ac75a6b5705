"""Small real H&E crops for entity tests."""

import csv
import math

import numpy as np
import pytest


@pytest.fixture(scope="session")
def monuseg_rows(monuseg_dir):
    with (monuseg_dir / "index.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    for row in rows:  # a few rows lack the XML's resolution; MoNuSeg is 40x
        row["mpp"] = float(row["mpp"]) if row["mpp"] and not math.isnan(float(row["mpp"])) else 0.25
    return rows


@pytest.fixture(scope="session")
def he_image(monuseg_dir, monuseg_rows):
    """One MoNuSeg image (1000², 40x) with its instance mask and µm/px."""
    import imageio.v3 as iio
    import tifffile

    row = next(r for r in monuseg_rows if r["organ"] == "breast")
    return (tifffile.imread(monuseg_dir / row["image"]), iio.imread(monuseg_dir / row["instance_mask"]), row["mpp"])


@pytest.fixture(scope="session")
def he_crop(he_image):
    """A 320 × 384 crop (rows × cols) of the H&E image, uint8 RGB."""
    return np.ascontiguousarray(he_image[0][100:420, 200:584])
