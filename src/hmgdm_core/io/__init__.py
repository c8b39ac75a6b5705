"""Reading slides and regions, writing pyramidal OME-TIFF."""

from hmgdm_core.io.levels import Level
from hmgdm_core.io.ome_tiff import write_ome_tiff
from hmgdm_core.io.region import Region
from hmgdm_core.io.slide import Slide, open_slide

__all__ = ["Level", "Region", "Slide", "open_slide", "write_ome_tiff"]
