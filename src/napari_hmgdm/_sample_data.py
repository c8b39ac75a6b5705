"""npe2 sample data: the bundled CMU-1 small-region slide, alone or with a region drawn on it.

Two samples, so napari groups them under File ▸ Open Sample ▸ H-MGDM (a plugin's single sample is
listed loose in that menu).
"""

import numpy as np

from hmgdm_core.sample import sample_slide_path
from napari_hmgdm._reader import read_slide

__all__ = ["SAMPLE_BOX", "cmu1_region_sample", "cmu1_sample"]

SAMPLE_BOX = (1400, 700, 768, 768)
"""Level-0 ``(y, x, height, width)`` of the drawn region: epidermis and dermis of the sample slide."""


def cmu1_sample() -> list[tuple]:
    """The CMU-1 small region (CC0 Aperio SVS, 20x, 0.499 µm/px) as an RGB layer in µm."""
    return read_slide(str(sample_slide_path()))


def cmu1_region_sample() -> list[tuple]:
    """The CMU-1 small region and a Shapes layer ``region`` with one rectangle over tissue (world µm)."""
    (slide,) = cmu1_sample()
    mpp = slide[1]["scale"][0]
    y, x, h, w = SAMPLE_BOX
    # Level-0 pixel centres sit at index · mpp: the rectangle hugs the pixels' outer edges.
    corners = np.array([[y - 0.5, x - 0.5], [y + h - 0.5, x + w - 0.5]]) * mpp
    region = {"name": "region", "shape_type": "rectangle", "edge_color": "cyan", "face_color": "transparent",
              "edge_width": 4, "units": ("µm", "µm")}  # fmt: skip
    return [slide, ([corners], region, "shapes")]
