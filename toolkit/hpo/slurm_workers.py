"""`toolkit hpo search ... --slurm --workers K`: one SLURM array job of K tasks, each task one
worker (`toolkit hpo search ... --worker I`) on the same study; the script lives in the study
folder (workers.sbatch), the tasks' logs beside it (slurm-<job>_<task>.log)."""

from __future__ import annotations

from pathlib import Path

from toolkit.config.settings import Settings
from toolkit.fileio import write_text
from toolkit.hpo.search import SearchPlan
from toolkit.hpo.storage import shown_url
from toolkit.hpo.workers import host_toolkit_words, worker_args
from toolkit.slurm.plan import Plan
from toolkit.slurm.resources import Resources
from toolkit.slurm.script import JobScript, Task, render


def plan_worker_array(
    plan: SearchPlan, settings: Settings, workers: int, workdir: Path, resources: Resources
) -> Plan:
    """Write the array script of `workers` workers (nothing is submitted)."""
    tasks = tuple(
        Task(f"hpo worker {i}", plan.folder, tuple(worker_args(plan, i))) for i in range(workers)
    )
    job = JobScript(
        name=f"toolkit:hpo:{plan.study}",
        title=f"study {plan.study} ({shown_url(plan.storage)}): one Optuna worker per task.",
        path=plan.folder / "workers.sbatch", workdir=workdir, resources=resources,
        tasks=tasks, toolkit=tuple(host_toolkit_words(settings)), array_of="hpo worker",
    )  # fmt: skip
    plan.folder.mkdir(parents=True, exist_ok=True)
    write_text(job.path, render(job))
    return Plan([job])
