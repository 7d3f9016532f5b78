"""Resolve a recipe's `data.source` to a local folder: a path, or synthetic data made once."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path

from toolkit.config.settings import Settings
from toolkit.errors import DataError
from toolkit.fileio import atomic_dir


def synthetic_root(
    settings: Settings, competition: str, params: dict, write: Callable[[Path], object]
) -> Path:
    """A cached synthetic dataset for these parameters, written atomically on first use."""
    key = hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:12]
    root = settings.cache_dir / "synthetic" / f"{competition}-{key}"
    if not root.is_dir():
        with atomic_dir(root) as tmp:
            write(tmp)
    return root


def local_root(source: str, settings: Settings) -> Path:
    """A local source: absolute, or relative to TOOLKIT_DATA_DIR (then to the current folder).

    s3:// sources have no local root: open them with toolkit.data.remote.open_source."""
    if source.startswith("s3://"):
        raise DataError(
            f"data.source={source}: a remote source has no local folder; this step must read it "
            "through toolkit.data.remote.open_source (or point data.source at a local copy)"
        )
    if source.startswith(("http://", "https://")):
        raise DataError(
            f"data.source={source}: http(s) sources are not supported; use s3://bucket/prefix "
            "or a local folder"
        )
    path = Path(source).expanduser()
    candidates = [path] if path.is_absolute() else [settings.data_dir / path, Path.cwd() / path]
    for candidate in candidates:
        if candidate.is_dir():
            return candidate.resolve()
    tried = " or ".join(str(c) for c in candidates)
    raise DataError(
        f"data.source={source}: no such folder ({tried}); set TOOLKIT_DATA_DIR or "
        "use --set data.source=synthetic"
    )
