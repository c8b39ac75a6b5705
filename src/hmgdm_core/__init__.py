"""hmgdm_core: H-MGDM for H&E slides, as a library (no Qt, no napari)."""

__all__ = ["__version__"]


def __getattr__(name: str) -> str:
    # Looked up on first use: importing importlib.metadata costs about half of ``hmgdm --help``'s start-up.
    if name != "__version__":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib.metadata import PackageNotFoundError, version

    try:
        found = version("napari-hmgdm")
    except PackageNotFoundError:  # running from a source tree that was never installed
        found = "0+unknown"
    globals()["__version__"] = found
    return found
