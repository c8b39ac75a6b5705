"""npe2 reader: slides and images as lazy multiscale RGB layers scaled in µm."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from hmgdm_core.errors import InputError
from hmgdm_core.io import open_slide
from hmgdm_core.io.formats import detect_format
from napari_hmgdm._layers import slide_layer_data

__all__ = ["get_reader", "read_slide", "show_scale_bar"]


def get_reader(path: str | list[str]) -> Callable[[str | list[str]], list[tuple]] | None:
    """Return :func:`read_slide` when ``path`` is a file this plugin can open, else ``None``.

    Only the first bytes (or the zarr metadata file) are looked at, so napari can ask
    cheaply about any file.
    """
    paths = [path] if isinstance(path, str) else list(path)
    try:
        for p in paths:
            detect_format(Path(p))
    except InputError:
        return None
    return read_slide


def read_slide(path: str | list[str]) -> list[tuple]:
    """Open each path as an RGB image layer (multiscale when the file has a pyramid).

    Returns
    -------
    list of tuple
        napari ``(data, kwargs, "image")`` layer data tuples.
    """
    paths = [path] if isinstance(path, str) else list(path)
    # The file stays open while napari displays it: its levels are read lazily tile by tile.
    layers = [slide_layer_data(open_slide(p)) for p in paths]
    if any(kwargs["units"][0] == "µm" for _, kwargs, _ in layers):
        show_scale_bar()
    return layers


def show_scale_bar() -> None:
    """Turn on the current viewer's scale bar, if a viewer is open (napari takes its unit, µm, from the layers).

    A reader only returns layer data; the scale bar is the one viewer setting a slide in µm calls for,
    and napari leaves it off.
    """
    import napari

    viewer = napari.current_viewer()
    if viewer is not None:
        viewer.scale_bar.visible = True
