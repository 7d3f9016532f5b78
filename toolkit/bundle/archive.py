"""Zip archives of bundles: written atomically and deterministically, flat or not, read back
safely.

The same files always give the same zip bytes: entries in sorted order, every entry stamped with
one fixed time (1980-01-01, zip's epoch) and fixed permissions (0644), no extra fields, one
compression level. Nothing about the machine or the moment of writing gets in."""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path

from toolkit.errors import VerifyError
from toolkit.fileio import atomic_path

FIXED_TIME = (1980, 1, 1, 0, 0, 0)
FILE_MODE = 0o100644  # a regular file, rw-r--r--
COMPRESS_LEVEL = 6
UNIX = 3  # the zip "create system": attributes are Unix permissions


def _entry(name: str, size: int) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=FIXED_TIME)
    info.compress_type = zipfile.ZIP_DEFLATED
    info._compresslevel = COMPRESS_LEVEL  # (`compress_level` from Python 3.13)
    info.create_system = UNIX
    info.external_attr = FILE_MODE << 16
    info.file_size = size  # lets zipfile choose zip64 up front for files over 2 GiB
    return info


def write_zip(folder: Path, target: Path) -> Path:
    """Zip every file under `folder` with paths relative to it (a flat zip: no top folder),
    byte for byte the same for the same files."""
    files = sorted((p.relative_to(folder).as_posix(), p) for p in folder.rglob("*") if p.is_file())
    with atomic_path(target) as tmp, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, path in files:
            with path.open("rb") as src, zf.open(_entry(name, path.stat().st_size), "w") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
    return target


def extract_zip(archive: Path, into: Path) -> list[str]:
    """Extract a zip, refusing absolute paths and `..` (zip-slip); return its member names."""
    try:
        with zipfile.ZipFile(archive) as zf:
            names = zf.namelist()
            for name in names:
                if name.startswith("/") or ".." in Path(name).parts:
                    raise VerifyError(f"{archive}: unsafe path in zip: {name}")
            zf.extractall(into)
    except zipfile.BadZipFile:
        raise VerifyError(f"{archive}: not a readable zip file") from None
    return names


def top_level_folder(names: list[str]) -> str | None:
    """The single folder every member sits in, if the zip is wrapped in one (not flat)."""
    tops = {name.split("/", 1)[0] for name in names}
    if len(tops) == 1 and all("/" in name for name in names):
        return tops.pop()
    return None
