"""Numbers as people read them in the widgets' status lines."""

from __future__ import annotations

import math
from pathlib import Path

__all__ = ["human_eta", "short_path"]


def human_eta(seconds: float | None) -> str:
    """A duration such as ``"10 min 34 s"``, ``"2 h 05 min"`` or ``"8 s"``; ``"unknown time"`` if not finite.

    Parameters
    ----------
    seconds : float or None
        Remaining time in seconds.
    """
    if seconds is None or not math.isfinite(seconds) or seconds < 0:
        return "unknown time"
    total = round(seconds)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    if minutes:
        return f"{minutes} min {secs} s"
    return f"{secs} s"


def short_path(path: str | Path | None) -> str:
    """``run-…/checkpoint-….pt``: a file and its folder, short enough to wrap in a dock (the full path is long)."""
    if path is None:
        return "nothing"
    path = Path(path)
    return f"{path.parent.name}/{path.name}" if path.parent.name else path.name
