"""Talk to SLURM's client tools: submit (`sbatch`), cancel (`scancel`); their errors as one line."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from toolkit.errors import ToolkitError

TIMEOUT = 120.0  # seconds: sbatch retries an unreachable controller for a while, then gives up


def client(name: str) -> str | None:
    """The path of a SLURM client tool, or None."""
    return shutil.which(name)


def require_sbatch() -> str:
    found = client("sbatch")
    if found is None:
        raise ToolkitError(
            "sbatch not found on PATH: run this on a SLURM login node (Debian: apt-get install "
            "slurm-client), or add --dry-run to only write the script"
        )
    return found


def one_line(text: str) -> str:
    """A client's stderr as one line, without the repeated `sbatch: error:` prefixes."""
    lines = []
    for line in text.splitlines():
        line = line.strip()
        for prefix in ("sbatch: error:", "sbatch:", "scancel: error:"):
            line = line.removeprefix(prefix).strip()
        if line and line not in lines:
            lines.append(line)
    return "; ".join(lines) or "no message"


def submit(script: Path, after: str | None = None) -> str:
    """`sbatch` a script (after job `after` ended well, if given); return the job id."""
    command = [require_sbatch(), "--parsable"]
    if after is not None:
        command.append(f"--dependency=afterok:{after}")
    command.append(str(script))
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        raise ToolkitError(f"sbatch {script}: no answer from SLURM in {TIMEOUT:.0f} s") from None
    if done.returncode != 0:
        raise ToolkitError(f"sbatch {script} refused: {one_line(done.stderr)}")
    job_id = done.stdout.strip().split(";")[0]  # --parsable: "id" or "id;cluster"
    if not job_id.isdigit():
        raise ToolkitError(f"sbatch {script}: unexpected answer {done.stdout.strip()!r}")
    return job_id


def cancel(job_id: str) -> None:
    """`scancel` a job (best effort: used to undo half a submission)."""
    found = client("scancel")
    if found is not None:
        subprocess.run([found, job_id], capture_output=True, text=True, timeout=TIMEOUT)
