"""Run a bundle's standalone predictor (`predict.py`) inside the inference image.

The bundle is mounted at $BUNDLE (default /bundle), read-only: a folder with predict.py, a
bundle folder with submission.zip, or the zip itself. A zip is unpacked into a temporary folder
first (so `--read-only --tmpfs /tmp` works). Every argument goes to predict.py unchanged; its
exit code is ours. Standard library only: this image has no toolkit.
"""

from __future__ import annotations

import os
import runpy
import sys
import tempfile
import zipfile
from pathlib import Path

ENTRY = "predict.py"


def fail(message: str) -> None:
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(2)


def locate(bundle: Path, scratch: Path) -> Path:
    """The folder holding predict.py: the bundle itself or its unpacked zip."""
    # The image has an empty /bundle, so "nothing mounted" is an empty folder, not a missing one.
    if not bundle.exists() or (bundle.is_dir() and not any(bundle.iterdir())):
        fail(f"{bundle}: no bundle mounted (docker run -v HOST_BUNDLE:{bundle}:ro ...)")
    if bundle.is_dir() and (bundle / ENTRY).is_file():
        return bundle
    upload = bundle / "submission.zip" if bundle.is_dir() else bundle
    if not upload.is_file():
        fail(f"{bundle}: neither {ENTRY} nor submission.zip is there")
    try:
        with zipfile.ZipFile(upload) as archive:
            for name in archive.namelist():
                target = (scratch / name).resolve()
                if not target.is_relative_to(scratch.resolve()):
                    fail(f"{upload}: unsafe path in the zip: {name}")
            archive.extractall(scratch)
    except zipfile.BadZipFile as exc:
        fail(f"{upload}: not a zip file ({exc})")
    if not (scratch / ENTRY).is_file():
        fail(f"{upload}: no {ENTRY} at the top of the zip (no standalone predictor in it)")
    return scratch


def main() -> None:
    bundle = Path(os.environ.get("BUNDLE", "/bundle"))
    with tempfile.TemporaryDirectory(prefix="bundle-") as tmp:
        folder = locate(bundle, Path(tmp))
        script = folder / ENTRY
        sys.argv = [str(script), *sys.argv[1:]]
        sys.path.insert(0, str(folder))
        runpy.run_path(str(script), run_name="__main__")


if __name__ == "__main__":
    main()
