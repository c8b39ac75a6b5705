"""Shared fixtures: the real data in ../shared/data and the bundled sample slide."""

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


def shared_path(*parts: str) -> Path:
    """Path under ../shared/data; fails in CI (CI is set) and skips elsewhere when it is missing."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        message = f"real test data missing: {path} (the repository expects ../shared beside it)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


@pytest.fixture(scope="session")
def monuseg_dir() -> Path:
    """MoNuSeg 2018: 27 H&E tiles, 1000² at 40x, with instance masks (CC BY-NC-SA, tests only)."""
    return shared_path("monuseg")


@pytest.fixture(scope="session")
def kather_dir() -> Path:
    """Kather 2016 CRC texture tiles: 8 classes × 300 tiles of 150², with index.csv."""
    return shared_path("kather2016-crc-texture")


@pytest.fixture(scope="session")
def qupath_dir() -> Path:
    """Real QuPath GeoJSON exports."""
    return shared_path("qupath-geojson")


@pytest.fixture(scope="session")
def sample_svs() -> Path:
    """The bundled CMU-1 small-region SVS (CC0), shipped inside the package."""
    from hmgdm_core.sample import sample_slide_path

    return sample_slide_path()


@pytest.fixture(scope="session")
def small_patch_graphs(sample_svs: Path) -> list:
    """Four tissue graphs of 80² patches of the bundled slide (8² windows: F = 192), for small models."""
    from hmgdm_core.graph import GraphConfig, dataset_from_region
    from hmgdm_core.io import Region, open_slide

    with open_slide(sample_svs) as slide:
        region = Region(1200, 900, 320, 320, slide.mpp, 2 * slide.mpp)
        dataset = dataset_from_region(slide.read(region), region, 80, GraphConfig(window=8))
    return [dataset[i] for i in range(len(dataset))]
