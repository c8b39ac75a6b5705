"""The region of a slide that every later stage works on.

A :class:`Region` is a box in **level-0 pixels**, ``(y, x)`` order, plus the resolution
(µm per pixel) at which its pixels are read and analysed. Entities, graphs, masks and
predictions carry the region they came from, so their pixel coordinates can always be
mapped back onto the slide.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import numpy as np

from hmgdm_core.errors import RegionError

__all__ = ["MAX_MPP", "MIN_MPP", "Region"]

MIN_MPP = 0.05
"""Finest resolution accepted, µm per pixel: below any light microscope's (a 100x oil objective scans at ~0.1)."""
MAX_MPP = 10_000.0
"""Coarsest resolution accepted, µm per pixel (1 cm per pixel: a whole slide in a few pixels)."""


@dataclass(frozen=True)
class Region:
    """A box on a slide, in level-0 pixels, read at a given resolution.

    Parameters
    ----------
    y, x : int
        Top-left corner in level-0 pixels (row, column).
    height, width : int
        Size in level-0 pixels; both must be positive.
    base_mpp : float
        Microns per pixel of the slide's level 0.
    mpp : float, optional
        Microns per pixel at which the region is read. Defaults to ``base_mpp``
        (full resolution).
    """

    y: int
    x: int
    height: int
    width: int
    base_mpp: float
    mpp: float | None = None

    def __post_init__(self) -> None:
        for name in ("y", "x", "height", "width"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
                raise RegionError(f"Region.{name} must be an integer number of level-0 pixels, got {value!r}.")
            object.__setattr__(self, name, int(value))
        if self.height <= 0 or self.width <= 0:
            raise RegionError(
                f"Region size must be positive, got height={self.height}, width={self.width} "
                "(level-0 pixels). Draw or pass a non-empty box."
            )
        if not (math.isfinite(self.base_mpp) and self.base_mpp > 0):
            raise RegionError(
                f"Region.base_mpp must be a positive number of µm per pixel, got {self.base_mpp!r}. "
                "Pass the slide's resolution (open_slide(path, mpp=...)) if its metadata lacks it."
            )
        if self.mpp is None:
            object.__setattr__(self, "mpp", float(self.base_mpp))
        elif isinstance(self.mpp, bool) or not isinstance(self.mpp, numbers.Real) or not math.isfinite(self.mpp):
            raise RegionError(f"Region.mpp must be a positive number of µm per pixel, got {self.mpp!r}.")
        if self.mpp > MAX_MPP:
            raise RegionError(f"Region.mpp {self.mpp!r} µm/px is coarser than {MAX_MPP:g} µm/px: give µm per pixel.")
        if not self.mpp >= min(MIN_MPP, self.base_mpp):  # never finer than the scan, nor than any microscope
            raise RegionError(
                f"Region.mpp {self.mpp!r} µm/px is finer than {MIN_MPP} µm/px (and than the slide's "
                f"{self.base_mpp:g}): read at the slide's resolution or coarser (e.g. 0.25-2)."
            )

    @property
    def downsample(self) -> float:
        """Level-0 pixels per read pixel (``mpp / base_mpp``), ≥ 1 for a downsampled read."""
        return float(self.mpp) / self.base_mpp

    @property
    def shape(self) -> tuple[int, int]:
        """``(rows, cols)`` of the image :meth:`Slide.read <hmgdm_core.io.Slide.read>` returns."""
        d = self.downsample
        return max(1, round(self.height / d)), max(1, round(self.width / d))

    @property
    def bounds(self) -> tuple[int, int, int, int]:
        """``(y0, x0, y1, x1)`` in level-0 pixels, end exclusive."""
        return self.y, self.x, self.y + self.height, self.x + self.width

    @property
    def area_um2(self) -> float:
        """Area of the box in µm²."""
        return self.height * self.width * self.base_mpp**2

    def to_level0(self, yx: np.ndarray) -> np.ndarray:
        """Map ``(y, x)`` coordinates in the region's read pixels to level-0 pixels.

        Parameters
        ----------
        yx : ndarray, shape (..., 2)
            Coordinates in pixels of the image read for this region (pixel centres at
            integer positions).

        Returns
        -------
        ndarray, shape (..., 2), float64
            The same points in level-0 pixels of the slide.
        """
        yx = np.asarray(yx, dtype=np.float64)
        sy = self.height / self.shape[0]
        sx = self.width / self.shape[1]
        return np.stack(((yx[..., 0] + 0.5) * sy - 0.5 + self.y, (yx[..., 1] + 0.5) * sx - 0.5 + self.x), axis=-1)

    def from_level0(self, yx: np.ndarray) -> np.ndarray:
        """Inverse of :meth:`to_level0`: level-0 ``(y, x)`` to region read pixels.

        Parameters
        ----------
        yx : ndarray, shape (..., 2)
            Level-0 pixel coordinates.

        Returns
        -------
        ndarray, shape (..., 2), float64
            Coordinates in the region's read pixels.
        """
        yx = np.asarray(yx, dtype=np.float64)
        sy = self.height / self.shape[0]
        sx = self.width / self.shape[1]
        return np.stack(((yx[..., 0] - self.y + 0.5) / sy - 0.5, (yx[..., 1] - self.x + 0.5) / sx - 0.5), axis=-1)

    def clipped(self, shape: tuple[int, int]) -> Region:
        """The part of this region inside an image of level-0 ``shape`` ``(rows, cols)``.

        Raises
        ------
        RegionError
            If the region does not overlap the image at all.
        """
        y0, x0 = max(self.y, 0), max(self.x, 0)
        y1, x1 = min(self.y + self.height, shape[0]), min(self.x + self.width, shape[1])
        if y1 <= y0 or x1 <= x0:
            raise RegionError(
                f"Region {self.bounds} (y0, x0, y1, x1; level-0 px) lies outside the image of shape "
                f"{tuple(shape)}. Choose a box inside the slide."
            )
        return Region(y0, x0, y1 - y0, x1 - x0, self.base_mpp, self.mpp)

    def check_inside(self, shape: tuple[int, int]) -> None:
        """Raise :class:`RegionError` unless the region lies wholly in level-0 ``shape``."""
        y0, x0, y1, x1 = self.bounds
        if y0 < 0 or x0 < 0 or y1 > shape[0] or x1 > shape[1]:
            raise RegionError(
                f"Region (y0, x0, y1, x1) = {self.bounds} in level-0 pixels is not inside the image "
                f"of shape {tuple(shape)} (rows, cols). Use Region.clipped(slide.shape) to keep "
                "the overlapping part, or choose a box inside the slide."
            )

    def to_dict(self) -> dict[str, float | int]:
        """A JSON-safe dict; :meth:`from_dict` restores the region."""
        return {
            "y": self.y,
            "x": self.x,
            "height": self.height,
            "width": self.width,
            "base_mpp": self.base_mpp,
            "mpp": float(self.mpp),
        }

    @classmethod
    def from_dict(cls, d: dict[str, float | int]) -> Region:
        """Rebuild a region written by :meth:`to_dict`."""
        return cls(int(d["y"]), int(d["x"]), int(d["height"]), int(d["width"]), float(d["base_mpp"]), float(d["mpp"]))
