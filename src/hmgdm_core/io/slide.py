"""Whole-slide images opened lazily, read by level-0 boxes at any level or resolution."""

from __future__ import annotations

import math
import numbers
from pathlib import Path
from types import TracebackType

import numpy as np

from hmgdm_core.errors import SlideError
from hmgdm_core.io.formats import Opened, detect_format, open_image, open_tiff, open_zarr
from hmgdm_core.io.levels import Level
from hmgdm_core.io.region import MIN_MPP, Region

__all__ = ["MAX_READ_PIXELS", "Slide", "open_slide"]

MAX_READ_PIXELS = 2**30
"""Most pixels one read may decode or return (~3 GiB as RGB; decoding that many takes about a minute)."""


def open_slide(path: str | Path, *, mpp: float | None = None, series: int = 0) -> Slide:
    """Open a slide or image lazily; no pixel data is decoded until a read.

    Parameters
    ----------
    path : str or Path
        TIFF/BigTIFF, pyramidal OME-TIFF, Aperio SVS, zarr/OME-Zarr directory, PNG or JPEG.
        The format is recognised from the content, not the extension.
    mpp : float, optional
        Level-0 microns per pixel. Overrides the file's metadata (use it when the metadata
        is missing or wrong).
    series : int
        TIFF image series to open (0 is the slide in an SVS).

    Returns
    -------
    Slide

    Raises
    ------
    SlideError
        Missing, corrupt or unsupported file; grayscale, RGBA or non-8-bit pixels.
    """
    path = Path(path)
    fmt = detect_format(path)
    if fmt == "tiff":
        opened = open_tiff(path, series)
    elif fmt == "zarr":
        opened = open_zarr(path)
    else:
        opened = open_image(path, fmt)
    if mpp is not None and (
        isinstance(mpp, bool) or not isinstance(mpp, numbers.Real) or not (math.isfinite(mpp) and mpp >= MIN_MPP)
    ):
        opened.close()
        raise SlideError(f"mpp must be a positive number of µm per pixel (≥ {MIN_MPP}), got {mpp!r}.")
    return Slide(path, opened, mpp)


