"""Low-resolution tissue masks, so later stages can refuse regions without tissue.

Glass is nearly grey (HSV saturation ≈ 0.01 on the bundled slide) while eosin and
haematoxylin are saturated (≥ 0.15). Otsu on saturation finds that split on a slide with
background, but on a crop that is all tissue it would cut the tissue in two (pale stroma
against dark nuclei), so the Otsu threshold is clipped into a narrow band just above glass.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from hmgdm_core.errors import InputError, NoTissueError
from hmgdm_core.io.region import Region
from hmgdm_core.io.slide import Slide

__all__ = ["TissueConfig", "TissueMask", "compute_tissue_mask", "require_tissue", "tissue_mask_from_rgb"]


@dataclass(frozen=True)
class TissueConfig:
    """How tissue is told from glass.

    Parameters
    ----------
    mask_mpp : float
        Resolution of the slide-level mask in µm per pixel (8 µm/px: a 40x slide of
        100k² px gives a 3k² mask).
    saturation_floor, saturation_ceiling : float
        The Otsu threshold on HSV saturation (0–1) is clipped into this band.
    min_object_um2 : float
        Tissue pieces smaller than this (dust, debris) are dropped, in µm².
    max_hole_um2 : float
        Holes smaller than this inside tissue (lumens, tears) are filled, in µm².
    """

    mask_mpp: float = 8.0
    saturation_floor: float = 0.05
    saturation_ceiling: float = 0.10
    min_object_um2: float = 5_000.0
    max_hole_um2: float = 5_000.0


def tissue_mask_from_rgb(rgb: np.ndarray, mpp: float, config: TissueConfig = TissueConfig()) -> np.ndarray:
    """Boolean tissue mask of an RGB image.

    Parameters
    ----------
    rgb : ndarray, shape (rows, cols, 3), uint8
        The image.
    mpp : float
        Its resolution in µm per pixel (for the size filters).
    config : TissueConfig
        Thresholds and size filters.

    Returns
    -------
    ndarray, shape (rows, cols), bool
        True on tissue.
    """
    from scipy import ndimage as ndi
    from skimage.color import rgb2hsv
    from skimage.filters import threshold_otsu
    from skimage.morphology import remove_small_objects

    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise InputError(f"tissue_mask_from_rgb needs a (rows, cols, 3) uint8 RGB image, got {rgb.shape} {rgb.dtype}.")
    if not (math.isfinite(mpp) and mpp > 0):
        raise InputError(f"mpp must be a finite positive number of µm per pixel, got {mpp!r}.")
    saturation = rgb2hsv(rgb)[..., 1]
    try:
        otsu = threshold_otsu(saturation)
    except ValueError:  # a constant image has no threshold; the floor decides
        otsu = config.saturation_floor
    threshold = float(np.clip(otsu, config.saturation_floor, config.saturation_ceiling))
    mask = saturation > threshold
    px_area = mpp * mpp
    mask = remove_small_objects(mask, max_size=max(0, int(config.min_object_um2 / px_area) - 1))
    # Only true holes (background not reaching the image border) are filled, so glass is
    # never turned into tissue however small the image is.
    holes = ndi.binary_fill_holes(mask) & ~mask
    small_holes = remove_small_objects(holes, max_size=max(0, int(config.max_hole_um2 / px_area) - 1)) ^ holes
    return mask | small_holes


@dataclass(frozen=True)
class TissueMask:
    """A slide's tissue mask at low resolution.

    Parameters
    ----------
    mask : ndarray, shape (rows, cols), bool
        True on tissue.
    downsample : tuple of float
        ``(dy, dx)``: level-0 pixels per mask pixel.
    """

    mask: np.ndarray
    downsample: tuple[float, float]

    @property
    def fraction_total(self) -> float:
        """Fraction of the whole slide covered by tissue (0–1)."""
        return float(self.mask.mean())

    def fraction(self, region: Region) -> float:
        """Fraction of ``region`` covered by tissue (0–1).

        Mask pixels count when their centres fall inside the region's level-0 box; a region
        smaller than one mask pixel takes the pixel under its centre.
        """
        dy, dx = self.downsample
        y0, x0, y1, x1 = region.bounds
        rows = np.arange(self.mask.shape[0])
        cols = np.arange(self.mask.shape[1])
        in_r = rows[((rows + 0.5) * dy >= y0) & ((rows + 0.5) * dy < y1)]
        in_c = cols[((cols + 0.5) * dx >= x0) & ((cols + 0.5) * dx < x1)]
        if in_r.size == 0 or in_c.size == 0:
            r = min(int((y0 + y1) / 2 / dy), self.mask.shape[0] - 1)
            c = min(int((x0 + x1) / 2 / dx), self.mask.shape[1] - 1)
            return float(self.mask[r, c])
        return float(self.mask[in_r[0] : in_r[-1] + 1, in_c[0] : in_c[-1] + 1].mean())


def compute_tissue_mask(slide: Slide, config: TissueConfig = TissueConfig()) -> TissueMask:
    """Tissue mask of a whole slide at ``config.mask_mpp``, read with bounded memory.

    Parameters
    ----------
    slide : Slide
        An open slide with a known resolution.
    config : TissueConfig
        Resolution, thresholds and size filters.

    Returns
    -------
    TissueMask
    """
    mpp = max(config.mask_mpp, slide.mpp)
    image = slide.read_region(0, 0, *slide.shape, mpp=mpp)
    mask = tissue_mask_from_rgb(image, mpp, config)
    return TissueMask(mask, (slide.shape[0] / mask.shape[0], slide.shape[1] / mask.shape[1]))


def require_tissue(fraction: float, min_fraction: float, what: str = "the region") -> None:
    """Raise :class:`NoTissueError` when ``fraction`` of tissue is below ``min_fraction``.

    Parameters
    ----------
    fraction : float
        Measured tissue fraction (0–1).
    min_fraction : float
        Required tissue fraction (0–1).
    what : str
        Names the region in the message.
    """
    if fraction < min_fraction:
        raise NoTissueError(
            f"{what} holds {fraction:.1%} tissue, less than the {min_fraction:.0%} required. Select an area "
            "over the tissue (the glass around it has no entities to analyse)."
        )
