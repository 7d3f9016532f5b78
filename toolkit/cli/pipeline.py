"""`toolkit run|train|export|bundle|verify`: the pipeline, whole or one step at a time."""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from toolkit.cli.common import cli_errors, command_line, console, settings_from
from toolkit.config.recipes import resolve_recipe
from toolkit.config.settings import Settings
from toolkit.engine.interrupts import signals_raise
from toolkit.engine.rundir import RunDir, latest_resumable
from toolkit.errors import ToolkitError, TrainingError, VerifyError

RecipeArg = Annotated[str, typer.Argument(help="Recipe name (eeg2025/c1-baseline) or YAML path.")]
SetOpt = Annotated[
    list[str] | None,
    typer.Option("--set", help="Override any recipe key: a.b=value (repeatable, applied last)."),
]
SmokeOpt = Annotated[
    bool, typer.Option("--smoke", help="Apply the recipe's smoke block: tiny synthetic data.")
]
TimeoutOpt = Annotated[
    float | None,
    typer.Option(
        "--timeout", min=1, help="Seconds each sandboxed call of the bundle may take (600)."
    ),
]
ResumeOpt = Annotated[
    bool, typer.Option("--resume", help="Continue the newest interrupted run of this recipe.")
]


DebugOpt = Annotated[
    bool,
    typer.Option(
        "--debug",
        help="One batch of each loop through the whole pipeline, in a throw-away folder "
        "(removed when it passes).",
    ),
]
RunDirOpt = Annotated[
    Path | None,
    typer.Option(
        "--run-dir",
        help="Train in this folder: resume the interrupted run it holds, go on from a "
        "finished one, or start there (batch jobs that a requeue restarts).",
        show_default=False,
    ),
]
AutoBatchOpt = Annotated[
    int | None,
    typer.Option(
        "--auto-batch-size",
        min=1,
        help="First find the largest batch size that fits (Lightning's finder, power mode), "
        "up to this cap.",
        show_default=False,
    ),
]


@contextlib.contextmanager
def _debug_folder(ctx: typer.Context, debug: bool) -> Iterator[None]:
    """With --debug: runs and bundles go to a temporary folder, removed if all goes well."""
    if not debug:
        yield
        return
    root = Path(tempfile.mkdtemp(prefix="toolkit-debug-"))
    options = ctx.find_root().obj
    options.update(runs_dir=root / "runs", submissions_dir=root / "submissions")
    started = time.monotonic()
    yield
    shutil.rmtree(root, ignore_errors=True)
    console.print(f"[green]debug run passed[/] in {time.monotonic() - started:.0f}s "
                  f"(throw-away folder {root} removed)")  # fmt: skip


def _train(
    ctx: typer.Context,
    name: str,
    sets: list[str],
    smoke: bool,
    resume: bool,
    debug: bool = False,
    auto_batch_size: int | None = None,
    run_dir: Path | None = None,
) -> RunDir:
    from toolkit.engine.train import train

    settings = settings_from(ctx)
    recipe = resolve_recipe(name, smoke=smoke, overrides=sets, recipes_dir=settings.recipes_dir)
    command = command_line("run", recipe.name, sets=sets, flags={"smoke": smoke})
    if recipe.ensemble is not None:
        from toolkit.engine.ensemble import train_ensemble

        target = RunDir(run_dir.expanduser().resolve()) if run_dir is not None else None
        run = train_ensemble(recipe, settings, command=command, console=console,
                             resume=resume or target is not None, run=target)  # fmt: skip
        members = len(run.metrics()["members"])
        _report(run, f"ensemble [bold]{run.path}[/] of {members} members", "validated_on")
        return run
    previous = None
    target = None
    changes: dict[str, object] = {}
    if run_dir is not None:
        # A fixed folder (e.g. a SLURM job's, which a requeue restarts): resume what it holds,
        # go on from a finished run, or start in it.
        target = RunDir(run_dir.expanduser().resolve())
        if target.status().get("state") == "trained" and target.metrics_file.is_file():
            console.print(f"{target.path}: already trained")
            return target
        if target.recipe_file.is_file() and target.resumable():
            previous = target
            console.print(f"resuming [bold]{previous.path}[/]")
    elif resume:
        previous = latest_resumable(settings.runs_dir, recipe.name, smoke)
        if previous is None:
            raise TrainingError(
                f"nothing to resume: no interrupted run of {recipe.name} under {settings.runs_dir}"
            )
        from toolkit.config.recipes import parse_override
        from toolkit.engine.train import RESUMABLE_TRAIN_KEYS

        allowed = [f"train.{key}" for key in RESUMABLE_TRAIN_KEYS]
        for item in sets:
            key, value = parse_override(item)
            if key not in allowed:
                raise TrainingError(
                    f"--resume continues with the run's saved recipe; drop --set {item} (only "
                    f"{', '.join(allowed)} may change on resume)"
                )
            changes[key.removeprefix("train.")] = value
        console.print(f"resuming [bold]{previous.path}[/]")
    run = train(recipe, settings, command=command, resume=previous, console=console,
                resume_changes=changes, debug=debug, auto_batch_size=auto_batch_size,
                run=None if previous is not None else target)  # fmt: skip
    from toolkit.engine.session import is_rank_zero

    if not is_rank_zero():
        raise typer.Exit(0)  # a DDP rank: rank 0 reports, exports and bundles
    epochs = run.metrics()["epochs_completed"]
    _report(run, f"trained [bold]{run.path}[/] in {epochs} epochs", "stopped_by")
    return run


