"""Slide lists for batch runs: slide files, folders of slides and CSVs of slides and regions.

A CSV has a header row with a ``slide`` column (a path; relative paths are resolved against the
CSV's folder) and optionally ``y, x, height, width`` (a level-0 box; several rows of one slide
give several regions), ``mpp`` (level-0 µm/px for files that do not state it), ``label`` (an
integer class) and ``group`` (e.g. a patient; defaults to the slide's file stem). A CSV may name
only slide and image files: by suffix (:data:`SLIDE_SUFFIXES`) and by content (TIFF, PNG, JPEG magic
bytes, or a zarr store), so it cannot make a batch read any other file.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from hmgdm_core.errors import InputError
from hmgdm_core.io.formats import detect_format

__all__ = ["SLIDE_SUFFIXES", "SlideItem", "slide_items"]

SLIDE_SUFFIXES = (".svs", ".tif", ".tiff", ".zarr", ".png", ".jpg", ".jpeg")
"""File endings taken from a folder of slides (what :func:`~hmgdm_core.io.open_slide` reads)."""

_BOX = ("y", "x", "height", "width")
_KNOWN = {"slide", *_BOX, "mpp", "label", "group"}


@dataclass(frozen=True)
class SlideItem:
    """One unit of a batch run: a slide, or a level-0 box of it.

    Parameters
    ----------
    slide : Path
        The slide file (or zarr folder).
    box : tuple of int, optional
        ``(y, x, height, width)`` in level-0 pixels; None for the whole slide.
    mpp : float, optional
        Level-0 µm/px override for files without it.
    label : int, optional
        Class label stored on every graph of the item (``graph.y``).
    group : str, optional
        Group id stored on every graph (``graph.group``); the slide's stem when None.
    """

    slide: Path
    box: tuple[int, int, int, int] | None = None
    mpp: float | None = None
    label: int | None = None
    group: str | None = None

    @property
    def name(self) -> str:
        """Output stem: ``<slide stem>`` or ``<slide stem>_<y>_<x>_<height>_<width>``."""
        stem = _stem(self.slide)
        return stem if self.box is None else "_".join([stem, *map(str, self.box)])

    @property
    def group_id(self) -> str:
        """The group stored on the graphs: :attr:`group`, else the slide's stem."""
        return self.group if self.group is not None else _stem(self.slide)


def _stem(path: Path) -> str:
    name = path.name
    for suffix in (".ome.tiff", ".ome.tif", ".ome.zarr"):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return path.stem


def _is_slide(path: Path) -> bool:
    return path.name.lower().endswith(SLIDE_SUFFIXES) and not path.name.startswith(".")


def _check_image(path: Path, where: str) -> None:
    """A CSV may name slide and image files only (by name and content), never any other readable file."""
    if not _is_slide(path):
        raise InputError(f"{where}: {path.name} is not a slide or image file; a cohort CSV lists only files ending "
                         f"in {', '.join(SLIDE_SUFFIXES)}")
    detect_format(path)  # magic bytes (or a zarr store): SlideError naming the file, without its content


def _number(row: dict, column: str, kind: type, where: str) -> int | float | None:
    text = (row.get(column) or "").strip()
    if not text:
        return None
    try:
        value = kind(text)
    except ValueError:
        raise InputError(f"{where}: column '{column}' must be {'an integer' if kind is int else 'a number'}, "
                         f"got {text!r}") from None
    if column == "mpp" and not value > 0:
        raise InputError(f"{where}: mpp must be a positive number of µm per pixel, got {text!r}")
    return value


def _csv_items(path: Path) -> list[SlideItem]:
    with path.open(newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        columns = [c.strip() for c in reader.fieldnames or []]
        if "slide" not in columns:
            raise InputError(f"{path}: the CSV needs a header with a 'slide' column (got {columns or 'no header'}); "
                             f"optional columns: {', '.join(sorted(_KNOWN - {'slide'}))}")
        unknown = set(columns) - _KNOWN
        if unknown:
            raise InputError(f"{path}: unknown column(s) {sorted(unknown)}; known: {sorted(_KNOWN)}")
        boxed = [c in columns for c in _BOX]
        if any(boxed) and not all(boxed):
            raise InputError(f"{path}: a region needs all of the columns y, x, height, width")
        items = []
        for line, raw in enumerate(reader, start=2):
            row = {(k or "").strip(): (v or "").strip() for k, v in raw.items()}
            where = f"{path}, line {line}"
            if not row.get("slide"):
                raise InputError(f"{where}: the 'slide' column is empty")
            slide = Path(row["slide"]).expanduser()
            slide = slide if slide.is_absolute() else path.parent / slide
            if not slide.exists():
                raise InputError(f"{where}: slide {slide} does not exist")
            _check_image(slide, where)
            box = tuple(_number(row, c, int, where) for c in _BOX) if all(boxed) else None
            if box is not None and any(v is None for v in box):
                if any(v is not None for v in box):
                    raise InputError(f"{where}: give all of y, x, height, width or none of them")
                box = None
            if box is not None and (box[0] < 0 or box[1] < 0 or box[2] <= 0 or box[3] <= 0):
                raise InputError(f"{where}: the box needs y, x >= 0 and a positive height and width, got {box}")
            items.append(SlideItem(slide, box, _number(row, "mpp", float, where), _number(row, "label", int, where),
                                   row.get("group") or None))
    if not items:
        raise InputError(f"{path}: the CSV lists no slide")
    return items


def slide_items(sources: Sequence[str | Path], mpp: float | None = None) -> list[SlideItem]:
    """Expand slide files, folders of slides and CSVs into a list of items, in the order given.

    Parameters
    ----------
    sources : sequence of str or Path
        Each a slide file (or zarr folder), a folder of slides (every file ending in one of
        :data:`SLIDE_SUFFIXES`, sorted by name) or a ``.csv`` (see the module docstring).
    mpp : float, optional
        Level-0 µm/px for items that do not give their own (CSV ``mpp`` wins).

    Returns
    -------
    list of SlideItem

    Raises
    ------
    InputError
        A missing source, an empty folder, a malformed CSV row (the message names the line),
        or two items that would write the same output name.
    """
    items: list[SlideItem] = []
    for source in map(Path, sources):
        if source.suffix.lower() == ".csv":
            if not source.is_file():
                raise InputError(f"{source}: no such CSV file")
            items += _csv_items(source)
        elif source.is_dir() and not _is_slide(source):
            found = sorted(p for p in source.iterdir() if _is_slide(p))
            if not found:
                raise InputError(f"{source}: the folder holds no slide (files ending in {', '.join(SLIDE_SUFFIXES)})")
            items += [SlideItem(p) for p in found]
        elif source.exists():
            items.append(SlideItem(source))
        else:
            raise InputError(f"{source}: no such slide, folder or CSV file")
    if mpp is not None:
        items = [i if i.mpp is not None else SlideItem(i.slide, i.box, mpp, i.label, i.group) for i in items]
    seen: dict[str, Path] = {}
    for item in items:
        if item.name in seen:
            raise InputError(f"{item.slide} and {seen[item.name]} would both write '{item.name}': list each "
                             "slide and region once, and give slides in different folders distinct names")
        seen[item.name] = item.slide
    return items
