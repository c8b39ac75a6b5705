"""Pyramid levels: lazy arrays of one resolution, read by level-pixel boxes.

A :class:`Level` wraps a lazily decoded array (a zarr array over a TIFF or a zarr store,
or an in-memory array for PNG/JPEG) whose axes are named, and reads ``(rows, cols, 3)``
uint8 boxes from it. The format-specific code that finds the levels lives in
:mod:`hmgdm_core.io.formats`.
"""

from __future__ import annotations

import logging
import os
import sys
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from hmgdm_core.errors import SlideError

__all__ = ["Level", "check_pixel_type"]

# Axis letters: Y rows, X columns, S/C colour samples; any other axis must have size 1.
_CHANNEL_AXES = "SC"


def check_pixel_type(axes: str, shape: tuple[int, ...], dtype: np.dtype, source: str) -> None:
    """Refuse images that are not 8-bit RGB, with a message saying what to do.

    Parameters
    ----------
    axes : str
        One letter per array axis (``Y``, ``X``, ``S``/``C`` for colour, others of size 1).
    shape : tuple of int
        The array shape.
    dtype : numpy.dtype
        The array dtype.
    source : str
        The file, for the message.

    Raises
    ------
    SlideError
        For grayscale, RGBA/multi-channel, non-uint8 data or extra axes of size > 1.
    """
    if "Y" not in axes or "X" not in axes:
        raise SlideError(f"{source}: cannot find the image rows and columns (axes {axes!r}, shape {shape}).")
    extra = [(a, n) for a, n in zip(axes, shape, strict=True) if a not in "YX" + _CHANNEL_AXES and n != 1]
    if extra:
        raise SlideError(
            f"{source}: has extra axes {extra} (time, z or series planes). Export a single 2D RGB plane "
            "(e.g. with QuPath or tifffile) and open that."
        )
    channels = [n for a, n in zip(axes, shape, strict=True) if a in _CHANNEL_AXES]
    n_channels = channels[0] if channels else 1
    if n_channels == 1:
        raise SlideError(
            f"{source}: is a grayscale image; H&E analysis needs RGB colour. Open the RGB original, "
            "not a single-channel export."
        )
    if n_channels == 4:
        raise SlideError(
            f"{source}: has 4 channels (RGBA). Save it without the alpha channel, e.g. "
            "`imageio.imwrite(out, imageio.imread(path)[..., :3])`, and open that."
        )
    if n_channels != 3:
        raise SlideError(f"{source}: has {n_channels} channels; an RGB brightfield image (3 channels) is required.")
    if np.dtype(dtype) != np.uint8:
        raise SlideError(
            f"{source}: has {np.dtype(dtype)} pixels; 8-bit RGB (uint8) is required. Convert it, e.g. "
            "rescale 16-bit data with `(img / 257).round().astype('uint8')`, and open that."
        )


class _ZarrTeardownFilter(logging.Filter):
    """Drops asyncio's reports of zarr's abandoned or failed chunk-read tasks (pending, or never retrieved)."""

    _PREFIXES = (
        "Task was destroyed but it is pending",
        "Task exception was never retrieved",
        # zarr gathers the chunk reads; reads still running when the file closes fail there, reported at exit.
        "_GatheringFuture exception was never retrieved",
    )

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not (message.startswith(self._PREFIXES) and ("zarr" in message or _raised_in_zarr(record)))


def _raised_in_zarr(record: logging.LogRecord) -> bool:
    """Whether the record's exception passed through zarr's code (its traceback names a zarr file)."""
    error = record.exc_info[1] if record.exc_info else None
    frame = error.__traceback__ if error is not None else None
    while frame is not None:
        if f"{os.sep}zarr{os.sep}" in frame.tb_frame.f_code.co_filename:
            return True
        frame = frame.tb_next
    return False


_TEARDOWN_FILTER = _ZarrTeardownFilter()


def _quiet_zarr_teardown() -> None:
    """After a failed decode, silence the noise of zarr's other chunk reads of that call.

    zarr decodes a box's chunks as concurrent tasks on its own event loop; when one fails, the others are
    abandoned, and at exit asyncio reports each (two lines apiece, hundreds for a large read) after our
    one-line error. The error itself already says what is wrong.
    """
    asyncio_log = logging.getLogger("asyncio")
    if _TEARDOWN_FILTER not in asyncio_log.filters:
        asyncio_log.addFilter(_TEARDOWN_FILTER)
    warnings.filterwarnings("ignore", message="coroutine 'concurrent_map", category=RuntimeWarning)
    if not getattr(sys.unraisablehook, "_drops_zarr", False):
        previous = sys.unraisablehook

        def hook(unraisable: Any) -> None:  # "Exception ignored in <coroutine concurrent_map...>" at teardown
            if "concurrent_map" not in repr(unraisable.object):
                previous(unraisable)

        hook._drops_zarr = True  # type: ignore[attr-defined]
        sys.unraisablehook = hook


def _yxc_order(axes: str) -> list[int]:
    """Transpose order that brings the kept (Y, X, colour) axes of ``axes`` to (Y, X, colour)."""
    kept = [a for a in axes if a in "YX" + _CHANNEL_AXES]
    return [kept.index("Y"), kept.index("X"), next(i for i, a in enumerate(kept) if a in _CHANNEL_AXES)]


@dataclass(frozen=True)
class Level:
    """One resolution of a slide.

    Parameters
    ----------
    array : array-like
        Lazily indexable array (zarr array or ndarray) holding the level.
    axes : str
        One letter per array axis: ``Y`` rows, ``X`` columns, ``S`` or ``C`` colour, others size 1.
    downsample : tuple of float
        ``(dy, dx)``: level-0 pixels per pixel of this level along rows and columns.
    source : str
        The file the level comes from, for error messages.
    """

    array: Any
    axes: str
    downsample: tuple[float, float]
    source: str

    @property
    def shape(self) -> tuple[int, int]:
        """``(rows, cols)`` of the level in its own pixels."""
        return (
            int(self.array.shape[self.axes.index("Y")]),
            int(self.array.shape[self.axes.index("X")]),
        )

    def read(self, y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
        """Decode the box ``[y0:y1, x0:x1]`` in this level's pixels.

        Returns
        -------
        ndarray, shape (y1 - y0, x1 - x0, 3), uint8
            RGB pixels.

        Raises
        ------
        SlideError
            When the stored data cannot be decoded (truncated or corrupt file).
        """
        index = tuple(
            slice(y0, y1) if a == "Y" else slice(x0, x1) if a == "X" else slice(None) if a in _CHANNEL_AXES else 0
            for a in self.axes
        )
        try:
            block = np.asarray(self.array[index])
        except Exception as err:  # decoders raise many types; all mean the stored data is unusable
            _quiet_zarr_teardown()
            raise SlideError(
                f"{self.source}: could not decode pixels in rows {y0}:{y1}, columns {x0}:{x1} "
                f"({type(err).__name__}: {err}). The file is probably truncated or corrupt; "
                "copy or export it again."
            ) from err
        return np.ascontiguousarray(block.transpose(_yxc_order(self.axes)))

    def as_dask(self):
        """The level as a lazy dask array of shape ``(rows, cols, 3)``, uint8.

        Returns
        -------
        dask.array.Array
            Chunked like the stored tiles; nothing is decoded until computed.
        """
        import dask.array as da

        arr = da.from_zarr(self.array) if hasattr(self.array, "store") else da.from_array(self.array)
        index = tuple(slice(None) if a in "YX" + _CHANNEL_AXES else 0 for a in self.axes)
        return arr[index].transpose(_yxc_order(self.axes))
