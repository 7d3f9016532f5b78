"""`toolkit hpo RECIPE ...` (search) and `toolkit hpo show STUDY` (report, best recipe)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import typer
from rich.table import Table

from toolkit.cli.common import cli_errors, console, settings_from


class _SearchByDefault(typer.core.TyperGroup):
    """`toolkit hpo RECIPE` means `toolkit hpo search RECIPE`; `show` is the other command."""

    def parse_args(self, ctx, args):
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h"):
            args = ["search", *args]
        return super().parse_args(ctx, args)


app = typer.Typer(
    cls=_SearchByDefault,
    help="Hyperparameter search over a recipe's `hpo:` space (Optuna), and its report.",
    no_args_is_help=True,
)


@app.command("search")
def search_cmd(
    ctx: typer.Context,
    recipe: Annotated[str, typer.Argument(help="Recipe name or YAML path with an `hpo:` block.")],
    trials: Annotated[
        int | None, typer.Option(help="Finished trials the study should reach (hpo.trials).")
    ] = None,
    storage: Annotated[
        str | None, typer.Option(help="Optuna storage URL (default: SQLite in the study folder).")
    ] = None,
    study: Annotated[str | None, typer.Option(help="Study name (default: the recipe's).")] = None,
    pruning: Annotated[
        bool | None, typer.Option("--pruning/--no-pruning", help="Median pruning per epoch.")
    ] = None,
    metric: Annotated[
        str | None, typer.Option(help="Logged metric to optimise: val_score, val_loss, ...")
    ] = None,
    direction: Annotated[
        Literal["minimize", "maximize"] | None, typer.Option(help="minimize or maximize.")
    ] = None,
    epochs: Annotated[int | None, typer.Option(help="train.epochs of every trial.")] = None,
    timeout: Annotated[
        str | None, typer.Option(help="Stop starting trials after this long, e.g. 2h.")
    ] = None,
    set_: Annotated[
        list[str] | None, typer.Option("--set", help="Override recipe keys for every trial.")
    ] = None,
    smoke: Annotated[
        bool, typer.Option("--smoke", help="Apply the recipe's smoke block (tiny data).")
    ] = False,
    workers: Annotated[
        int,
        typer.Option(
            min=1,
            help="Worker processes on the study, one thread each (PostgreSQL storage advised).",
        ),
    ] = 1,
    slurm: Annotated[
        bool,
        typer.Option("--slurm", help="Submit the workers as one SLURM array (a task each)."),
    ] = False,
    worker: Annotated[
        int | None, typer.Option(hidden=True, min=0, help="Run as worker I of a --workers search.")
    ] = None,
) -> None:
    """Run (or continue) a study: each trial trains into runs/<recipe>/hpo/<study>/trial-N/."""
    with cli_errors():
        from toolkit.config.durations import parse_duration
        from toolkit.config.recipes import find_recipe
        from toolkit.hpo.search import finished_trials, optuna_study, plan_search, run_search

        settings = settings_from(ctx)
        budget = None
        if timeout is not None:
            try:
                budget = parse_duration(timeout)
            except ValueError as exc:
                raise typer.BadParameter(str(exc), param_hint="--timeout") from None
        entry = find_recipe(recipe, settings.recipes_dir)
        plan, _ = plan_search(
            recipe, settings, smoke=smoke, sets=set_ or [], entry_file=str(entry.path),
            trials=trials, storage=storage, study=study, pruning=pruning, metric=metric,
            direction=direction, epochs=epochs, timeout=budget,
        )  # fmt: skip
        if worker is not None:
            _one_thread_if_asked()
        if slurm:
            _submit_workers(plan, settings, workers)
            return
        if workers > 1:
            from toolkit.hpo.workers import run_local_workers

            run_local_workers(plan, settings, console, workers)
            result = optuna_study(plan)
        else:
            result = run_search(plan, settings, console, worker=worker)
        done = finished_trials(result)
        try:
            best = result.best_trial
        except ValueError:
            console.print(f"study {plan.study}: {done} finished trials, none complete")
            return
        console.print(
            f"study [bold]{plan.study}[/]: {done} finished trials; best trial {best.number} "
            f"{plan.metric} {best.value:.4f} ({best.user_attrs.get('run', '')})\n"
            f"next: toolkit hpo show {plan.study}"
        )


def _submit_workers(plan, settings, workers: int) -> None:
    """Create the study here (tables, study.json), then submit the array of workers."""
    from toolkit.hpo.search import prepare_study
    from toolkit.hpo.slurm_workers import plan_worker_array
    from toolkit.hpo.workers import warn_sqlite
    from toolkit.slurm.resources import Resources
    from toolkit.slurm.sbatch import require_sbatch
    from toolkit.slurm.submit import submit_plan

    require_sbatch()
    warn_sqlite(plan, workers, console)
    prepare_study(plan, settings)
    array = plan_worker_array(plan, settings, workers, Path.cwd().resolve(),
                              Resources(cpus_per_task=1))  # fmt: skip
    for job_id, job in submit_plan(array, settings.runs_dir):
        console.print(
            f"submitted job {job_id}: array of {len(job.tasks)} workers on study {plan.study} "
            f"-> {job.path} (log {job.log}); `toolkit hpo show {plan.study}` when done"
        )


def _one_thread_if_asked() -> None:
    """A worker started with OMP_NUM_THREADS=N trains with N threads (torch reads it late)."""
    import os

    threads = os.environ.get("OMP_NUM_THREADS", "")
    if threads.isdigit() and int(threads) > 0:
        import torch

        torch.set_num_threads(int(threads))


@app.command("show")
def show_cmd(
    ctx: typer.Context,
    study: Annotated[str, typer.Argument(help="Study name (under the runs folder) or folder.")],
    top: Annotated[int, typer.Option(help="Best trials to list.")] = 5,
    storage: Annotated[str | None, typer.Option(help="Storage URL, if not the study's.")] = None,
    out: Annotated[
        Path | None, typer.Option(help="Where plots and best.yaml go (default: study folder).")
    ] = None,
) -> None:
    """Best trials, parameter importances, plots (PNG) and best.yaml (a recipe to run)."""
    with cli_errors():
        from toolkit.hpo.report import build_report
        from toolkit.hpo.search import find_study

        record = find_study(study, settings_from(ctx).runs_dir)
        report = build_report(record, out or Path(record["folder"]), top, storage)
        params = list(report.best[0].params)
        short = [p.split(".")[-1] for p in params]
        headers = short if len(set(short)) == len(short) else params
        table = Table(title=f"study {record['study']}: best of {len(report.study.trials)} trials")
        for column in ("rank", "trial", record["metric"], *headers):
            table.add_column(column, justify="right")
        for rank, trial in enumerate(report.best, 1):
            values = [_fmt(trial.params.get(p)) for p in params]
            table.add_row(str(rank), str(trial.number), f"{trial.value:.4f}", *values)
        console.print(table)
        console.print(f"best run: {report.best[0].user_attrs.get('run', '?')}")
        if report.importances:
            shown = ", ".join(f"{k} {v:.2f}" for k, v in report.importances.items())
            console.print(f"parameter importances: {shown}")
        for note in report.notes:
            console.print(f"[dim]{note}[/]")
        for caption, path in report.files.items():
            console.print(f"{caption}: {path}")


def _fmt(value: object) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)
