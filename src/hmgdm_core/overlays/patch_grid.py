"""A region cut into a regular grid of patches, in read pixels and in level-0 pixels.

Patches are numbered row-major. By default they tile the region exactly (stride = size, no gaps or overlaps)
and partial patches at the bottom and right edges are dropped; a smaller stride makes them overlap, and
``keep_partial`` keeps the edge patches clipped to the region.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from hmgdm_core.errors import InputError
from hmgdm_core.io.region import Region

__all__ = ["PatchGrid"]


def _starts(length: int, size: int, stride: int, keep_partial: bool) -> np.ndarray:
    """Patch starts along one axis of ``length`` read pixels."""
    if keep_partial:
        return np.arange(0, length, stride, dtype=np.int64)
    return np.arange(0, max(length - size + 1, 0), stride, dtype=np.int64)


def _nearest_patch(starts: np.ndarray, ends: np.ndarray, coords: np.ndarray) -> np.ndarray:
    """Per coordinate, the covering patch with the nearest centre (ties: lower index), else -1."""
    best = np.full(coords.shape, -1, dtype=np.int64)
    best_distance = np.full(coords.shape, np.inf)
    for i, (start, end) in enumerate(zip(starts, ends, strict=True)):
        distance = np.abs(coords - (start + end - 1) / 2)
        better = (coords >= start) & (coords < end) & (distance < best_distance)
        best[better], best_distance[better] = i, distance[better]
    return best


@dataclass(frozen=True)
class PatchGrid:
    """Square patches over a region, row-major.

    Parameters
    ----------
    region : Region
        The region; patch sizes are in its read pixels (``region.shape``, at ``region.mpp``).
    size : int
        Patch side in read pixels.
    stride : int, optional
        Step between patch starts in read pixels (default ``size``: exact tiling). Smaller values overlap.
    keep_partial : bool
        Keep the patches cut by the bottom and right edges, clipped to the region (default: drop them).
    """

    region: Region
    size: int
    stride: int | None = None
    keep_partial: bool = False

    def __post_init__(self) -> None:
        rows, cols = self.region.shape
        if self.size < 1:
            raise InputError(f"patch size must be at least 1 read pixel, got {self.size}.")
        if self.stride is not None and self.stride < 1:
            raise InputError(f"stride must be at least 1 read pixel, got {self.stride}.")
        if not self.keep_partial and self.size > min(rows, cols):
            raise InputError(
                f"patch size {self.size} exceeds the region's read size {(rows, cols)}: choose a smaller "
                "patch, a larger region, or keep_partial=True."
            )

    @property
    def step(self) -> int:
        """The stride in read pixels (``size`` when not given)."""
        return self.size if self.stride is None else self.stride

    def _axes(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        rows, cols = self.region.shape
        ys = _starts(rows, self.size, self.step, self.keep_partial)
        xs = _starts(cols, self.size, self.step, self.keep_partial)
        return ys, np.minimum(ys + self.size, rows), xs, np.minimum(xs + self.size, cols)

    @property
    def grid_shape(self) -> tuple[int, int]:
        """``(patch rows, patch columns)``."""
        ys, _, xs, _ = self._axes()
        return len(ys), len(xs)

    def __len__(self) -> int:
        rows, cols = self.grid_shape
        return rows * cols

    @property
    def boxes(self) -> np.ndarray:
        """Shape (P, 4), int64: ``(y0, x0, y1, x1)`` of every patch in the region's read pixels, end exclusive."""
        y0, y1, x0, x1 = self._axes()
        iy, ix = np.meshgrid(np.arange(len(y0)), np.arange(len(x0)), indexing="ij")
        iy, ix = iy.reshape(-1), ix.reshape(-1)
        return np.stack([y0[iy], x0[ix], y1[iy], x1[ix]], axis=1)

    @property
    def level0_boxes(self) -> np.ndarray:
        """Shape (P, 4), int64: ``(y0, x0, y1, x1)`` of every patch in level-0 pixels of the slide, end exclusive.

        Read-pixel edges map to level 0 by ``round(edge · height / rows)``, so patches that share an edge in
        read pixels share it in level-0 pixels too: an exact tiling stays exact.
        """
        r = self.region
        rows, cols = r.shape
        scale = np.array([r.height / rows, r.width / cols] * 2)
        offset = np.array([r.y, r.x] * 2)
        return np.rint(self.boxes * scale).astype(np.int64) + offset

    def regions(self) -> list[Region]:
        """Each patch as a :class:`Region` in level-0 pixels whose ``Region.shape`` is the patch's read shape.

        Each starts at its :attr:`level0_boxes` corner and spans its read shape times the downsample, rounded, so
        its end may differ from the box's by about half a read pixel (the box's edges are rounded on their own).

        Returns
        -------
        list of Region
            Row-major. A region read at the scan's resolution or coarser keeps the grid's ``mpp``; one read finer
            than the scan gets its own, which makes a square patch's shape exact, but a clipped non-square patch
            (``keep_partial``) may then be a pixel off along its shorter side.
        """
        r = self.region
        d = r.downsample
        regions = []
        for (y0, x0, y1, x1), (ly0, lx0, _, _) in zip(self.boxes, self.level0_boxes, strict=True):
            rows, cols = int(y1 - y0), int(x1 - x0)
            height, width = max(1, round(rows * d)), max(1, round(cols * d))
            # For d >= 1, round(round(n d) / d) = n for every n. Finer than the scan (d < 1) that fails, so the
            # sub-region gets its own mpp, fitted to its longer side.
            mpp = r.mpp if d >= 1 else r.base_mpp * (height / rows if rows >= cols else width / cols)
            regions.append(Region(int(ly0), int(lx0), height, width, r.base_mpp, mpp))
        return regions

    def cut(self, image: np.ndarray) -> list[np.ndarray]:
        """The patches of the region's image.

        Parameters
        ----------
        image : ndarray, shape region.shape + (...)
            The image read for the region (e.g. ``slide.read(region)``).

        Returns
        -------
        list of ndarray
            Row-major views ``image[y0:y1, x0:x1]``.
        """
        if tuple(image.shape[:2]) != self.region.shape:
            raise InputError(f"The image {image.shape[:2]} is not the size of its region {self.region.shape}.")
        return [image[y0:y1, x0:x1] for y0, x0, y1, x1 in self.boxes]

    def label_raster(self, downsample: int = 1) -> np.ndarray:
        """Patch index of every pixel of the region, for class maps.

        Parameters
        ----------
        downsample : int
            Raster pixels per side of ``downsample`` read pixels (1: one raster pixel per read pixel); a raster
            pixel takes the patch of its centre.

        Returns
        -------
        ndarray, shape (ceil(rows / downsample), ceil(cols / downsample)), int64
            Row-major patch index, -1 where no patch covers the pixel. Where patches overlap, the pixel goes to
            the patch whose centre is nearest (a Voronoi split of the overlap; ties go to the lower index).
        """
        if downsample < 1:
            raise InputError(f"downsample must be at least 1, got {downsample}.")
        rows, cols = self.region.shape
        y0, y1, x0, x1 = self._axes()
        centres_y = np.arange(math.ceil(rows / downsample)) * downsample + (downsample - 1) / 2
        centres_x = np.arange(math.ceil(cols / downsample)) * downsample + (downsample - 1) / 2
        row = _nearest_patch(y0, y1, centres_y)
        col = _nearest_patch(x0, x1, centres_x)
        raster = row[:, None] * len(x0) + col[None, :]
        raster[(row[:, None] < 0) | (col[None, :] < 0)] = -1
        return raster
