"""Edits of a copy of a bundle, for tests of what verify must catch."""

from __future__ import annotations

import json
import shutil
import zipfile
from collections.abc import Callable
from pathlib import Path

from toolkit.bundle.manifest import sha256


def rewrite(bundle: Path, tmp: Path, edit: Callable[[Path], None]) -> Path:
    """Copy a bundle, let `edit` change its unpacked files, zip it again."""
    copy = tmp / "bundle"
    shutil.copytree(bundle, copy)
    content = tmp / "content"
    with zipfile.ZipFile(copy / "submission.zip") as zf:
        zf.extractall(content)
    edit(content)
    (copy / "submission.zip").unlink()
    with zipfile.ZipFile(copy / "submission.zip", "w") as zf:
        for path in sorted(content.rglob("*")):
            if path.is_file():
                zf.write(path, path.relative_to(content).as_posix())
    return copy


def edit_loader(content: Path, change: Callable[[str], str]) -> None:
    """Change submission.py and keep the manifest consistent (only the harness call can fail)."""
    loader = content / "submission.py"
    loader.write_text(change(loader.read_text()))
    manifest = json.loads((content / "manifest.json").read_text())
    manifest["files"]["submission.py"] = sha256(loader)
    (content / "manifest.json").write_text(json.dumps(manifest))
