"""Atomic writes: the old file survives a failed write, the new one appears whole."""

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
