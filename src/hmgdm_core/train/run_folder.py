"""A run folder belongs to one run at a time: a lock file, a guard against mixing runs, stale-file cleanup.

Two runs writing ``checkpoint-*.pt`` into one folder would leave a mix whose latest checkpoint belongs to
either; a new run in an old folder would overwrite the early checkpoints and keep the late ones. So a run
takes the folder's lock (``.hmgdm-run.lock``: pid, host, start time) for its lifetime, refuses a folder that
holds another run's checkpoints unless it resumes that run or is told to overwrite it, and removes the
temporary files a killed run left behind.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
from collections.abc import Iterator
from dataclasses import asdict, fields, is_dataclass
from os import PathLike
from pathlib import Path
from typing import Any

from hmgdm_core.errors import InputError

__all__ = ["LOCK_FILE", "claim_run_folder", "config_changes"]

LOCK_FILE = ".hmgdm-run.lock"
_CHECKPOINTS = "checkpoint-*.pt"
_STALE = (".checkpoint-*.tmp", ".config.json.*.tmp")  # atomic_path's temporaries of a killed writer


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def _take_lock(lock: Path) -> None:
    """Create ``lock`` exclusively, taking over one left by a dead process of this host."""
    for _ in range(2):
        try:
            handle = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            try:
                owner = json.loads(lock.read_text(encoding="utf-8"))
                pid, host = int(owner["pid"]), str(owner["host"])
            except (OSError, ValueError, KeyError, TypeError):
                owner, pid, host = {}, -1, "?"
            if host == socket.gethostname() and pid > 0 and pid != os.getpid() and not _alive(pid):
                lock.unlink(missing_ok=True)  # stale: its process is gone
                continue
            since = owner.get("started", "?") if isinstance(owner, dict) else "?"
            raise InputError(
                f"{lock.parent} is in use by another run (process {pid} on host {host}, started {since}): wait "
                f"for it to end or choose another output folder; if that process no longer runs, delete {lock}"
            ) from None
        with os.fdopen(handle, "w", encoding="utf-8") as fh:
            json.dump(
                {"pid": os.getpid(), "host": socket.gethostname(), "started": time.strftime("%Y-%m-%d %H:%M:%S")}, fh
            )
        return
    raise InputError(f"could not take the lock {lock}: another run took it first")


def _inside(path: Path, folder: Path) -> bool:
    path, folder = path.resolve(), folder.resolve()
    return path == folder or folder in path.parents


def _guard(out_dir: Path, resume: Path | None, overwrite: bool) -> None:
    """Refuse a folder holding another run's checkpoints; with ``overwrite`` delete them instead."""
    existing = sorted(out_dir.glob(_CHECKPOINTS))
    if not existing:
        return
    resumes_here = resume is not None and _inside(resume, out_dir)
    if overwrite:
        if resumes_here:
            raise InputError(
                f"--overwrite would delete the checkpoints of {out_dir} that --resume continues: give one of them"
            )
        for path in existing:
            path.unlink()
        (out_dir / "config.json").unlink(missing_ok=True)
        return
    if not resumes_here:
        raise InputError(
            f"{out_dir} already holds a run (latest {existing[-1].name}): continue it with --resume {out_dir}, "
            "start over with --overwrite (deletes its checkpoints), or choose another output folder"
        )


@contextlib.contextmanager
def claim_run_folder(
    out_dir: str | PathLike[str], *, resume: str | PathLike[str] | None = None, overwrite: bool = False
) -> Iterator[Path]:
    """Hold ``out_dir`` for one run: lock it, clean stale temporaries, refuse to mix runs.

    Parameters
    ----------
    out_dir : str or PathLike
        The run folder (created if missing).
    resume : str or PathLike, optional
        The checkpoint or folder the run continues; resuming a run of ``out_dir`` itself is allowed.
    overwrite : bool
        Delete the checkpoints of an earlier run in ``out_dir`` instead of refusing.

    Yields
    ------
    Path
        ``out_dir``; the lock is released when the block ends, however it ends.

    Raises
    ------
    InputError
        If another live process holds the folder, or it holds another run and neither ``resume`` continues
        it nor ``overwrite`` is set.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    lock = out_dir / LOCK_FILE
    _take_lock(lock)
    try:
        for pattern in _STALE:
            for stale in out_dir.glob(pattern):
                stale.unlink(missing_ok=True)
        _guard(out_dir, Path(resume) if resume is not None else None, overwrite)
        yield out_dir
    finally:
        lock.unlink(missing_ok=True)


def _flatten(prefix: str, value: Any) -> dict[str, Any]:
    if is_dataclass(value):
        value = asdict(value)
    if isinstance(value, dict):
        return {k: v for key, item in value.items() for k, v in _flatten(f"{prefix}.{key}", item).items()}
    return {prefix: value}


def config_changes(old: Any, new: Any, sections: tuple[str, ...] = ("model", "mask", "diffusion")) -> list[str]:
    """``section.field: old -> new`` for every field of ``sections`` that differs between two run configs."""
    names = {f.name for f in fields(old)}
    changes = []
    for section in (s for s in sections if s in names):
        before = _flatten(section, getattr(old, section))
        after = _flatten(section, getattr(new, section))
        changes += [
            f"{k}: {before.get(k)!r} -> {after.get(k)!r}"
            for k in sorted(before.keys() | after.keys())
            if before.get(k) != after.get(k)
        ]
    return changes
