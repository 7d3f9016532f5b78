"""Verify a bundle: integrity (flat zip, sha256 of every file), then the competition's harness
call in a sandbox (fresh process, offline, toolkit unimportable), compared with references."""

from __future__ import annotations

import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from toolkit.bundle.archive import extract_zip, top_level_folder
from toolkit.bundle.manifest import MANIFEST, sha256
from toolkit.bundle.sandbox import Sandbox
from toolkit.competitions import get_competition
from toolkit.competitions.protocol import Check
from toolkit.errors import VerifyError
from toolkit.fileio import read_json

UPLOAD = "submission.zip"
REFERENCE = "reference"


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
    manifest = read_json(manifest_path)
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
    bundle: Path, device: str = "cpu", python: Path | None = None, runtime: str = ""
) -> VerifyReport:
    """Run every check on a bundle folder (or its zip) and report; raises only if unreadable.

    `python` runs the harness call in another interpreter (a competition runtime's venv,
    named `runtime` in the report); by default this one."""
    upload, reference = _locate(bundle)
    with tempfile.TemporaryDirectory(prefix="toolkit-verify-") as tmp:
        content = Path(tmp)
        names = extract_zip(upload, content)
        checks, manifest = integrity_checks(content, names)
        if manifest is None or not all(c.passed for c in checks):
            return VerifyReport(upload, checks)
        competition = get_competition(manifest.get("competition", ""), where=str(upload))
        sandbox = Sandbox(
            blocked=("toolkit", *competition.unavailable_modules),
            python=str(python or sys.executable),
        )
        if python is not None:
            checks.append(Check("runtime", True, f"{runtime or 'custom'}: {python}"))
        checks += competition.verify_bundle(content, reference, sandbox, device)
    return VerifyReport(upload, checks)
