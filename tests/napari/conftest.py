"""Viewer fixtures: the sample slide opened through the plugin and a rectangle drawn on tissue."""

import numpy as np
import pytest

MPP = 0.499
# Level-0 (y, x, height, width) of a box over the epidermis of the sample slide.
BOX = (1500, 800, 512, 512)


@pytest.fixture
def roi_box():
    """``((y, x, height, width) in level-0 px, level-0 µm/px)`` of the drawn rectangle."""
    return BOX, MPP


@pytest.fixture
def slide_viewer(make_napari_viewer, sample_svs):
    """A shown viewer with the sample slide and a Shapes layer holding one rectangle (world µm)."""
    viewer = make_napari_viewer(show=True)
    (image,) = viewer.open(str(sample_svs), plugin="napari-hmgdm")
    y, x, h, w = BOX
    # Level-0 pixel centres sit at index * mpp in world units; the rectangle hugs the pixels' outer edges.
    corners = np.array([[y - 0.5, x - 0.5], [y + h - 0.5, x + w - 0.5]]) * MPP
    shapes = viewer.add_shapes(
        [corners], shape_type="rectangle", name="roi", edge_color="cyan", face_color="transparent", units=("µm", "µm")
    )
    return viewer, image, shapes
