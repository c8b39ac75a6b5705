"""magicgui forms generated from the core's frozen config dataclasses (no second set of defaults)."""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Sequence
from typing import Any

from magicgui.widgets import CheckBox, ComboBox, Container, LineEdit, SpinBox, Widget

from napari_hmgdm._widgets._field_text import label_and_tooltip

__all__ = ["DataclassForm", "collapsible"]


def _optional_inner(annotation: Any) -> type | None:
    """``T`` for ``T | None``, else ``None``."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1 and len(typing.get_args(annotation)) == 2:
            return args[0]
    return None


class DataclassForm(Container):
    """A form with one widget per scalar field of a dataclass; nested dataclasses are left out.

    Fields get plain-language labels and tooltips (:mod:`~napari_hmgdm._widgets._field_text`).

    Parameters
    ----------
    value : dataclass instance
        Provides the field types and the initial values.
    choices : dict, optional
        Field name → allowed string values (shown as a drop-down).
    essential : sequence of str, optional
        Fields shown first; the others go in a folded section. Default: all shown.
    advanced_title : str
        The folded section's title.
    """

    def __init__(
        self,
        value: Any,
        choices: dict[str, tuple[str, ...]] | None = None,
        essential: Sequence[str] | None = None,
        advanced_title: str = "Advanced",
    ) -> None:
        self._cls = type(value)
        self._base = value
        hints = typing.get_type_hints(self._cls)
        self._fields: dict[str, Widget] = {}
        for f in dataclasses.fields(self._cls):
            current = getattr(value, f.name)
            widget = self._widget_for(f.name, hints[f.name], current, (choices or {}).get(f.name))
            if widget is not None:
                self._fields[f.name] = widget
        shown = [w for name, w in self._fields.items() if essential is None or name in essential]
        folded = [w for w in self._fields.values() if w not in shown]
        super().__init__(widgets=shown, labels=True)
        self.advanced: Container | None = None
        if folded:
            self.advanced = Container(widgets=folded, labels=True)
            self.advanced.margins = (0, 0, 0, 0)
            self.native.layout().addWidget(collapsible(advanced_title, self.advanced, expanded=False))

    def __getattr__(self, name: str) -> Any:
        fields = self.__dict__.get("_fields") or {}
        if name in fields:  # folded fields too, as ``form.lr``
            return fields[name]
        return super().__getattr__(name)

    @staticmethod
    def _widget_for(name: str, annotation: Any, current: Any, choices: tuple[str, ...] | None) -> Widget | None:
        widget = DataclassForm._bare_widget_for(name, annotation, current, choices)
        if widget is not None:
            widget.label, tooltip = label_and_tooltip(name)
            widget.tooltip = " ".join(t for t in (tooltip, widget.tooltip) if t) or None
        return widget

    @staticmethod
    def _bare_widget_for(name: str, annotation: Any, current: Any, choices: tuple[str, ...] | None) -> Widget | None:
        label = name
        if choices:
            return ComboBox(name=name, label=label, choices=list(choices), value=current)
        if annotation is bool:
            return CheckBox(name=name, label=label, value=current)
        if annotation is int:
            return SpinBox(name=name, label=label, value=current, min=-(10**9), max=10**9)
        if annotation is float:
            # Text, not a spin box: a spin box rounds 1e-4 (a learning rate) to its decimals.
            return LineEdit(name=name, label=label, value=repr(current))
        if annotation is str:
            return LineEdit(name=name, label=label, value=current)
        inner = _optional_inner(annotation)
        if inner in (int, float):
            widget = LineEdit(name=name, label=label, value="" if current is None else str(current))
            widget.tooltip = "(empty = automatic)"
            return widget
        return None  # nested configs and tuples get their own forms or keep their defaults

    @property
    def config(self) -> Any:
        """A new dataclass instance: the initial value with the form's fields replaced.

        Raises
        ------
        ValueError
            If an optional numeric field holds text that is not a number.
        """
        hints = typing.get_type_hints(self._cls)
        changes = {}
        for widget in self._fields.values():
            annotation = hints[widget.name]
            inner = _optional_inner(annotation)
            text = str(widget.value).strip()
            try:
                if inner is not None:
                    changes[widget.name] = None if text in ("", "auto") else inner(text)
                elif annotation is float:
                    changes[widget.name] = float(text)
                else:
                    changes[widget.name] = widget.value
            except ValueError as err:
                raise ValueError(f"{widget.label}: {text!r} is not a number") from err
        return dataclasses.replace(self._base, **changes)

    def set_config(self, value: Any) -> None:
        """Show the fields of ``value`` (same dataclass type) in the form."""
        if type(value) is not self._cls:
            raise TypeError(f"expected a {self._cls.__name__}, got {type(value).__name__}")
        self._base = value
        hints = typing.get_type_hints(self._cls)
        for widget in self._fields.values():
            current = getattr(value, widget.name)
            if _optional_inner(hints[widget.name]) is not None:
                widget.value = "" if current is None else str(current)
            elif hints[widget.name] is float:
                widget.value = repr(current)
            else:
                widget.value = current


def collapsible(title: str, form: Container, expanded: bool):
    """Put a long settings form under a header that folds it away."""
    from superqt import QCollapsible

    section = QCollapsible(title)
    section.addWidget(form.native)
    if expanded:
        section.expand(animate=False)
    else:
        section.collapse(animate=False)
    return section
