"""The toolkit's SLURM jobs: one record per submitted script (runs/_slurm/jobs/<id>.json) and
their state now, from `squeue` (jobs the controller still holds) and `sacct` (older ones, where
accounting is enabled), beside the state of each task's run folder."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from toolkit.engine.rundir import RunDir
from toolkit.fileio import read_json, write_json
from toolkit.slurm.plan import SLURM_FOLDER
from toolkit.slurm.sbatch import TIMEOUT, client
from toolkit.slurm.script import JobScript


def jobs_dir(runs_dir: Path) -> Path:
    return runs_dir / SLURM_FOLDER / "jobs"


def record_job(runs_dir: Path, job_id: str, job: JobScript, after: str | None) -> Path:
    """Remember a submitted job: its script, tasks (label, run folder) and dependency."""
    return write_json(jobs_dir(runs_dir) / f"{job_id}.json", {
        "job": job_id,
        "name": job.name,
        "script": str(job.path),
        "array": job.is_array,
        "tasks": [{"label": t.label, "run_dir": str(t.run_dir)} for t in job.tasks],
        "after": after,
        "submitted": datetime.now().isoformat(timespec="seconds"),
    })  # fmt: skip


def recorded_jobs(runs_dir: Path) -> list[dict[str, Any]]:
    """Every recorded job, newest first."""
    folder = jobs_dir(runs_dir)
    found = [read_json(p) for p in folder.glob("*.json")] if folder.is_dir() else []
    return sorted(found, key=lambda r: int(r["job"]), reverse=True)


@dataclass(frozen=True)
class JobState:
    state: str
    elapsed: str = ""
    reason: str = ""


def _query(command: list[str]) -> list[list[str]]:
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT)
    except (OSError, subprocess.TimeoutExpired):
        return []
    if done.returncode != 0:
        return []  # unknown ids (purged from the controller), accounting disabled
    return [line.split("|") for line in done.stdout.splitlines() if line.strip()]


def slurm_states(job_ids: list[str]) -> dict[str, JobState]:
    """State by job id (`123`, array tasks `123_0`): sacct first, squeue over it (fresher)."""
    states: dict[str, JobState] = {}
    if not job_ids:
        return states
    ids = ",".join(job_ids)
    sacct = client("sacct")
    if sacct is not None:
        for row in _query([sacct, "-n", "-P", "-X", "-j", ids, "-o", "JobID,State,Elapsed"]):
            if len(row) >= 3:
                states[row[0]] = JobState(row[1].split()[0], row[2])
    squeue = client("squeue")
    if squeue is not None:
        # one id at a time: a single id the controller no longer holds fails the whole query
        for job_id in job_ids:
            command = [squeue, "-h", "-r", "-t", "all", "-j", job_id, "-o", "%i|%T|%M|%r"]
            for row in _query(command):
                if len(row) >= 4:
                    states[row[0]] = JobState(row[1], row[2], "" if row[3] == "None" else row[3])
    return states


@dataclass(frozen=True)
class Row:
    """One line of `toolkit slurm status`: a job or one array task."""

    job: str
    what: str
    slurm: JobState
    run: str
    run_dir: str


def _run_state(run_dir: str) -> str:
    run = RunDir(Path(run_dir))
    status = run.status()
    state = status.get("state", "not started")
    where = [f"{k} {status[k]}" for k in ("epoch", "step") if status.get(k) is not None]
    if status.get("signal"):
        where.insert(0, f"by {status['signal']}")
    return state + (f" ({', '.join(where)})" if where else "")


def status_rows(records: list[dict[str, Any]]) -> list[Row]:
    """Rows for the records, with SLURM's state of each job or array task."""
    states = slurm_states([r["job"] for r in records])
    gone = JobState("ended", reason="no longer in squeue; no accounting to ask")
    rows = []
    for record in records:
        for i, task in enumerate(record["tasks"]):
            job = f"{record['job']}_{i}" if record["array"] else record["job"]
            state = states.get(job) or _pending_array(states, record["job"]) or gone
            rows.append(Row(job, task["label"], state, _run_state(task["run_dir"]),
                            task["run_dir"]))  # fmt: skip
    return rows


def _pending_array(states: dict[str, JobState], job_id: str) -> JobState | None:
    """A pending array not split into tasks yet shows in squeue as `123_[0-3]`."""
    for key, state in states.items():
        if key.startswith(f"{job_id}_["):
            return state
    return None
