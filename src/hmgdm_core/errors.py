"""Exceptions raised for bad input.

Every error a user can cause by what they pass in (a file, a region, an image) is an
:class:`InputError`, whose message says what was wrong and what to do. Catch
``InputError`` to handle all of them; the subclasses tell which stage refused.
"""

__all__ = [
    "DownstreamError",
    "GeoJSONError",
    "HmgdmError",
    "InputError",
    "NoTissueError",
    "RegionError",
    "SlideError",
    "TrainingError",
]


class HmgdmError(Exception):
    """Base class of every exception raised on purpose by ``hmgdm_core``."""


class InputError(HmgdmError, ValueError):
    """The input cannot be used as given; the message says why and what to do."""


class SlideError(InputError):
    """A slide or image file cannot be opened or read.

    Missing, corrupt or truncated files, unsupported formats, unsupported pixel types
    (grayscale, RGBA, 16-bit) and levels that do not exist.
    """


class RegionError(InputError):
    """A region is empty, has a non-positive size, or lies (partly) outside the image."""


class GeoJSONError(InputError):
    """A GeoJSON (QuPath) file is malformed, too large, of an unexpected shape or out of the image."""


class NoTissueError(InputError):
    """A region holds too little tissue for the requested analysis."""


class DownstreamError(InputError):
    """Embeddings, labels, groups or survival data cannot support the requested evaluation.

    A file lacks a key, arrays disagree in length or hold NaNs, or a class has fewer groups
    than folds.
    """


class TrainingError(HmgdmError):
    """Training cannot go on (e.g. repeated non-finite losses); the message says what to change."""
