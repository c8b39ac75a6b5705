"""Checks that config dataclasses run in ``__post_init__``: every value is validated where it enters.

A config built from the command line, a JSON file or Python is refused with an :class:`InputError`
naming the field, instead of failing later (a ZeroDivisionError) or silently training on nothing.
"""

from __future__ import annotations

import math
import types
import typing
from dataclasses import fields, is_dataclass
from typing import Any, Literal, Union

from hmgdm_core.errors import InputError

__all__ = ["check_at_least", "check_fields", "check_positive", "check_range"]


def _matches(value: Any, kind: Any) -> bool:
    origin = typing.get_origin(kind)
    if kind is Any:
        return True
    if origin is Literal:
        return any(value == a and type(value) is type(a) for a in typing.get_args(kind))
    if origin in (Union, types.UnionType):
        return any(_matches(value, a) for a in typing.get_args(kind))
    if origin is tuple:
        args = typing.get_args(kind)
        if len(args) == 2 and args[1] is Ellipsis:
            return isinstance(value, tuple) and all(_matches(v, args[0]) for v in value)
        return isinstance(value, tuple) and len(value) == len(args) and all(map(_matches, value, args))
    if kind is type(None):
        return value is None
    if kind is bool:
        return isinstance(value, bool)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind is float:  # JSON writes 1e-4 and 1 alike; NaN and ±inf are never a sensible setting
        return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    if kind is str:
        return isinstance(value, str)
    if isinstance(kind, type) and is_dataclass(kind):
        return isinstance(value, kind)
    return True  # other annotations (callables, arrays) are checked by their owner


def _describe(kind: Any) -> str:
    origin = typing.get_origin(kind)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(kind))
    if origin in (Union, types.UnionType):
        return " or ".join(_describe(a) for a in typing.get_args(kind))
    if origin is tuple:
        args = [a for a in typing.get_args(kind) if a is not Ellipsis]
        return f"a list of {len(args)} values ({', '.join(_describe(a) for a in args)})"
    if kind is type(None):
        return "null"
    if kind is float:
        return "a finite number"
    if kind is int:
        return "an integer"
    return getattr(kind, "__name__", str(kind))


def check_fields(config: Any) -> None:
    """Raise :class:`InputError` unless every field of the dataclass ``config`` has its annotated type.

    Floats must be finite; ints must not be bools; tuples must have the annotated length; ``Literal``
    fields one of their values.
    """
    hints = typing.get_type_hints(type(config))
    for f in fields(config):
        value = getattr(config, f.name)
        if not _matches(value, hints[f.name]):
            raise InputError(f"{type(config).__name__}.{f.name} must be {_describe(hints[f.name])}, got {value!r}")


def check_at_least(config: Any, name: str, low: float) -> None:
    """Raise :class:`InputError` if ``config.<name>`` (when not None) is below ``low``."""
    value = getattr(config, name)
    if value is not None and value < low:
        raise InputError(f"{type(config).__name__}.{name} must be ≥ {low}, got {value!r}")


def check_positive(config: Any, name: str) -> None:
    """Raise :class:`InputError` if ``config.<name>`` (when not None) is not > 0."""
    value = getattr(config, name)
    if value is not None and not value > 0:
        raise InputError(f"{type(config).__name__}.{name} must be > 0, got {value!r}")


def check_range(config: Any, name: str, low: float, high: float) -> None:
    """Raise :class:`InputError` unless ``low`` ≤ ``config.<name>`` ≤ ``high``."""
    value = getattr(config, name)
    if not low <= value <= high:
        raise InputError(f"{type(config).__name__}.{name} must be in [{low}, {high}], got {value!r}")
