"""files.publish_folder: a folder appears whole or not at all, and a user's files are never deleted."""

from __future__ import annotations

import pytest

from semrl.files import publish_folder


def test_publishes_and_replaces(tmp_path):
    final = tmp_path / "final"
    (tmp_path / "final.tmp").mkdir()  # left by an interrupted attempt
    (tmp_path / "final.tmp" / "stale").write_text("x")
    final.mkdir()
    (final / "old").write_text("old")
    with publish_folder(final) as tmp:
        assert tmp == tmp_path / "final.tmp" and not any(tmp.iterdir())
        (tmp / "new").write_text("new")
    assert sorted(p.name for p in final.iterdir()) == ["new"]
    assert not (tmp_path / "final.tmp").exists()


def test_failure_leaves_final_and_removes_tmp(tmp_path):
    final = tmp_path / "final"
    final.mkdir()
    (final / "old").write_text("old")
    with pytest.raises(RuntimeError), publish_folder(final, ".final.export.tmp") as tmp:
        (tmp / "half").write_text("half")
        raise RuntimeError("cut")
    assert sorted(p.name for p in final.iterdir()) == ["old"]
    assert not (tmp_path / ".final.export.tmp").exists()


def test_no_replace_takes_an_empty_folder_only(tmp_path):
    empty, full = tmp_path / "empty", tmp_path / "full"
    empty.mkdir()
    full.mkdir()
    (full / "mine").write_text("user's")
    with publish_folder(empty, replace=False) as tmp:
        (tmp / "new").write_text("new")
    assert (empty / "new").is_file()
    with pytest.raises(OSError), publish_folder(full, replace=False) as tmp:
        (tmp / "new").write_text("new")
    assert sorted(p.name for p in full.iterdir()) == ["mine"]
    assert not (tmp_path / "full.tmp").exists()
