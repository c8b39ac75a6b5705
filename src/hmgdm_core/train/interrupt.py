"""Cancel points inside a forward/backward pass, so a cancel takes effect within one layer, not one step."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from torch import nn

from hmgdm_core.train.events import CancelToken

__all__ = ["PassCancelled", "cancel_points"]


class PassCancelled(Exception):
    """Raised from inside a pass when its cancel token is set; callers catch it and discard the pass."""


@contextlib.contextmanager
def cancel_points(module: nn.Module, cancel: CancelToken | None) -> Iterator[None]:
    """Check ``cancel`` before every submodule's forward and after every parameter's gradient accumulates.

    A single layer of one micro-batch takes milliseconds to tens of milliseconds on a CPU, so
    :class:`PassCancelled` is raised well within the 2 s a user waits, even in the middle of a long pass.
    The hooks are removed on exit. With ``cancel=None`` nothing is hooked.
    """
    if cancel is None:
        yield
        return

    def check(*_: object) -> None:
        if cancel.cancelled:
            raise PassCancelled

    handles = [m.register_forward_pre_hook(check) for m in module.modules()]
    handles += [p.register_post_accumulate_grad_hook(check) for p in module.parameters() if p.requires_grad]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()
