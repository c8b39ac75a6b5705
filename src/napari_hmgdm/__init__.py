"""napari-hmgdm: a thin napari plugin over :mod:`hmgdm_core` (readers, samples, widgets)."""

from hmgdm_core import __version__

__all__ = ["__version__"]
