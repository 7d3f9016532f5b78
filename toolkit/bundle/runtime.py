"""A competition's runtime as a cached virtual environment, for verifying bundles there.

A competition that names its runtime's packages (eeg2025: torch 2.2.2 and numpy < 2) gets a
venv under <cache>/runtimes/<name>-<hash>/, made once (pip install, the only network use of
verify) and marked ready only when complete; later verifies reuse it offline.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console

from toolkit.errors import VerifyError
from toolkit.fileio import write_text

READY = ".toolkit-ready"


@dataclass(frozen=True)
class RuntimeSpec:
    """What the competition's harness runs: pip requirements (Python is this interpreter's)."""

    name: str
    requirements: tuple[str, ...]
    description: str = ""


def runtime_dir(cache_dir: Path, spec: RuntimeSpec) -> Path:
    digest = hashlib.sha256("\n".join(spec.requirements).encode()).hexdigest()[:10]
    return cache_dir / "runtimes" / f"{spec.name}-{digest}"


def _python(venv: Path) -> Path:
    return venv / ("Scripts/python.exe" if sys.platform == "win32" else "bin/python")


def ensure_runtime(cache_dir: Path, spec: RuntimeSpec, console: Console | None = None) -> Path:
    """The runtime venv's Python, creating the venv first if it is missing or incomplete."""
    venv = runtime_dir(cache_dir, spec)
    if (venv / READY).is_file():
        return _python(venv)
    console = console or Console(stderr=True)
    shutil.rmtree(venv, ignore_errors=True)  # an interrupted earlier attempt
    console.print(
        f"creating the {spec.name} runtime once in {venv}: {' '.join(spec.requirements)} "
        "(downloads from the package index; later verifies run offline)"
    )
    steps = [
        [sys.executable, "-m", "venv", str(venv)],
        [str(_python(venv)), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
         *spec.requirements],
    ]  # fmt: skip
    for step in steps:
        proc = subprocess.run(step, capture_output=True, text=True)
        if proc.returncode != 0:
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
            shutil.rmtree(venv, ignore_errors=True)
            raise VerifyError(
                f"could not create the {spec.name} runtime ({' '.join(step[:4])}...): {tail[0]}"
            )
    write_text(venv / READY, "\n".join(spec.requirements) + "\n")
    return _python(venv)
