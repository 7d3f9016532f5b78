"""manifest.json: what a bundle holds and how it was made (hashes, versions, recipe, scores)."""

from __future__ import annotations

import hashlib
import subprocess
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import toolkit

MANIFEST = "manifest.json"
PACKAGES = ("torch", "lightning", "braindecode", "mne", "numpy", "onnx", "onnxruntime")


def sha256(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def package_versions(names: tuple[str, ...] = PACKAGES) -> dict[str, str | None]:
    """Installed versions of the packages that shape a bundle."""
    found: dict[str, str | None] = {}
    for name in names:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = None
    return found


def code_commit() -> str | None:
    """The git commit of the toolkit's source (with `-dirty` for local changes), if known."""
    root = Path(toolkit.__file__).resolve().parent.parent
    try:
        commit = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"],
            capture_output=True, text=True, timeout=5, check=True,
        ).stdout.strip()  # fmt: skip
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True, timeout=5, check=True,
        ).stdout.strip()  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return None
    return commit + ("-dirty" if dirty else "")


def build_manifest(folder: Path, **fields: Any) -> dict[str, Any]:
    """A manifest for every file in `folder` (sha256 each), plus the given fields."""
    files = {
        p.relative_to(folder).as_posix(): sha256(p)
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != MANIFEST
    }
    return {
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "toolkit_version": toolkit.__version__,
        "code_commit": code_commit(),
        "packages": package_versions(),
        **fields,
        "files": files,
    }
