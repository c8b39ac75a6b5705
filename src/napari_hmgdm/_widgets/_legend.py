"""A small legend: a colour swatch and a name per category (mask roles, clusters, classes).

napari draws colour bars for continuous values (``layer.colorbar``) but has no legend for
categories, so the widgets show one of these under their buttons.
"""

from __future__ import annotations

from collections.abc import Sequence

from magicgui.widgets import Container, Label

__all__ = ["Legend"]


def _hex(colour) -> str:
    from matplotlib.colors import to_hex

    return to_hex(colour, keep_alpha=False)


class Legend(Container):
    """Rows of ``■ name`` in the categories' colours; hidden while empty.

    Parameters
    ----------
    title : str
        Shown above the rows (e.g. the layer it explains).
    """

    def __init__(self, title: str = "") -> None:
        self._title = title
        self.text = Label(value="")
        self.text.native.setWordWrap(True)
        super().__init__(widgets=[self.text], labels=False)
        self.margins = (0, 0, 0, 0)
        self.visible = False
        self.entries: list[tuple[str, str]] = []

    def set_entries(self, entries: Sequence[tuple[str, object]], title: str | None = None) -> None:
        """Show ``(name, colour)`` pairs; a colour is anything matplotlib reads (name, hex, RGB(A) in 0–1)."""
        self.entries = [(str(name), _hex(colour)) for name, colour in entries]
        rows = [f'<span style="color:{c}; font-size:14pt">■</span>&nbsp;{name}' for name, c in self.entries]
        heading = title if title is not None else self._title
        self.text.value = (f"<b>{heading}</b><br>" if heading else "") + "<br>".join(rows)  # one per line: wraps
        self.visible = bool(self.entries)
