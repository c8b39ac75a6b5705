"""Progress bars (tqdm, on stderr) for the core's ``progress`` callbacks; only rank 0 of a torchrun job shows them."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from tqdm import tqdm

__all__ = ["StageBars", "bar", "is_rank_zero"]


def is_rank_zero() -> bool:
    """Whether this process reports (always, unless it is a torchrun rank other than 0)."""
    return int(os.environ.get("RANK", "0")) == 0


@contextmanager
def bar(desc: str, unit: str) -> Iterator[Callable[[int, int], None]]:
    """A tqdm bar driven by ``progress(done, total)``, shown from the first call and closed when the block ends."""
    with StageBars({desc: unit}) as bars:
        yield lambda done, total: bars(desc, done, total)


class StageBars:
    """One tqdm bar per stage of ``progress(stage, done, total)``; a stage whose count restarts is reset.

    Parameters
    ----------
    units : dict of str to str
        Unit of each stage (``{'slides': 'slide', 'patches': 'patch'}``); unknown stages count items.
    """

    def __init__(self, units: dict[str, str]) -> None:
        self.units = units
        self.bars: dict[str, tqdm] = {}

    def __call__(self, stage: str, done: int, total: int) -> None:
        """Move the bar of ``stage`` to ``done`` of ``total`` (made on first use)."""
        pbar = self.bars.get(stage)
        if pbar is None:
            pbar = tqdm(desc=stage, unit=self.units.get(stage, "it"), total=total, position=len(self.bars),
                        disable=not is_rank_zero(), dynamic_ncols=True)
            self.bars[stage] = pbar
        if done < pbar.n or total != pbar.total:  # the next slide (patches) or dataset (graphs)
            pbar.reset(total=total)
        pbar.update(done - pbar.n)

    def write(self, text: str) -> None:
        """Print a line above the bars (only on rank 0)."""
        if is_rank_zero():
            tqdm.write(text)

    def __enter__(self) -> StageBars:
        return self

    def __exit__(self, *exc: object) -> None:
        for pbar in self.bars.values():
            pbar.close()
        self.bars.clear()
