"""Zip archives of bundles: written atomically, flat or not, read back safely."""

from __future__ import annotations

import zipfile
from pathlib import Path

from toolkit.errors import VerifyError
from toolkit.fileio import atomic_path


def write_zip(folder: Path, target: Path) -> Path:
    """Zip every file under `folder` with paths relative to it (a flat zip: no top folder)."""
    with atomic_path(target) as tmp, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                zf.write(path, path.relative_to(folder).as_posix())
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
