"""``hmgdm demo``: the whole pipeline on the bundled sample slide, offline, on the CPU."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from hmgdm_core.io import open_slide
from hmgdm_core.sample import SAMPLE_ATTRIBUTION, sample_slide_path
from hmgdm_core.tissue import compute_tissue_mask

__all__ = ["run_demo"]


def _outline(mask: np.ndarray) -> np.ndarray:
    """Pixels on the boundary of ``mask`` (True inside, False on a 4-neighbour outside)."""
    padded = np.pad(mask, 1, mode="edge")
    inner = padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:]
    return mask & ~inner


def run_demo(out_dir: str | Path, slide_path: str | Path | None = None, echo: Callable[[str], None] = print) -> dict:
    """Open a slide, report its pyramid, resolution and tissue, and write a thumbnail.

    Parameters
    ----------
    out_dir : str or Path
        Folder for the outputs (created if missing).
    slide_path : str or Path, optional
        The slide; defaults to the bundled CMU-1 sample.
    echo : callable
        Receives each line of the report.

    Returns
    -------
    dict
        ``slide``, ``format``, ``levels`` (shape and downsample per level), ``mpp`` (level 0,
        µm/px), ``tissue_fraction`` (0–1) and ``thumbnail`` (path of the PNG with the tissue
        outline drawn in green).
    """
    import imageio.v3 as iio

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = Path(slide_path) if slide_path is not None else sample_slide_path()
    if slide_path is None:
        echo(SAMPLE_ATTRIBUTION)
    with open_slide(path) as slide:
        echo(f"slide        {path.name} ({slide.format})")
        echo(f"µm/px        {slide.mpp:.4f} at level 0")
        levels = []
        for index, (level, mpp) in enumerate(zip(slide.levels, slide.level_mpps, strict=True)):
            levels.append({"shape": list(level.shape), "downsample": [round(d, 4) for d in level.downsample]})
            echo(f"level {index}      {level.shape[0]} x {level.shape[1]} px (rows x cols), "
                 f"downsample {level.downsample[0]:.2f}, {mpp:.3f} µm/px")
        tissue = compute_tissue_mask(slide)
        rows, cols = tissue.mask.shape
        echo(f"tissue       {tissue.fraction_total:.1%} of the slide (mask {rows} x {cols})")
        thumb = slide.thumbnail(1024)
    from skimage.transform import resize

    outline = resize(_outline(tissue.mask).astype(np.float32), thumb.shape[:2], order=0) > 0
    thumb[outline] = (0, 200, 0)
    thumb_path = out / "thumbnail.png"
    iio.imwrite(thumb_path, thumb)
    echo(f"thumbnail    {thumb_path} ({thumb.shape[0]} x {thumb.shape[1]}, tissue outline in green)")
    return {"slide": str(path), "format": slide.format, "levels": levels, "mpp": slide.mpp,
            "tissue_fraction": tissue.fraction_total, "thumbnail": str(thumb_path)}
