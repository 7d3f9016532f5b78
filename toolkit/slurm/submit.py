"""Submit a plan's scripts in order (a dependent job after the one before it) and record them;
if any submission fails, cancel what went in and remove the plan's run folders."""

from __future__ import annotations

from pathlib import Path

from toolkit.slurm.jobs import jobs_dir, record_job
from toolkit.slurm.plan import Plan
from toolkit.slurm.sbatch import cancel, submit
from toolkit.slurm.script import JobScript


def submit_plan(plan: Plan, runs_dir: Path) -> list[tuple[str, JobScript]]:
    """Submit every job of the plan; return (job id, script) in order."""
    submitted: list[tuple[str, JobScript]] = []
    try:
        for job in plan.jobs:
            after = submitted[-1][0] if job.after and submitted else None
            job_id = submit(job.path, after)
            submitted.append((job_id, job))
            record_job(runs_dir, job_id, job, after)
    except BaseException:
        for job_id, _ in reversed(submitted):
            cancel(job_id)
            (jobs_dir(runs_dir) / f"{job_id}.json").unlink(missing_ok=True)
        plan.discard()
        raise
    return submitted
