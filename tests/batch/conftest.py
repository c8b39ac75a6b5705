"""Small slide lists on the bundled sample: two regions, a crop, a blank slide and a corrupt file."""

from pathlib import Path

import numpy as np
import pytest

from hmgdm_core.io import open_slide, write_ome_tiff

# Level-0 boxes over tissue: 600² px at 0.499 µm/px read at 1 µm/px is 299², so 2 × 2 patches of 128².
BOXES = ((1280, 768, 600, 600), (1792, 1024, 600, 600))


@pytest.fixture()
def regions_csv(tmp_path: Path, sample_svs: Path) -> Path:
    """A CSV of two labelled regions of the sample slide, with a relative slide path."""
    (tmp_path / "slides").mkdir()
    (tmp_path / "slides" / "cmu.svs").symlink_to(sample_svs)
    rows = [f"slides/cmu.svs,{y},{x},{h},{w},{label},case{label}" for label, (y, x, h, w) in enumerate(BOXES)]
    path = tmp_path / "regions.csv"
    path.write_text("slide,y,x,height,width,label,group\n" + "\n".join(rows) + "\n")
    return path


@pytest.fixture()
def crop_slide(tmp_path: Path, sample_svs: Path) -> Path:
    """A second slide: a 900² crop of the sample over tissue, written as pyramidal OME-TIFF."""
    with open_slide(sample_svs) as slide:
        image = slide.read_region(1500, 800, 900, 900)
        mpp = slide.mpp
    return write_ome_tiff(tmp_path / "crop.ome.tif", image, mpp)


@pytest.fixture()
def blank_slide(tmp_path: Path) -> Path:
    """A slide of bare glass (no tissue)."""
    return write_ome_tiff(tmp_path / "blank.ome.tif", np.full((600, 600, 3), 235, np.uint8), 0.5)


@pytest.fixture()
def corrupt_slide(tmp_path: Path) -> Path:
    """A file that claims to be a TIFF and is not."""
    path = tmp_path / "corrupt.svs"
    path.write_bytes(b"II*\x00" + bytes(range(256)) * 8)
    return path
