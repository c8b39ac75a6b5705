"""hmgdm_core: H-MGDM for H&E slides, as a library (no Qt, no napari)."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("napari-hmgdm")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"

__all__ = ["__version__"]
