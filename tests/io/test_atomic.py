"""Atomic writes: the old file survives a failed write, the new one appears whole."""

import os
import stat

import pytest

from hmgdm_core.io.atomic import atomic_path, write_text_atomic


def test_failed_write_keeps_the_old_file(tmp_path):
    target = tmp_path / "model.pt"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("disk full")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["model.pt"]


def test_write_creates_folders_and_replaces(tmp_path):
    target = tmp_path / "a" / "b" / "settings.json"
    write_text_atomic(target, "1")
    write_text_atomic(target, "2")
    assert target.read_text() == "2"
    assert [p.name for p in target.parent.iterdir()] == ["settings.json"]


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_written_files_follow_the_umask(tmp_path, umask):
    previous = os.umask(umask)
    try:
        write_text_atomic(tmp_path / "shared.geojson", "{}")
        with atomic_path(tmp_path / "model.pt") as tmp:
            tmp.write_bytes(b"\0")
        plain = tmp_path / "plain.txt"
        plain.write_text("x")  # what an ordinary open() gives under this umask
    finally:
        os.umask(previous)
    expected = 0o666 & ~umask
    for name in ("shared.geojson", "model.pt", "plain.txt"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == expected, name
