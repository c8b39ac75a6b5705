"""The base of the plugin's dock widgets: a body that scrolls, so any number of them fit the screen.

napari docks a magicgui widget's ``native`` QWidget, and a ``Container(scrollable=True)``'s
``native`` is the widget *inside* its scroll area, so the scroll area would be lost; here the
body sits in a QScrollArea of our own, inside the docked widget.
"""

from __future__ import annotations

from collections.abc import Sequence

from magicgui.widgets import Container, Widget

__all__ = ["ScrollingDock"]


class ScrollingDock(Container):
    """A dock widget whose ``body`` (a Container of ``widgets``) scrolls vertically.

    Parameters
    ----------
    widgets : sequence of Widget
        The dock's controls, top to bottom.
    """

    def __init__(self, widgets: Sequence[Widget]) -> None:
        from qtpy.QtCore import Qt
        from qtpy.QtWidgets import QFrame, QScrollArea

        super().__init__(widgets=[])
        self.body = Container(widgets=list(widgets))
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setWidget(self.body.native)
        self.scroll_area = scroll
        self.margins = (0, 0, 0, 0)
        self.native.layout().addWidget(scroll)

    def body_layout(self):
        """The body's QVBoxLayout, for Qt widgets (plots, folding sections) placed among the controls."""
        return self.body.native.layout()

    def reset_choices(self, *_) -> None:
        """Refresh drop-downs whose choices come from the viewer (napari calls this on layer changes)."""
        self.body.reset_choices()
