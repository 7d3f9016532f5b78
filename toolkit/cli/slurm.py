"""`toolkit slurm submit|status|member`: recipes as SLURM jobs and arrays, and their state."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from toolkit.cli.common import cli_errors, command_line, console, settings_from

app = typer.Typer(
    help="Run recipes as SLURM jobs (one per recipe, arrays for ensembles and recipe lists).",
    no_args_is_help=True,
)

SetOpt = Annotated[
    list[str] | None,
    typer.Option("--set", help="Override any recipe key: a.b=value (repeatable)."),
]
SmokeOpt = Annotated[bool, typer.Option("--smoke", help="Apply the recipes' smoke blocks.")]


@app.command("submit")
def submit_cmd(
    ctx: typer.Context,
    recipes: Annotated[
        list[str],
        typer.Argument(
            help="Recipe name(s) or YAML path(s); an ensemble recipe becomes an array of its "
            "members plus a bundling job, several recipes one array.",
            show_default=False,
        ),
    ],
    smoke: SmokeOpt = False,
    set_: SetOpt = None,
    nodes: Annotated[
        int | None, typer.Option(min=1, help="Machines (default: train.num_nodes).")
    ] = None,
    gpus_per_node: Annotated[
        int | None,
        typer.Option(min=0, help="GPUs per machine, one task each (default: none; CPU tasks)."),
    ] = None,
    cpus_per_task: Annotated[int | None, typer.Option(min=1, help="CPU cores per task.")] = None,
    mem: Annotated[str | None, typer.Option(help="Memory per machine: 16G, 500M.")] = None,
    time: Annotated[
        str | None, typer.Option("--time", help="Time limit HH:MM:SS (or D-HH:MM:SS).")
    ] = None,
    partition: Annotated[str | None, typer.Option(help="Partition (queue).")] = None,
    account: Annotated[str | None, typer.Option(help="Account to charge.")] = None,
    container: Annotated[
        Path | None,
        typer.Option(help="Run inside this Apptainer image (IMAGE.sif).", show_default=False),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Write the scripts and print them; submit nothing.")
    ] = False,
) -> None:
    """Write each job's batch script in its run folder, submit it with sbatch, print job ids."""
    with cli_errors():
        from toolkit.slurm.plan import Request, plan_submission
        from toolkit.slurm.resources import Resources
        from toolkit.slurm.sbatch import require_sbatch

        request = Request(
            smoke=smoke, sets=tuple(set_ or []), nodes=nodes, gpus_per_node=gpus_per_node,
            cpus_per_task=cpus_per_task, mem=mem, time=time, partition=partition,
            account=account, container=container,
        )  # fmt: skip
        Resources(mem=mem, time=time)  # a bad --mem/--time fails before anything is written
        if not dry_run:
            require_sbatch()  # before any folder is made
        settings = settings_from(ctx)
        plan = plan_submission(recipes, settings, request, Path.cwd().resolve())
        for note in plan.notes:
            console.print(note)
        if dry_run:
            for job in plan.jobs:
                console.print(f"wrote {job.path}" + (f" (after {job.after})" if job.after else ""))
            console.print("dry run: nothing submitted; submit with `sbatch SCRIPT`")
            return
        from toolkit.slurm.submit import submit_plan

        for job_id, job in submit_plan(plan, settings.runs_dir):
            what = f"array of {len(job.tasks)}" if job.is_array else job.tasks[0].label
            console.print(f"submitted job {job_id}: {what} -> {job.path} (log {job.log})")


@app.command("status")
def status_cmd(
    ctx: typer.Context,
    job: Annotated[
        str | None, typer.Argument(help="One job id (default: every job the toolkit submitted).")
    ] = None,
) -> None:
    """The state of the toolkit's jobs (squeue, sacct) beside their run folders' state."""
    with cli_errors():
        from toolkit.errors import ToolkitError
        from toolkit.slurm.jobs import recorded_jobs, status_rows

        settings = settings_from(ctx)
        records = recorded_jobs(settings.runs_dir)
        if job is not None:
            records = [r for r in records if r["job"] == job.split("_")[0]]
            if not records:
                raise ToolkitError(
                    f"job {job}: not submitted by `toolkit slurm submit` under "
                    f"{settings.runs_dir} (squeue -j {job} shows any job)"
                )
        if not records:
            console.print(f"no SLURM jobs submitted under {settings.runs_dir}")
            return
        table = Table("job", "what", "SLURM", "elapsed", "run", "run folder", box=None)
        for row in status_rows(records):
            if job is not None and "_" in job and row.job != job:
                continue
            slurm = row.slurm.state + (f" ({row.slurm.reason})" if row.slurm.reason else "")
            table.add_row(row.job, row.what, slurm, row.slurm.elapsed, row.run, row.run_dir)
        console.print(table)


@app.command("member")
def member_cmd(
    ctx: typer.Context,
    recipe: Annotated[str, typer.Argument(help="An ensemble recipe (name or YAML path).")],
    member: Annotated[str, typer.Argument(help="The member's name (ensemble.members[].name).")],
    run_dir: Annotated[
        Path, typer.Option("--run-dir", help="Train (or resume) the member in this folder.")
    ],
    smoke: SmokeOpt = False,
    set_: SetOpt = None,
) -> None:
    """Train one ensemble member in a run folder: what each task of a member array runs."""
    with cli_errors():
        from toolkit.engine.session import is_rank_zero
        from toolkit.slurm.member import train_member

        sets = set_ or []
        command = command_line("slurm", "member", recipe, member, sets=sets,
                               flags={"smoke": smoke})  # fmt: skip
        run = train_member(recipe, member, run_dir, settings_from(ctx), smoke=smoke, sets=sets,
                           command=command, console=console)  # fmt: skip
        if is_rank_zero():
            metrics = run.metrics()
            metric = metrics.get("metric", "score")
            console.print(f"member {member}: {run.path}: val {metric} "
                          f"{metrics.get(f'val_{metric}', float('nan')):.4f}")  # fmt: skip
