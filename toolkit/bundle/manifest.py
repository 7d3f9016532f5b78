"""manifest.json: what a bundle holds and how it was made (hashes, versions, recipe, scores,
the runs and the data they read).

A bundle has two copies. The one beside the zip is the full record: when it was made and from
which run folders (`created`, `runs[].run`), for `toolkit reproduce`, `report` and the ledger.
The one inside the zip is what the competition receives: `upload_manifest` leaves out every
time (wall clock or duration) and every local path, so the same recipe, seed, code and data
give the same bytes.
"""

from __future__ import annotations

import hashlib
import re
import subprocess
import tempfile
from collections.abc import Sequence
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING, Any

import toolkit
from toolkit.bundle.archive import extract_zip
from toolkit.data.fingerprint import KEY as FINGERPRINT
from toolkit.errors import ToolkitError
from toolkit.fileio import read_json

if TYPE_CHECKING:
    from toolkit.engine.rundir import RunDir

MANIFEST = "manifest.json"
PACKAGES = ("torch", "lightning", "braindecode", "mne", "numpy", "onnx", "onnxruntime")
# Keys whose values are times, durations or run-local paths: kept out of the upload's manifest.
VOLATILE_KEYS = frozenset(
    {"created", "updated", "train_seconds", "seconds", "samples_per_s", "run",
     "best_checkpoint", "eval_predictions", "root"}
)  # fmt: skip
_ABSOLUTE = re.compile(r"^(/|[A-Za-z]:[\\/]|\\\\)[^\n]*$")


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


def run_record(run: RunDir) -> dict[str, Any]:
    """How one bundled run was made: its resolved recipe, seed(s), run folder and data."""
    metrics, stats = run.metrics(), run.stats()
    seeds = [m.get("metrics", {}).get("seed") for m in _members(run)]
    metric = metrics.get("metric")
    return {
        "recipe": run.recipe().model_dump(mode="json"),
        "seed": metrics.get("seed", seeds[0] if seeds else None),
        **({"member_seeds": seeds} if seeds else {}),
        "run": str(run.path),
        "metric": metric,
        "val_score": metrics.get(f"val_{metric}"),
        "eval_score": metrics.get("eval_score"),
        "data": stats.get(FINGERPRINT),
    }


def _members(run: RunDir) -> list[dict[str, Any]]:
    return read_json(run.members_file) if run.members_file.is_file() else []


def build_manifest(folder: Path, *, runs: Sequence[RunDir] = (), **fields: Any) -> dict[str, Any]:
    """The full manifest for every file in `folder` (sha256 each): versions, commit, the
    given fields, and one record per run (recipe, seed, data fingerprint)."""
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
        "runs": [run_record(run) for run in runs],
        "files": files,
    }


def _portable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _portable(v) for k, v in value.items() if k not in VOLATILE_KEYS}
    if isinstance(value, list):
        return [_portable(v) for v in value]
    if isinstance(value, str) and _ABSOLUTE.match(value):
        return ".../" + re.split(r"[\\/]", value.rstrip("\\/"))[-1]
    return value


def upload_manifest(manifest: dict[str, Any]) -> dict[str, Any]:
    """The manifest as the competition receives it: no times, durations or run folders, and
    any other absolute path cut to `.../<its last part>`."""
    return _portable(manifest)


def bundle_folder(bundle: Path) -> Path:
    """The bundle folder for a folder or its submission.zip."""
    bundle = Path(bundle).expanduser().resolve()
    if bundle.is_file():
        return bundle.parent
    if not bundle.is_dir():
        raise ToolkitError(f"{bundle}: no such bundle folder or zip")
    return bundle


def load_manifest(bundle: Path, upload_name: str = "submission.zip") -> dict[str, Any]:
    """The full manifest beside the zip, or else the one inside it; an error naming the
    bundle when there is neither."""
    folder = bundle_folder(bundle)
    beside = folder / MANIFEST
    if beside.is_file():
        return read_json(beside)
    upload = folder / upload_name
    if upload.is_file():
        with tempfile.TemporaryDirectory(prefix="toolkit-manifest-") as tmp:
            names = extract_zip(upload, Path(tmp))
            if MANIFEST in names:
                return read_json(Path(tmp) / MANIFEST)
    raise ToolkitError(
        f"{folder}: no {MANIFEST} beside or inside {upload_name} (not a toolkit bundle?)"
    )
