"""Verify a bundle: integrity (flat zip, sha256 of every file), then the competition's harness
call in a sandbox (fresh process, offline, toolkit unimportable), compared with references."""

from __future__ import annotations

import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from toolkit.bundle.archive import extract_zip, top_level_folder
from toolkit.bundle.manifest import MANIFEST, sha256
from toolkit.bundle.sandbox import Sandbox, isolation, sweep_stale
from toolkit.competitions import get_competition
from toolkit.competitions.protocol import Check
from toolkit.errors import ToolkitError, VerifyError
from toolkit.fileio import read_json, write_json

UPLOAD = "submission.zip"
REFERENCE = "reference"
DEFAULT_TIMEOUT = 600.0  # seconds per sandboxed call (`verify --timeout`)
VERIFY_PREFIX = "toolkit-verify-"


@dataclass
class VerifyReport:
    """Every check `verify` made; `ok` only if all passed."""

    bundle: Path
    checks: list[Check]

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(c.passed for c in self.checks)

    @property
    def first_failure(self) -> Check | None:
        return next((c for c in self.checks if not c.passed), None)


def _locate(bundle: Path) -> tuple[Path, Path]:
    """(upload zip, reference folder) for a bundle folder or its zip."""
    bundle = bundle.expanduser().resolve()
    if bundle.is_dir():
        upload = bundle / UPLOAD
        if not upload.is_file():
            raise VerifyError(f"{bundle}: no {UPLOAD} (is this a bundle folder?)")
        return upload, bundle / REFERENCE
    if bundle.is_file():
        return bundle, bundle.parent / REFERENCE
    raise VerifyError(f"{bundle}: no such bundle folder or zip")


def integrity_checks(content: Path, names: list[str]) -> tuple[list[Check], dict | None]:
    """Flatness and hashes of an unpacked upload against its manifest."""
    checks: list[Check] = []
    top = top_level_folder(names)
    checks.append(
        Check(
            "flat zip",
            top is None,
            "files at the top level"
            if top is None
            else f"everything is inside folder {top}/: "
            "the harness needs submission.py at the top of the zip",
        )
    )
    manifest_path = content / MANIFEST
    if top is not None or not manifest_path.is_file():
        if top is None:
            checks.append(Check("manifest", False, f"no {MANIFEST} in the zip"))
        return checks, None
    try:
        manifest = read_json(manifest_path)
    except ToolkitError:
        checks.append(Check("manifest", False, f"{MANIFEST} in the zip is not valid JSON"))
        return checks, None
    listed: dict[str, str] = manifest.get("files", {})
    present = {p.relative_to(content).as_posix() for p in content.rglob("*") if p.is_file()}
    present.discard(MANIFEST)
    bad = [n for n, digest in listed.items() if n in present and sha256(content / n) != digest]
    missing = sorted(set(listed) - present)
    extra = sorted(present - set(listed))
    problems = (
        [f"{n} changed (sha256 mismatch)" for n in bad]
        + [f"{n} missing" for n in missing]
        + [f"{n} not in the manifest" for n in extra]
    )
    checks.append(
        Check("file hashes", not problems, "; ".join(problems) or f"{len(listed)} files match")
    )
    return checks, manifest


def verify_bundle(
    bundle: Path,
    device: str = "cpu",
    python: Path | None = None,
    runtime: str = "",
    timeout: float = DEFAULT_TIMEOUT,
    require_isolation: bool = False,
) -> VerifyReport:
    """Run every check on a bundle folder (or its zip) and report; raises only if unreadable.

    `python` runs the harness call in another interpreter (a competition runtime's venv,
    named `runtime` in the report); by default this one. Each sandboxed call may take
    `timeout` seconds. Without an OS-level network block on this machine the report says so,
    and `require_isolation` makes that a failure. The result is recorded in the manifest
    beside the zip (`verification`)."""
    upload, reference = _locate(bundle)
    sweep_stale(VERIFY_PREFIX)
    with tempfile.TemporaryDirectory(prefix=f"{VERIFY_PREFIX}{os.getpid()}-") as tmp:
        content = Path(tmp)
        names = extract_zip(upload, content)
        checks, manifest = integrity_checks(content, names)
        if manifest is None or not all(c.passed for c in checks):
            return VerifyReport(upload, checks)
        competition = get_competition(manifest.get("competition", ""), where=str(upload))
        sandbox = Sandbox(
            blocked=("toolkit", *competition.unavailable_modules),
            python=str(python or sys.executable),
            timeout=timeout,
        )
        isolated = bool(isolation()[1])
        checks.append(
            Check("network isolation", isolated or not require_isolation, sandbox.isolation
                  + ("" if isolated else " (--require-isolation refuses this)"))
        )  # fmt: skip
        if not checks[-1].passed:
            return VerifyReport(upload, checks)
        if python is not None:
            checks.append(Check("runtime", True, f"{runtime or 'custom'}: {python}"))
        harness = competition.verify_bundle(content, reference, sandbox, device)
        if sandbox.attempts:
            shown = "; ".join(dict.fromkeys(sandbox.attempts))
            harness.insert(0, Check("offline", False, f"the bundle tried the network: {shown}"))
        else:
            harness.insert(0, Check("offline", True, "no network access attempted"))
        checks += harness
    report = VerifyReport(upload, checks)
    _record(upload, report, sandbox.isolation)
    return report


def _record(upload: Path, report: VerifyReport, isolation_used: str) -> None:
    """Write the outcome into the manifest beside the zip (skipped where that is read-only,
    as in a read-only container mount)."""
    outer = upload.parent / MANIFEST
    if not outer.is_file():
        return
    try:
        manifest = read_json(outer)
        manifest["verification"] = {
            "ok": report.ok,
            "isolation": isolation_used,
            "checks": {c.name: c.passed for c in report.checks},
        }
        write_json(outer, manifest)
    except (OSError, ToolkitError):
        return