def _report(run: RunDir, what: str, why_key: str) -> None:
    """One line: what was trained, its validation score, and why it ended / how it was scored."""
    metrics = run.metrics()
    metric = metrics["metric"]
    console.print(f"{what}: val {metric} {metrics[f'val_{metric}']:.4f} ({metrics[why_key]})")


def _export(run: RunDir) -> None:
    from toolkit.export.run import export_parity, export_run

    export_run(run)
    for fmt, result in export_parity(run).items():
        worst = max(result["max_abs_error"].values())
        console.print(f"exported {fmt}: {run.export_dir / result['file']} (max error {worst:.1e})")


def _bundle(
    runs: list[RunDir], settings: Settings, name: str | None, allow_unfinished: bool = False
) -> Path:
    from toolkit.bundle.build import bundle_runs

    path = bundle_runs(runs, settings, name, allow_unfinished)
    console.print(f"bundle [bold]{path}[/]")
    return path


def _runtime_python(ctx: typer.Context, runtime: str | None) -> Path | None:
    """The Python of a competition's runtime venv (created once), or None for this one."""
    if not runtime:
        return None
    from toolkit.bundle.runtime import ensure_runtime
    from toolkit.competitions import get_competition

    spec = getattr(get_competition(runtime, where="--runtime"), "runtime", None)
    if spec is None:
        raise ToolkitError(f"--runtime {runtime}: that competition names no runtime packages")
    return ensure_runtime(settings_from(ctx).cache_dir, spec, console)


def _verify(
    bundle: Path,
    device: str,
    python: Path | None = None,
    runtime: str = "",
    timeout: float | None = None,
    require_isolation: bool = False,
) -> bool:
    from toolkit.bundle.verify import DEFAULT_TIMEOUT, verify_bundle

    with signals_raise():  # a SIGTERM still removes the temporary folders and the sandbox
        report = verify_bundle(
            bundle, device=device, python=python, runtime=runtime,
            timeout=timeout or DEFAULT_TIMEOUT, require_isolation=require_isolation,
        )  # fmt: skip
    table = Table(show_header=False, box=None)
    for check in report.checks:
        mark = "[green]✓[/]" if check.passed else "[red]✗[/]"
        table.add_row(mark, check.name, check.detail)
    console.print(table)
    if not report.ok:
        failure = report.first_failure
        raise VerifyError(f"{report.bundle}: verify failed: {failure.name}: {failure.detail}")
    console.print(f"[green]verified[/] {report.bundle}")
    return True


def _run_dir(path: Path) -> RunDir:
    run = RunDir(path.expanduser().resolve())
    if not run.recipe_file.is_file():
        raise ToolkitError(f"{path}: not a run folder (no recipe.yaml)")
    return run


def _run_or_recipe(ctx: typer.Context, target: str, smoke: bool) -> RunDir:
    """An exported run: a run folder as given, or a recipe's newest exported run (with
    `smoke`, its newest smoke run), trained and exported first when there is none."""
    from toolkit.engine.rundir import latest_exported

    path = Path(target).expanduser()
    if path.is_dir():
        run = _run_dir(path)
        if not run.exported:
            _export(run)
        return run
    settings = settings_from(ctx)
    name = resolve_recipe(target, smoke=smoke, recipes_dir=settings.recipes_dir).name
    run = latest_exported(settings.runs_dir, name, smoke)
    if run is not None:
        console.print(f"{name}: using {run.path}")
        return run
    console.print(f"{name}: no exported run yet, training one")
    run = _train(ctx, name, [], smoke, resume=False)
    _export(run)
    return run


