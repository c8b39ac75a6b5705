"""npe2 sample data: the bundled CMU-1 small-region slide."""

from hmgdm_core.sample import sample_slide_path
from napari_hmgdm._reader import read_slide

__all__ = ["cmu1_sample"]


def cmu1_sample() -> list[tuple]:
    """The CMU-1 small region (CC0 Aperio SVS, 20x, 0.499 µm/px) as an RGB layer in µm."""
    return read_slide(str(sample_slide_path()))
