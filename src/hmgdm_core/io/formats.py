"""Format backends: find the levels and the resolution of a file, without decoding pixels.

Each ``open_*`` function returns an :class:`Opened` record. TIFF-based formats (plain and
BigTIFF, pyramidal OME-TIFF, Aperio SVS) go through tifffile's zarr stores, zarr and
OME-Zarr through zarr 3, and PNG/JPEG are decoded whole (they are small by nature).
"""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hmgdm_core.errors import SlideError
from hmgdm_core.io.levels import Level, check_pixel_type

__all__ = ["Opened", "check_png_depth", "detect_format", "open_image", "open_tiff", "open_zarr"]

_TIFF_MAGIC = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")
_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_JPEG_MAGIC = b"\xff\xd8\xff"
# Micrometres per unit, for OME / OME-NGFF physical sizes.
_UM_PER_UNIT = {"nm": 1e-3, "nanometer": 1e-3, "µm": 1.0, "um": 1.0, "micron": 1.0, "micrometer": 1.0,
                "mm": 1e3, "millimeter": 1e3, "cm": 1e4, "centimeter": 1e4, "m": 1e6, "meter": 1e6}


@dataclass(frozen=True)
class Opened:
    """What a backend found in a file.

    Parameters
    ----------
    format : str
        ``"svs"``, ``"ome-tiff"``, ``"tiff"``, ``"ome-zarr"``, ``"zarr"``, ``"png"`` or ``"jpeg"``.
    levels : tuple of Level
        Finest first.
    mpp : float or None
        Level-0 µm per pixel from the metadata, ``None`` when the file does not say.
    close : callable
        Releases the file handles.
    """

    format: str
    levels: tuple[Level, ...]
    mpp: float | None
    close: Callable[[], None]


def detect_format(path: Path) -> str:
    """Name the backend for ``path`` from its content (magic bytes), not its extension.

    Returns
    -------
    str
        ``"tiff"``, ``"zarr"``, ``"png"`` or ``"jpeg"``.

    Raises
    ------
    SlideError
        If the path does not exist or is of an unsupported format.
    """
    if not path.exists():
        raise SlideError(f"{path}: no such file or directory. Check the path (relative to {Path.cwd()}).")
    if path.is_dir():
        if (path / "zarr.json").exists() or (path / ".zgroup").exists() or (path / ".zarray").exists():
            return "zarr"
        raise SlideError(f"{path}: is a directory but not a zarr store (no zarr.json, .zgroup or .zarray).")
    with path.open("rb") as fh:
        head = fh.read(8)
    if head[:4] in _TIFF_MAGIC:
        return "tiff"
    if head == _PNG_MAGIC:
        return "png"
    if head[:3] == _JPEG_MAGIC:
        return "jpeg"
    if not head:
        raise SlideError(f"{path}: the file is empty.")
    raise SlideError(
        f"{path}: unsupported format (its first bytes are not those of an image). Supported: TIFF/BigTIFF, OME-TIFF, "
        "Aperio SVS, zarr/OME-Zarr, PNG and JPEG. Convert other formats (e.g. NDPI, MRXS, CZI) "
        "to OME-TIFF with QuPath or bfconvert."
    )


def _downsamples(shapes: list[tuple[int, int]]) -> list[tuple[float, float]]:
    y0, x0 = shapes[0]
    return [(y0 / y, x0 / x) for y, x in shapes]


def _svs_mpp(description: str) -> float | None:
    match = re.search(r"\|\s*MPP\s*=\s*([0-9.eE+-]+)", description)
    return float(match.group(1)) if match else None


def _ome_mpp(ome_xml: str, series: int) -> float | None:
    root = ET.fromstring(ome_xml)
    pixels = [el for el in root.iter() if el.tag.endswith("}Pixels") or el.tag == "Pixels"]
    if series >= len(pixels) or "PhysicalSizeX" not in pixels[series].attrib:
        return None
    unit = pixels[series].attrib.get("PhysicalSizeXUnit", "µm")
    return float(pixels[series].attrib["PhysicalSizeX"]) * _UM_PER_UNIT.get(unit, math.nan)


def _resolution_mpp(page) -> float | None:
    """µm/px from TIFF resolution tags, trusting only units that a scanner would write."""
    tag = page.tags.get("XResolution")
    unit = page.tags.get("ResolutionUnit")
    if tag is None or unit is None:
        return None
    num, den = tag.value
    if num <= 0 or den <= 0:
        return None
    per_unit = num / den
    if int(unit.value) == 3:  # centimetre
        return 1e4 / per_unit
    # Inch: ignore the 72/96/300 dpi defaults of ordinary image writers (> 25 µm/px).
    if int(unit.value) == 2 and per_unit >= 1000:
        return 25400.0 / per_unit
    return None


