"""Atomic writes: write to a temporary name beside the target, then rename over it.

A reader (or a run killed half-way) sees the old file or the new one, never half of one.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np


def _process_umask() -> int:
    """This process's umask (read once: setting it to read it is not thread-safe)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


# mkstemp/mkdtemp create owner-only (0600/0700) entries whatever the umask; what we rename into
# place gets the permissions a plain open()/mkdir() would have given it, so that a bundle can be
# read by another uid (a container's user, a teammate) exactly as any other file there.
_UMASK = _process_umask()
FILE_MODE = 0o666 & ~_UMASK
DIR_MODE = 0o777 & ~_UMASK


@contextlib.contextmanager
def atomic_path(target: Path) -> Iterator[Path]:
    """Yield a temporary path in the target's folder; rename it onto `target` on success."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    tmp.chmod(FILE_MODE)  # (os.chmod, not fchmod: Windows has no fchmod before Python 3.13)
    try:
        yield tmp
        os.replace(tmp, target)
    except (OSError, RuntimeError) as exc:
        named = full_disk_error(exc, target.parent)
        if named is not None:
            raise named from exc
        raise
    finally:
        tmp.unlink(missing_ok=True)


def full_disk_error(exc: BaseException, folder: Path) -> OSError | None:
    """A full disk, however the writer reported it (numpy: an OSError without an errno or a
    file name; torch: a RuntimeError), as ENOSPC naming `folder`; None for other errors."""
    code, name = getattr(exc, "errno", None), getattr(exc, "filename", None)
    if (code == errno.ENOSPC and name is None) or (code != errno.ENOSPC and disk_full(folder)):
        return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(folder))
    return None


def disk_full(folder: Path, margin: int = 1 << 20) -> bool:
    """Whether the file system holding `folder` has (almost) no space left."""
    try:
        return shutil.disk_usage(folder).free < margin
    except OSError:
        return False


def write_text(target: Path, text: str) -> Path:
    """Atomically write text."""
    with atomic_path(target) as tmp:
        tmp.write_text(text)
    return Path(target)


def write_json(target: Path, data: Any) -> Path:
    """Atomically write JSON (indented, keys in insertion order, a trailing newline)."""
    return write_text(target, json.dumps(data, indent=2, default=str) + "\n")


def write_npy(target: Path, array: np.ndarray) -> Path:
    """Atomically write a .npy array."""
    with atomic_path(target) as tmp, tmp.open("wb") as fh:
        np.save(fh, array)
    return Path(target)


def read_json(path: Path) -> Any:
    """Read a JSON file; one that is not JSON (or not UTF-8) is a ToolkitError naming it."""
    from toolkit.errors import ToolkitError

    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ToolkitError(f"{path}: not valid JSON ({exc}); the file is corrupt") from None


@contextlib.contextmanager
def atomic_dir(target: Path) -> Iterator[Path]:
    """Yield a temporary folder beside `target`; on success it replaces `target` whole."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    tmp.chmod(DIR_MODE)
    try:
        try:
            yield tmp
        except (OSError, RuntimeError) as exc:
            named = full_disk_error(exc, target.parent)
            if named is not None:
                raise named from exc
            raise
        if target.exists():
            old = target.with_name(f".{target.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(target, old)
            os.replace(tmp, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
