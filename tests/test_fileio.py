"""Atomic writes keep the permissions a plain write would have had (not mkstemp's 0600), so a
bundle or run folder is readable by another uid (a container's user) like any other file."""

from __future__ import annotations

import stat
import subprocess
import sys
from pathlib import Path

from toolkit.competitions.arc.standalone import write_json_atomic
from toolkit.fileio import DIR_MODE, FILE_MODE, atomic_dir, write_json, write_text


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_atomic_files_and_folders_get_the_umask_permissions(tmp_path: Path):
    plain_file, plain_dir = tmp_path / "plain.txt", tmp_path / "plain"
    plain_file.write_text("x")
    plain_dir.mkdir()
    assert (mode(plain_file), mode(plain_dir)) == (FILE_MODE, DIR_MODE)

    assert mode(write_text(tmp_path / "a.txt", "x")) == FILE_MODE
    assert mode(write_json(tmp_path / "a.json", {"a": 1})) == FILE_MODE
    with atomic_dir(tmp_path / "bundle") as out:
        (out / "inside.txt").write_text("x")
    assert mode(tmp_path / "bundle") == DIR_MODE
    write_json_atomic(tmp_path / "out" / "submission.json", {})
    assert mode(tmp_path / "out" / "submission.json") == FILE_MODE


def test_under_umask_022_another_uid_can_read_a_bundle(tmp_path: Path):
    """In a fresh process with the usual umask: files 0644, folders 0755."""
    code = (
        "import os, sys; os.umask(0o022); from pathlib import Path; "
        "from toolkit.fileio import atomic_dir, write_text; root = Path(sys.argv[1]); "
        "d = atomic_dir(root / 'bundle'); out = d.__enter__(); "
        "write_text(out / 'submission.zip', 'x'); d.__exit__(None, None, None)"
    )
    subprocess.run([sys.executable, "-c", code, str(tmp_path)], check=True)
    assert mode(tmp_path / "bundle") == 0o755
    assert mode(tmp_path / "bundle" / "submission.zip") == 0o644
