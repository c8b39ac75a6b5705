"""Compute devices the user can pick from, and a one-line description of what was found."""

from __future__ import annotations

__all__ = ["device_choices"]


def device_choices() -> tuple[tuple[str, ...], str]:
    """Device names for the picker (``auto``, ``cpu``, each ``cuda:<i>``, ``mps``) and what was found.

    Returns
    -------
    choices : tuple of str
        Values :func:`hmgdm_core.train.resolve_device` accepts.
    found : str
        E.g. ``"CPU (8 threads), cuda:0 NVIDIA H100 80GB (79 GiB)"``.
    """
    import torch

    choices = ["auto", "cpu"]
    found = [f"CPU ({torch.get_num_threads()} threads)"]
    if torch.cuda.is_available():
        for index in range(torch.cuda.device_count()):
            props = torch.cuda.get_device_properties(index)
            choices.append(f"cuda:{index}")
            found.append(f"cuda:{index} {props.name} ({props.total_memory / 2**30:.0f} GiB)")
    if torch.backends.mps.is_available():
        choices.append("mps")
        found.append("MPS")
    return tuple(choices), ", ".join(found)


def precision_choices(device: str) -> tuple[str, ...]:
    """The precisions that train on the picker's ``device`` (:func:`hmgdm_core.train.device.precisions`).

    ``auto`` stands for the device it resolves to; a name that does not resolve (a GPU gone since) offers fp32.
    """
    from hmgdm_core.errors import InputError
    from hmgdm_core.train.device import precisions, resolve_device

    try:
        return precisions(resolve_device(device))
    except InputError:
        return ("fp32",)