def open_tiff(path: Path, series: int = 0) -> Opened:
    """Open a TIFF, BigTIFF, OME-TIFF or SVS file lazily (tifffile ``aszarr`` + zarr 3).

    Parameters
    ----------
    path : Path
        The file.
    series : int
        Which image series (SVS: 0 is the slide, then thumbnail, label, macro).

    Returns
    -------
    Opened
    """
    import tifffile
    import zarr

    try:
        tif = tifffile.TiffFile(path)
    except Exception as err:  # tifffile raises TiffFileError, struct.error, ValueError, ...
        raise SlideError(f"{path}: not a readable TIFF ({type(err).__name__}: {err}). Is it truncated?") from err
    try:
        if not tif.series:
            raise SlideError(f"{path}: no readable image in this TIFF; the file is truncated or corrupt.")
        if series >= len(tif.series) or series < 0:
            raise SlideError(f"{path}: has {len(tif.series)} image series; series {series} does not exist.")
        ser = tif.series[series]
        fmt = "svs" if tif.is_svs else "ome-tiff" if tif.is_ome else "tiff"
        levels = []
        shapes = [(int(lv.shape[lv.axes.index("Y")]), int(lv.shape[lv.axes.index("X")])) for lv in ser.levels]
        for index, (lv, ds) in enumerate(zip(ser.levels, _downsamples(shapes), strict=True)):
            check_pixel_type(lv.axes, lv.shape, lv.dtype, str(path))
            array = zarr.open(tif.aszarr(series=series, level=index), mode="r")
            levels.append(Level(array, lv.axes, ds, str(path)))
        if fmt == "svs":
            mpp = _svs_mpp(tif.pages[0].description)
        elif fmt == "ome-tiff":
            mpp = _ome_mpp(tif.ome_metadata, series)
        else:
            mpp = _resolution_mpp(ser.pages[0])
            ij = tif.imagej_metadata or {}
            if mpp is None and str(ij.get("unit", "")).lower() in ("micron", "um", "µm"):
                num, den = ser.pages[0].tags["XResolution"].value
                mpp = den / num if num else None
    except SlideError:
        tif.close()
        raise
    except Exception as err:
        tif.close()
        raise SlideError(f"{path}: TIFF structure could not be read ({type(err).__name__}: {err}).") from err
    return Opened(fmt, tuple(levels), mpp, tif.close)


def _ngff_axes(axes_meta: list) -> str:
    names = [a["name"] if isinstance(a, dict) else str(a) for a in axes_meta]
    return "".join({"y": "Y", "x": "X", "c": "C"}.get(n.lower(), n.upper()[:1] or "Q") for n in names)


def open_zarr(path: Path) -> Opened:
    """Open a zarr array or an OME-Zarr (NGFF 0.4 or 0.5) multiscale group.

    A bare array is read as ``(Y, X, S)`` when its last axis has 3 or 4 entries, else
    ``(C, Y, X)``. For OME-Zarr the axes, levels and µm/px come from ``multiscales``.

    Returns
    -------
    Opened
    """
    import zarr

    try:
        node = zarr.open(str(path), mode="r")
    except Exception as err:
        raise SlideError(f"{path}: not a readable zarr store ({type(err).__name__}: {err}).") from err
    if isinstance(node, zarr.Array):
        axes = {2: "YX", 3: "YXS" if node.shape[-1] in (3, 4) else "CYX"}.get(node.ndim)
        if axes is None:
            raise SlideError(f"{path}: a {node.ndim}-D zarr array; a 2-D RGB image (Y, X, 3) is expected.")
        check_pixel_type(axes, node.shape, node.dtype, str(path))
        return Opened("zarr", (Level(node, axes, (1.0, 1.0), str(path)),), None, lambda: None)
    attrs = dict(node.attrs)
    multiscales = attrs.get("ome", {}).get("multiscales") or attrs.get("multiscales")
    if not multiscales:
        raise SlideError(f"{path}: a zarr group without OME-Zarr 'multiscales' metadata; open one of its arrays.")
    ms = multiscales[0]
    axes = _ngff_axes(ms.get("axes", ["y", "x", "c"]))
    arrays = [node[d["path"]] for d in ms["datasets"]]
    for arr in arrays:
        check_pixel_type(axes, arr.shape, arr.dtype, str(path))
    shapes = [(int(a.shape[axes.index("Y")]), int(a.shape[axes.index("X")])) for a in arrays]
    levels = tuple(Level(a, axes, ds, str(path)) for a, ds in zip(arrays, _downsamples(shapes), strict=True))
    mpp = None
    transforms = ms["datasets"][0].get("coordinateTransformations", [])
    scale = next((t["scale"] for t in transforms if t.get("type") == "scale"), None)
    axes_meta = ms.get("axes", [])
    if scale is not None and axes_meta and isinstance(axes_meta[0], dict):
        unit = axes_meta[axes.index("X")].get("unit")
        if unit in _UM_PER_UNIT:
            mpp = float(scale[axes.index("X")]) * _UM_PER_UNIT[unit]
    return Opened("ome-zarr", levels, mpp, lambda: None)


def check_png_depth(path: str | Path) -> None:
    """Refuse a 16-bit PNG, whose decoder would silently keep only the high byte of each sample.

    Raises
    ------
    SlideError
        If the PNG header declares 16 bits per sample.
    """
    with open(path, "rb") as fh:
        header = fh.read(26)  # signature (8), IHDR length and type (8), width, height (8), bit depth (1), ...
    if header.startswith(_PNG_MAGIC) and header[12:16] == b"IHDR" and header[24] == 16:
        raise SlideError(
            f"{path}: is a 16-bit PNG; 8-bit RGB is required. Convert it with rounding, e.g. "
            "`(img / 257).round().astype('uint8')` on the 16-bit data (tifffile or OpenCV keep it), and open that."
        )


def open_image(path: Path, fmt: str) -> Opened:
    """Decode a PNG or JPEG file whole (``fmt`` is ``"png"`` or ``"jpeg"``).

    Returns
    -------
    Opened
    """
    import imageio.v3 as iio

    if fmt == "png":
        check_png_depth(path)
    try:
        image = np.asarray(iio.imread(path))
    except Exception as err:
        raise SlideError(f"{path}: could not decode the {fmt.upper()} file ({type(err).__name__}: {err}).") from err
    axes = "YXS" if image.ndim == 3 else "YX"
    check_pixel_type(axes, image.shape, image.dtype, str(path))
    return Opened(fmt, (Level(image, axes, (1.0, 1.0), str(path)),), None, lambda: None)
