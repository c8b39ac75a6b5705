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
        self.body.native.layout().setAlignment(Qt.AlignmentFlag.AlignTop)  # no gaps when the dock is tall
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setWidget(self.body.native)
        self.scroll_area = scroll
        self.margins = (0, 0, 0, 0)
        self.native.layout().addWidget(scroll)
        # Only vertical scrolling: the dock is kept as wide as the body needs, as controls come and go.
        self._width_keeper = _width_keeper(scroll)
        self.body.native.installEventFilter(self._width_keeper)

    def body_layout(self):
        """The body's QVBoxLayout, for Qt widgets (plots, folding sections) placed among the controls."""
        return self.body.native.layout()

    def reset_choices(self, *_) -> None:
        """Refresh drop-downs whose choices come from the viewer (napari calls this on layer changes)."""
        self.body.reset_choices()


def _width_keeper(scroll):
    """An event filter that sets ``scroll``'s minimum width to its content's whenever the layout changes."""
    from qtpy.QtCore import QEvent, QObject

    class KeepWidth(QObject):
        def eventFilter(self, watched, event) -> bool:
            if event.type() == QEvent.Type.LayoutRequest:
                width = watched.minimumSizeHint().width() + scroll.verticalScrollBar().sizeHint().width()
                scroll.setMinimumWidth(width)
            return False

    return KeepWidth(scroll)  # Qt is imported only when a widget is made
