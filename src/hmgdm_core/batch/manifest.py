"""What a batch run did with each item, kept as ``manifest.csv`` and ``manifest.json`` beside the outputs."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from hmgdm_core.batch.sources import SlideItem
from hmgdm_core.io.atomic import write_text_atomic

__all__ = ["MANIFEST_COLUMNS", "ItemResult", "write_manifest"]

MANIFEST_COLUMNS = ("name", "source", "y", "x", "height", "width", "label", "group", "status", "count", "output",
                    "error")
"""Columns of ``manifest.csv`` (the keys of each entry of ``manifest.json``)."""


@dataclass(frozen=True)
class ItemResult:
    """The outcome of one item of a batch run."""

    name: str
    """The item's output stem."""
    source: Path
    """What it was made from: the slide (graph stage) or the graph dataset (embedding stage)."""
    status: str
    """``'built'``, ``'skipped'`` (a finished output was already there) or ``'failed'``."""
    output: Path
    """The item's output file (absent when failed)."""
    count: int
    """Graphs (graph stage) or embedding rows (embedding stage) in the output; 0 when failed."""
    error: str | None = None
    """Why it failed: exception type and message."""
    item: SlideItem | None = None
    """The slide item (box, label, group), when the run started from slides."""

    def to_dict(self) -> dict:
        """One manifest row: :data:`MANIFEST_COLUMNS` → JSON-safe values (None where unknown)."""
        item = self.item
        box = item.box if item is not None and item.box is not None else (None, None, None, None)
        return {
            "name": self.name,
            "source": str(self.source),
            **dict(zip(("y", "x", "height", "width"), box, strict=True)),
            "label": item.label if item is not None else None,
            "group": item.group_id if item is not None else None,
            "status": self.status,
            "count": self.count,
            "output": str(self.output),
            "error": self.error,
        }


def write_manifest(results: Sequence[ItemResult], out_dir: str | Path, name: str = "manifest") -> Path:
    """Write ``<name>.csv`` and ``<name>.json`` (atomically) listing ``results``; returns the CSV path.

    Parameters
    ----------
    results : sequence of ItemResult
        In item order.
    out_dir : str or Path
        The run's output folder.
    name : str
        File stem.

    Returns
    -------
    Path
        The CSV file.
    """
    rows = [r.to_dict() for r in results]
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=MANIFEST_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows({k: "" if v is None else v for k, v in row.items()} for row in rows)
    out = Path(out_dir)
    write_text_atomic(out / f"{name}.json", json.dumps(rows, indent=1))
    return write_text_atomic(out / f"{name}.csv", text.getvalue())