def _with_partners(ctx: typer.Context, run: RunDir, smoke: bool) -> list[RunDir]:
    """The run plus the newest exported runs of its recipe's `bundle.partners`."""
    return [run] + [_run_or_recipe(ctx, p, smoke) for p in run.recipe().bundle.partners]


def run_cmd(
    ctx: typer.Context,
    names: Annotated[
        list[str],
        typer.Argument(
            help="Recipe name(s) (eeg2025/c1-baseline) or YAML path(s); several run one after "
            "another, or at once with --devices.",
            show_default=False,
        ),
    ],
    set_: SetOpt = None,
    smoke: SmokeOpt = False,
    resume: ResumeOpt = False,
    device: Annotated[str, typer.Option(help="Device for verify: cpu or cuda.")] = "cpu",
    debug: DebugOpt = False,
    auto_batch_size: AutoBatchOpt = None,
    run_dir: RunDirOpt = None,
    devices: Annotated[
        str | None,
        typer.Option(
            "--devices",
            help="Run the recipes at once, one process each pinned to its device: 0,1,2 (CUDA "
            "indices) or cpu,cpu; each run logs to runs/_parallel/<time>/<recipe>.log.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Train -> export -> bundle -> verify, and print the bundle, score and verify result."""
    if devices is not None or len(names) > 1:
        with cli_errors():
            if run_dir is not None or debug:
                raise ToolkitError("--run-dir and --debug take one recipe")
            _run_several(ctx, names, devices, set_ or [], smoke, resume, device)
        return
    # signals_raise: a stop signal during export, bundle or verify ends cleanly (and under
    # SLURM requeues the job, which then goes on from the finished run).
    with cli_errors(), signals_raise(), _debug_folder(ctx, debug):
        name = names[0]
        settings = settings_from(ctx)
        run = _train(ctx, name, set_ or [], smoke, resume, debug, auto_batch_size, run_dir)
        _export(run)
        runs = _with_partners(ctx, run, smoke)
        bundle = _bundle(runs, settings, None)
        _verify(bundle, device)
        lines = [f"\n[bold]bundle[/]  {bundle / 'submission.zip'}"]
        for bundled in runs:
            metrics = bundled.metrics()
            metric = metrics["metric"]
            base = ", ".join(f"{k} {v:.4f}" for k, v in metrics.get("baselines", {}).items())
            who = f"{bundled.recipe().name}: " if len(runs) > 1 else ""
            lines.append(
                f"[bold]score[/]   {who}validation {metric} {metrics[f'val_{metric}']:.4f}"
                + (f" (baseline: {base})" if base else "")
            )
        console.print("\n".join([*lines, "[bold]verify[/]  [green]passed[/]"]))


def _run_several(
    ctx: typer.Context,
    names: list[str],
    devices: str | None,
    sets: list[str],
    smoke: bool,
    resume: bool,
    device: str,
) -> None:
    """Several recipes: at once on `devices` (one process each), else one after another."""
    args = [*(a for s in sets for a in ("--set", s)), "--device", device]
    args += ["--smoke"] if smoke else []
    args += ["--resume"] if resume else []
    if devices is None:
        for name in names:
            console.rule(name)
            run_cmd(ctx, [name], sets, smoke, resume, device)
        return
    from toolkit.cli.parallel import parse_devices, run_parallel

    options = ctx.find_root().obj or {}
    root_args = [a for key, value in options.items() if value is not None and key != "device"
                 for a in (f"--{key.replace('_', '-')}", str(value))]  # fmt: skip
    jobs = run_parallel(names, parse_devices(devices, len(names)), args,
                        settings_from(ctx).runs_dir, root_args)  # fmt: skip
    failed = [job for job in jobs if job.returncode != 0]
    if failed:
        raise ToolkitError(
            f"{len(failed)} of {len(jobs)} runs failed: "
            + ", ".join(f"{j.recipe} (exit {j.returncode}, log {j.log})" for j in failed)
        )


def train_cmd(
    ctx: typer.Context,
    name: RecipeArg,
    set_: SetOpt = None,
    smoke: SmokeOpt = False,
    resume: ResumeOpt = False,
    debug: DebugOpt = False,
    auto_batch_size: AutoBatchOpt = None,
    run_dir: RunDirOpt = None,
) -> None:
    """Train a recipe into runs/<recipe>/<run-id>/ (checkpoints, history, metrics)."""
    with cli_errors(), signals_raise(), _debug_folder(ctx, debug):
        _train(ctx, name, set_ or [], smoke, resume, debug, auto_batch_size, run_dir)


def export_cmd(
    run_dir: Annotated[Path, typer.Argument(help="A run folder written by `toolkit train`.")],
) -> None:
    """Export a run's best model (TorchScript, ONNX) and check it against the eager model."""
    with cli_errors():
        _export(_run_dir(run_dir))


def bundle_cmd(
    ctx: typer.Context,
    targets: Annotated[
        list[str],
        typer.Argument(
            help="Run folder(s); or a competition followed by its slots, e.g. "
            "eeg2025 --c1 RUN_OR_RECIPE --c2 RUN_OR_RECIPE.",
            show_default=False,
        ),
    ],
    name: Annotated[str | None, typer.Option(help="Bundle name (default: recipe name).")] = None,
    smoke: Annotated[
        bool, typer.Option("--smoke", help="A recipe given for a slot means its smoke runs.")
    ] = False,
    allow_unfinished: Annotated[
        bool,
        typer.Option(
            "--allow-unfinished",
            help="Bundle runs whose training was interrupted or failed (the manifest says so).",
        ),
    ] = False,
) -> None:
    """Write the competition's submission under submissions/: from exported run folders, or
    one model per slot (`toolkit bundle eeg2025 --c1 X --c2 Y`), where X and Y are run folders
    or recipes (their newest exported run, trained first if there is none)."""
    with cli_errors():
        settings = settings_from(ctx)
        runs = _slot_runs(ctx, targets, smoke)
        if runs is None:
            runs = [_run_or_recipe(ctx, t, smoke) for t in targets]
        _bundle(runs, settings, name, allow_unfinished)


def _slot_runs(ctx: typer.Context, targets: list[str], smoke: bool) -> list[RunDir] | None:
    """Runs for `COMPETITION --slot RUN_OR_RECIPE ...`; None when targets are run folders."""
    from toolkit.competitions import competition_names, get_competition

    if not targets or targets[0] not in competition_names():
        return None
    competition = get_competition(targets[0])
    slots = getattr(competition, "bundle_slots", {})
    rest = targets[1:]
    if not rest or len(rest) % 2:
        usage = " ".join(f"--{s} RUN_OR_RECIPE" for s in slots) or "RUN_DIR ..."
        raise ToolkitError(f"usage: toolkit bundle {competition.name} {usage}")
    runs: list[RunDir] = []
    for flag, target in zip(rest[::2], rest[1::2], strict=True):
        slot = flag.removeprefix("--")
        if not flag.startswith("--") or slot not in slots:
            known = ", ".join(f"--{s}" for s in slots) or "none"
            raise ToolkitError(f"{flag}: not a slot of {competition.name} (slots: {known})")
        run = _run_or_recipe(ctx, target, smoke)
        actual = competition.bundle_slot(run.recipe())
        if actual != slot:
            raise ToolkitError(f"--{slot} {target}: that run fills slot {actual}, not {slot}")
        runs.append(run)
    return runs


def verify_cmd(
    ctx: typer.Context,
    bundle: Annotated[Path, typer.Argument(help="A bundle folder or its submission.zip.")],
    device: Annotated[str, typer.Option(help="Device to call the models on: cpu or cuda.")] = "cpu",
    runtime: Annotated[
        str | None,
        typer.Option(
            help="Call the bundle in the competition's own runtime (e.g. eeg2025: torch 2.2.2), "
            "a virtual environment made once under the cache folder."
        ),
    ] = None,
    timeout: TimeoutOpt = None,
    require_isolation: Annotated[
        bool,
        typer.Option(
            "--require-isolation",
            help="Fail unless the bundle runs in its own network namespace (an OS-level block "
            "of every network route; without it only the in-process guard applies).",
        ),
    ] = False,
) -> None:
    """Check a bundle offline, without the toolkit, the way the competition's harness calls it."""
    with cli_errors():
        _verify(bundle, device, _runtime_python(ctx, runtime), runtime or "", timeout,
                require_isolation)  # fmt: skip
