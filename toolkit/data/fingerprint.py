"""Data fingerprints: which files a run read, per source, with size and checksum (S3: ETag),
plus the preprocessing parameters and, for synthetic data, the generator's version and seed.

A datamodule records what it reads into a `DataFingerprint` and puts `as_dict()` into its
`stats` (as `data_fingerprint`); bundles copy it into their manifest and `toolkit reproduce`
checks it before retraining. Local checksums are cached by (path, size, mtime), so a second
run of the same data hashes nothing. Synthetic data (made under the cache folder) is identified
by its generator's parameters, not by checksums (its files may embed the time they were made).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from toolkit.errors import DataError
from toolkit.fileio import write_text

if TYPE_CHECKING:
    from toolkit.config.settings import Settings
    from toolkit.data.remote import Source

KEY = "data_fingerprint"  # where datamodules put the fingerprint in their stats
SYNTHETIC = "synthetic"


def file_sha256(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def cached_sha256(path: Path, cache_dir: Path) -> str:
    """sha256 of a local file, remembered under `cache_dir/checksums/` by path, size and mtime."""
    path = Path(path).resolve()
    st = path.stat()
    key = hashlib.sha256(f"{path}\0{st.st_size}\0{st.st_mtime_ns}".encode()).hexdigest()
    memo = Path(cache_dir) / "checksums" / key[:2] / key
    if memo.is_file():
        return memo.read_text().strip()
    digest = file_sha256(path)
    write_text(memo, digest + "\n")
    return digest


class DataFingerprint:
    """Collects the files a datamodule reads, grouped by source."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self._sources: dict[str, dict[str, Any]] = {}

    def _label(self, root: Path) -> tuple[str, str]:
        """(kind, label) of a local root: relative to the data folder when inside it;
        synthetic when made under the cache folder; otherwise its absolute path."""
        root = Path(root).resolve()
        for base, kind, prefix in (
            (self.settings.cache_dir / SYNTHETIC, SYNTHETIC, f"{SYNTHETIC}/"),
            (self.settings.data_dir, "local", ""),
        ):
            try:
                return kind, prefix + root.relative_to(Path(base).resolve()).as_posix()
            except ValueError:
                continue
        return "local", str(root)

    def _group(self, kind: str, label: str) -> dict[str, Any]:
        return self._sources.setdefault(label, {"source": label, "kind": kind, "files": {}})

    def read(self, source: Source, *rels: str) -> None:
        """Record files of a Source (local folder or s3://) by their names inside it; names
        the source does not have are skipped (e.g. an absent events sidecar)."""
        root = getattr(source, "root", None)
        if root is not None:
            self.read_local(Path(root), *[Path(root) / rel for rel in rels])
            return
        group = self._group("s3", source.url)
        for rel in rels:
            if rel in group["files"]:
                continue
            try:
                etag, size, _ = source.fingerprint(rel).rsplit("-", 2)
            except DataError:
                continue
            group["files"][rel] = {"file": rel, "size": int(size), "etag": etag}

    def read_local(self, root: Path, *paths: Path) -> None:
        """Record local files under `root` (missing ones are skipped)."""
        kind, label = self._label(root)
        group = self._group(kind, label)
        for path in paths:
            path = Path(path)
            rel = path.resolve().relative_to(Path(root).resolve()).as_posix()
            if rel in group["files"] or not path.is_file():
                continue
            entry: dict[str, Any] = {"file": rel, "size": path.stat().st_size}
            if kind != SYNTHETIC:
                entry["sha256"] = cached_sha256(path, self.settings.cache_dir)
            group["files"][rel] = entry

    def as_dict(
        self, *, preprocessing: dict[str, Any], generator: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """JSON-ready: sources (files sorted by name), preprocessing, generator (or None)."""
        sources = [
            {**group, "files": [group["files"][k] for k in sorted(group["files"])]}
            for _, group in sorted(self._sources.items())
        ]
        return {"sources": sources, "preprocessing": preprocessing, "generator": generator}


def unreachable(fingerprint: dict[str, Any], settings: Settings) -> list[str]:
    """What a recorded fingerprint names that is no longer here: a missing local file, or one
    whose size or checksum changed. Synthetic data is remade on demand; s3:// sources are
    checked when training lists them."""
    problems: list[str] = []
    for group in fingerprint.get("sources", []):
        if group.get("kind") != "local":
            continue
        label = Path(group["source"])
        root = label if label.is_absolute() else settings.data_dir / label
        for entry in group.get("files", []):
            path = root / entry["file"]
            if not path.is_file():
                problems.append(f"{path} (of data source {group['source']}) is missing")
            elif path.stat().st_size != entry.get("size"):
                size = path.stat().st_size
                problems.append(f"{path} changed size ({entry.get('size')} -> {size} bytes)")
            elif "sha256" in entry and cached_sha256(path, settings.cache_dir) != entry["sha256"]:
                problems.append(f"{path} changed content (sha256 differs from the manifest)")
    return problems
