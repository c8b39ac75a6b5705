"""A real H&E tile for graph tests."""

import numpy as np
import pytest

MONUSEG_MPP = 0.25  # MoNuSeg tiles are 40x


@pytest.fixture(scope="session")
def he_tile(monuseg_dir):
    """A 1000² MoNuSeg H&E tile (breast, 40x), uint8 RGB."""
    import tifffile

    return tifffile.imread(monuseg_dir / "images" / "train" / "TCGA-A7-A13E-01Z-00-DX1.tif")


@pytest.fixture(scope="session")
def he_crop(he_tile):
    """A 320 × 384 crop (rows × cols) of the tile."""
    return np.ascontiguousarray(he_tile[100:420, 200:584])
