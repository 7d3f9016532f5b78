"""An on-disk cache of preprocessed arrays: one entry per (source file, preprocessing) key.

Each entry is a folder of `.npy` files plus `meta.json`, written atomically, read back as
memory maps, so after the first epoch no source file is parsed again and a second run reads
only the cache. A file that could not be processed is remembered too (`meta["skipped"]`), so
a corrupt file is not fetched and parsed again on every run.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from toolkit.fileio import atomic_dir, read_json, write_json

META = "meta.json"


def cache_key(parts: dict[str, Any]) -> str:
    """A stable short hash of JSON-able key parts (source, fingerprint, parameters, version)."""
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


@dataclass
class Entry:
    """One cached item: named arrays (memory-mapped) and its metadata."""

    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def skipped(self) -> str | None:
        return self.meta.get("skipped")


class ArrayCache:
    """Folders of memory-mapped arrays under `root`, keyed by `cache_key(parts)`."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.hits = 0
        self.misses = 0

    def path(self, parts: dict[str, Any]) -> Path:
        return self.root / cache_key(parts)

    def get(self, parts: dict[str, Any]) -> Entry | None:
        """The cached entry, or None if absent (or left incomplete by an older crash)."""
        folder = self.path(parts)
        meta_file = folder / META
        if not meta_file.is_file():
            return None
        meta = read_json(meta_file)
        try:
            arrays = {
                name: np.load(folder / f"{name}.npy", mmap_mode="r")
                for name in meta.get("arrays", [])
            }
        except (OSError, ValueError):
            return None
        return Entry(arrays, meta)

    def put(
        self, parts: dict[str, Any], arrays: dict[str, np.ndarray], meta: dict[str, Any]
    ) -> Entry:
        """Store arrays (replacing any older entry) and return them memory-mapped."""
        folder = self.path(parts)
        with atomic_dir(folder) as tmp:
            for name, array in arrays.items():
                np.save(tmp / f"{name}.npy", np.ascontiguousarray(array))
            write_json(tmp / META, {**meta, "key": parts, "arrays": sorted(arrays)})
        entry = self.get(parts)
        assert entry is not None
        return entry

    def get_or_build(
        self,
        parts: dict[str, Any],
        build: Callable[[], tuple[dict[str, np.ndarray], dict[str, Any]]],
    ) -> Entry:
        """The cached entry for `parts`, building and storing it on a miss."""
        entry = self.get(parts)
        if entry is not None:
            self.hits += 1
            return entry
        self.misses += 1
        arrays, meta = build()
        return self.put(parts, arrays, meta)
