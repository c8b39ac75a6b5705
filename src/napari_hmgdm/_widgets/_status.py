"""The widgets' status line: the latest message only, errors in red until the next message replaces them."""

from __future__ import annotations

from magicgui.widgets import Label

__all__ = ["StatusLine"]

_ERROR_STYLE = "color: #ff6b6b;"


class StatusLine(Label):
    """A word-wrapped status label; :meth:`error` shows a message in red, any other message in plain text."""

    def __init__(self) -> None:
        super().__init__(value="")
        self.native.setWordWrap(True)  # long messages wrap instead of widening the dock
        self._showing_error = False

    @property
    def is_error(self) -> bool:
        """Whether the line shows an error now."""
        return self.native.styleSheet() == _ERROR_STYLE

    def error(self, text: str) -> None:
        """Show ``text`` as an error (red), replacing whatever was there."""
        self._showing_error = True
        try:
            self.value = text
        finally:
            self._showing_error = False
        self.native.setStyleSheet(_ERROR_STYLE)

    @property
    def value(self) -> str:
        """The message shown."""
        return Label.value.fget(self)

    @value.setter
    def value(self, text: str) -> None:
        Label.value.fset(self, text)
        if not self.__dict__.get("_showing_error", False):  # a new, ordinary message: the old error is gone
            self.native.setStyleSheet("")