class Slide:
    """A lazily opened slide: levels, resolution and reads.

    Use :func:`open_slide` to make one. Coordinates are level-0 pixels in ``(y, x)`` order
    throughout; reads return ``(rows, cols, 3)`` uint8 RGB arrays.
    """

    def __init__(self, path: Path, opened: Opened, mpp: float | None = None) -> None:
        self.path = path
        self.format = opened.format
        self.levels: tuple[Level, ...] = opened.levels
        self._metadata_mpp = opened.mpp
        self._mpp = mpp if mpp is not None else opened.mpp
        self._close = opened.close

    def __repr__(self) -> str:
        return (
            f"Slide({str(self.path)!r}, format={self.format!r}, shape={self.shape}, "
            f"levels={len(self.levels)}, mpp={self._mpp})"
        )

    def __enter__(self) -> Slide:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None):
        self.close()

    def close(self) -> None:
        """Release the file handles."""
        self._close()

    @property
    def shape(self) -> tuple[int, int]:
        """Level-0 ``(rows, cols)`` in pixels."""
        return self.levels[0].shape

    @property
    def mpp(self) -> float:
        """Level-0 microns per pixel.

        Raises
        ------
        SlideError
            If neither the metadata nor the caller gave a resolution.
        """
        if self._mpp is None:
            raise SlideError(
                f"{self.path}: the file does not state its resolution (µm per pixel). Pass it: "
                "open_slide(path, mpp=0.25) for 40x, 0.5 for 20x, or `--slide-mpp` on the command line."
            )
        return float(self._mpp)

    @property
    def mpp_known(self) -> bool:
        """Whether a level-0 resolution is known (from metadata or the caller)."""
        return self._mpp is not None

    @property
    def level_mpps(self) -> tuple[float, ...]:
        """µm per pixel of each level (mean of the row and column downsample)."""
        return tuple(self.mpp * (lv.downsample[0] + lv.downsample[1]) / 2 for lv in self.levels)

    def region(self, y: int, x: int, height: int, width: int, mpp: float | None = None) -> Region:
        """A :class:`Region` of this slide; checked to lie inside level 0.

        Parameters
        ----------
        y, x, height, width : int
            Box in level-0 pixels.
        mpp : float, optional
            Resolution to read it at; default level 0.

        Returns
        -------
        Region
        """
        region = Region(y, x, height, width, self.mpp, mpp)
        region.check_inside(self.shape)
        return region

    def full_region(self, mpp: float | None = None) -> Region:
        """The whole slide as a :class:`Region`, read at ``mpp`` (default level 0)."""
        return self.region(0, 0, *self.shape, mpp=mpp)

    def read(self, region: Region) -> np.ndarray:
        """Read a :class:`Region` at its resolution.

        Returns
        -------
        ndarray, shape region.shape + (3,), uint8
        """
        return self.read_region(region.y, region.x, region.height, region.width, mpp=region.mpp)

    def read_region(
        self, y: int, x: int, height: int, width: int, *, level: int | None = None, mpp: float | None = None
    ) -> np.ndarray:
        """Read a box given in level-0 pixels, at a pyramid level or a target resolution.

        Parameters
        ----------
        y, x : int
            Top-left corner in level-0 pixels (row, column).
        height, width : int
            Size in level-0 pixels.
        level : int, optional
            Pyramid level to read from (0 = finest). The result has the box's size at that level.
        mpp : float, optional
            Target µm per pixel instead of a level. The finest level at least as fine as the
            target is read and reduced by area averaging, so the result has
            ``round(height * slide.mpp / mpp)`` rows (likewise columns).

        Returns
        -------
        ndarray, shape (rows, cols, 3), uint8
            RGB pixels.

        Raises
        ------
        RegionError
            Non-positive size, or a box not inside level 0.
        SlideError
            A level that does not exist, both ``level`` and ``mpp`` given, or undecodable data.
        """
        if level is not None and mpp is not None:
            raise SlideError("Give either level= or mpp=, not both.")
        region = Region(y, x, height, width, self.mpp if mpp is not None else 1.0, mpp)
        region.check_inside(self.shape)
        if mpp is not None:
            return self._read_resampled(region)
        level = 0 if level is None else level
        if not 0 <= level < len(self.levels):
            raise SlideError(
                f"{self.path}: level {level} does not exist; the slide has levels 0..{len(self.levels) - 1}."
            )
        dy, dx = self.levels[level].downsample
        self._check_budget(round(height / dy) * round(width / dx), f"level {level}")
        return self._read_level_box(self.levels[level], region)

    def thumbnail(self, max_size: int = 1024) -> np.ndarray:
        """The whole slide reduced so that its longer side is at most ``max_size`` pixels.

        Memory stays bounded by the stored tiles, not the slide size.

        Returns
        -------
        ndarray, shape (rows, cols, 3), uint8
        """
        if max_size < 1:
            raise SlideError(f"max_size must be at least 1, got {max_size}.")
        downsample = max(1.0, max(self.shape) / max_size)
        # base_mpp 1 makes the region's mpp its downsample factor; no resolution needs to be known.
        return self._read_resampled(Region(0, 0, *self.shape, 1.0, downsample))

    @staticmethod
    def _read_level_box(level: Level, region: Region) -> np.ndarray:
        dy, dx = level.downsample
        rows, cols = level.shape
        y1 = min(max(1, round((region.y + region.height) / dy)), rows)
        x1 = min(max(1, round((region.x + region.width) / dx)), cols)
        y0 = min(round(region.y / dy), y1 - 1)
        x0 = min(round(region.x / dx), x1 - 1)
        return level.read(y0, y1, x0, x1)

    def _check_budget(self, pixels: int, what: str) -> None:
        """Refuse a read that would decode more than :data:`MAX_READ_PIXELS` pixels (minutes, gigabytes)."""
        if pixels > MAX_READ_PIXELS:
            side = math.isqrt(MAX_READ_PIXELS)
            raise SlideError(
                f"{self.path}: this read would decode {pixels:,} pixels of {what} (slide {self.shape[0]:,} x "
                f"{self.shape[1]:,} px), over the budget of {MAX_READ_PIXELS:,} (about {side:,}²). Read a smaller "
                "region or at a coarser mpp; a slide without a pyramid can only be read in parts."
            )

    def _read_resampled(self, region: Region) -> np.ndarray:
        """Read ``region`` at ``region.shape``, from the finest level not coarser than needed."""
        downsample = region.downsample
        index = max(i for i, lv in enumerate(self.levels) if i == 0 or max(lv.downsample) <= downsample * 1.001)
        level = self.levels[index]
        out_shape = region.shape
        dy, dx = level.downsample
        self._check_budget(
            max(out_shape[0] * out_shape[1], round(region.height / dy) * round(region.width / dx)), f"level {index}"
        )
        factor = downsample / max(level.downsample)
        # A block never exceeds the box (a huge mpp asks for one pixel, averaged over the whole box).
        block = min(math.floor(factor + 1e-6), max(1, round(region.height / dy)), max(1, round(region.width / dx)))
        image = self._block_mean(level, region, block) if block >= 2 else self._read_level_box(level, region)
        if image.shape[:2] == out_shape:
            return image
        from skimage.transform import resize

        smaller = out_shape[0] < image.shape[0] or out_shape[1] < image.shape[1]
        resized = resize(image, out_shape, order=1, preserve_range=True, anti_aliasing=smaller)
        return np.clip(np.rint(resized), 0, 255).astype(np.uint8)

    @staticmethod
    def _block_mean(level: Level, region: Region, block: int) -> np.ndarray:
        """Area-average ``block``×``block`` pixels of ``level`` over ``region``.

        Works through windows of about 2048² level pixels, so memory stays bounded by the
        window, not by the region.
        """
        dy, dx = level.downsample
        rows = max(block, round(region.height / dy) // block * block)
        cols = max(block, round(region.width / dx) // block * block)
        y0 = min(round(region.y / dy), level.shape[0] - rows)
        x0 = min(round(region.x / dx), level.shape[1] - cols)
        step = block * max(1, 2048 // block)
        out = np.empty((rows // block, cols // block, 3), dtype=np.uint8)
        for r in range(0, rows, step):
            for c in range(0, cols, step):
                h, w = min(step, rows - r), min(step, cols - c)
                tile = level.read(y0 + r, y0 + r + h, x0 + c, x0 + c + w).astype(np.float32)
                mean = tile.reshape(h // block, block, w // block, block, 3).mean(axis=(1, 3))
                out[r // block : (r + h) // block, c // block : (c + w) // block] = np.rint(mean)
        return out
