"""A size-bounded on-disk file cache with least-recently-used eviction.

Files live at `<root>/<key>`. The disk is the only state: a file's access time, set explicitly
on every hit and write, orders eviction; its modification time mirrors the remote object's, so a
changed object is noticed. Writes go to a hidden temporary name and are renamed into place, so a
killed or failed download never leaves a file that counts as cached.
"""

from __future__ import annotations

import contextlib
import errno
import os
import time
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from toolkit.errors import DataError
from toolkit.fileio import atomic_path

STALE_TMP_SECONDS = 3600  # a download's temporary file untouched this long was abandoned


def _open_for_writing(path: Path) -> BinaryIO:
    """Open a temporary file for a download (a seam for tests that simulate a full disk)."""
    return path.open("wb")


class FileCache:
    """Files keyed by relative POSIX keys under `root`, at most `max_bytes` in total."""

    def __init__(self, root: Path, max_bytes: int) -> None:
        self.root = Path(root)
        self.max_bytes = int(max_bytes)

    def path(self, key: str) -> Path:
        """Where `key` is (or would be) cached; rejects keys that leave the cache folder."""
        parts = PurePosixPath(key).parts
        if not parts or key.startswith("/") or any(p in ("..", ".") for p in parts):
            raise DataError(f"{key!r}: not a valid cache key (relative, no '..')")
        return self.root.joinpath(*parts)

    def get(self, key: str, size: int | None = None, mtime: float | None = None) -> Path | None:
        """The cached file, marked as just used; None when absent or (given `size`/`mtime`)
        when it no longer matches the source."""
        path = self.path(key)
        try:
            st = path.stat()
        except FileNotFoundError:
            return None
        if size is not None and st.st_size != size:
            return None
        if mtime is not None and int(st.st_mtime) != int(mtime):
            return None
        self._touch(path, st.st_mtime_ns)
        return path

    def put(
        self,
        key: str,
        size: int,
        write: Callable[[BinaryIO], None],
        mtime: float | None = None,
    ) -> Path:
        """Make room for `size` bytes (evicting least-recently-used files), let `write` fill a
        temporary file, then rename it to the key's path. Raises DataError when the file can
        never fit or the cache folder cannot be written (disk full); no partial file is left."""
        if size > self.max_bytes:
            raise DataError(
                f"{key}: {human_size(size)} is larger than the whole remote cache "
                f"({human_size(self.max_bytes)} at {self.root}); raise data.cache.max_gb"
            )
        target = self.path(key)
        self.evict(self.max_bytes - size, keep=target)
        try:
            with atomic_path(target) as tmp:
                with _open_for_writing(tmp) as fh:
                    write(fh)
                if mtime is not None:
                    os.utime(tmp, ns=(time.time_ns(), int(mtime * 1e9)))
                else:
                    self._touch(tmp, tmp.stat().st_mtime_ns)
        except OSError as exc:  # `write` reports remote failures as DataError, not OSError
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                raise DataError(
                    f"cache folder {self.root} is full ({exc.strerror}) while writing {key}; "
                    "free disk space, lower data.cache.max_gb or move TOOLKIT_CACHE_DIR"
                ) from None
            raise DataError(
                f"cannot write {key} into the cache folder {self.root} ({exc}); "
                "check TOOLKIT_CACHE_DIR"
            ) from None
        return target

    def usage(self) -> int:
        """Bytes held by cached files (temporary files of running downloads excluded)."""
        return sum(size for _, size, _ in self._entries())

    def evict(self, budget: int, keep: Path | None = None) -> list[Path]:
        """Delete least-recently-used files until at most `budget` bytes remain."""
        # Oldest access first; `keep` (about to be rewritten) neither counts nor goes.
        entries = sorted(e for e in self._entries() if e[2] != keep)
        total = sum(size for _, size, _ in entries)
        removed = []
        for _, size, path in entries:
            if total <= budget:
                break
            path.unlink(missing_ok=True)
            total -= size
            removed.append(path)
            self._prune(path.parent)
        return removed

    def _entries(self) -> list[tuple[int, int, Path]]:
        """(access time ns, size, path) of every cached file."""
        found = []
        for folder, dirs, files in os.walk(self.root):
            dirs[:] = [d for d in dirs if not d.startswith(".")]
            for name in files:
                if name.startswith("."):  # a download in progress, or one killed long ago
                    self._remove_if_stale(Path(folder, name))
                    continue
                path = Path(folder, name)
                try:
                    st = path.stat()
                except FileNotFoundError:  # evicted by another process meanwhile
                    continue
                found.append((st.st_atime_ns, st.st_size, path))
        return found

    def _prune(self, folder: Path) -> None:
        """Remove folders emptied by eviction, up to the cache root."""
        while folder != self.root and self.root in folder.parents:
            try:
                folder.rmdir()
            except OSError:
                return
            folder = folder.parent

    @staticmethod
    def _remove_if_stale(path: Path) -> None:
        """Delete a temporary file that nothing has written to for STALE_TMP_SECONDS."""
        with contextlib.suppress(OSError):
            if (
                path.name.endswith(".tmp")
                and time.time() - path.stat().st_mtime > STALE_TMP_SECONDS
            ):
                path.unlink()

    @staticmethod
    def _touch(path: Path, mtime_ns: int) -> None:
        os.utime(path, ns=(time.time_ns(), mtime_ns))


def human_size(n: float) -> str:
    """Bytes as a short decimal size: 512 B, 3.0 kB, 1.2 GB."""
    if abs(n) < 1000:
        return f"{n:.0f} B"
    for unit in ("kB", "MB", "GB"):
        n /= 1000
        if abs(n) < 1000 or unit == "GB":
            break
    return f"{n:.1f} {unit}"
