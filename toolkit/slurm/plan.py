"""From recipes to batch scripts: one job for a recipe, an array of member tasks plus a
dependent bundling job for an ensemble, one array for a list of recipes. Run folders are made
here, at submit time, and named in the scripts (a requeue lands in the same folder)."""

from __future__ import annotations

import shutil
import sys
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from toolkit.config.recipes import find_recipe, resolve_recipe
from toolkit.config.schema import Recipe
from toolkit.config.settings import Settings
from toolkit.engine.rundir import new_run_dir
from toolkit.errors import ToolkitError
from toolkit.fileio import write_text
from toolkit.slurm.resources import Resources
from toolkit.slurm.script import Container, JobScript, Task, render

SLURM_FOLDER = "_slurm"  # under the runs folder: array scripts of recipe lists, job records


@dataclass(frozen=True)
class Request:
    """What `toolkit slurm submit` was asked for, beside the recipes."""

    smoke: bool = False
    sets: tuple[str, ...] = ()
    nodes: int | None = None
    gpus_per_node: int | None = None
    cpus_per_task: int | None = None
    mem: str | None = None
    time: str | None = None
    partition: str | None = None
    account: str | None = None
    container: Path | None = None


@dataclass
class Plan:
    """Scripts to submit in order; a job with `after` set waits for the one before it."""

    jobs: list[JobScript]
    notes: list[str] = field(default_factory=list)  # e.g. members reused rather than trained
    created: list[Path] = field(default_factory=list)  # removed again if submission fails

    def discard(self) -> None:
        """Remove the run folders this plan made (they hold only its scripts and logs)."""
        for path in reversed(self.created):
            shutil.rmtree(path, ignore_errors=True)


def host_toolkit() -> list[str]:
    """The `toolkit` of this Python environment (as an absolute path), for jobs on the host."""
    script = Path(sys.executable).parent / "toolkit"
    return [str(script)] if script.is_file() else [sys.executable, "-m", "toolkit.cli.main"]


def toolkit_words(settings: Settings, container: bool) -> tuple[str, ...]:
    """The executable and the global options that fix the folders, device and seed."""
    return (
        *(["toolkit"] if container else host_toolkit()),
        "--data-dir", str(settings.data_dir), "--cache-dir", str(settings.cache_dir),
        "--runs-dir", str(settings.runs_dir), "--submissions-dir", str(settings.submissions_dir),
        "--device", settings.device, "--seed", str(settings.seed),
    )  # fmt: skip


def _recipe_arg(name: str, settings: Settings) -> str:
    """A recipe name as given, or a recipe file as an absolute path (jobs run elsewhere)."""
    path = Path(name).expanduser()
    return str(find_recipe(name, settings.recipes_dir).path) if path.is_file() else name


def _layout(recipe: Recipe, request: Request) -> tuple[int, int, list[str]]:
    """(nodes, tasks per node, extra --set) so that SLURM's layout and the recipe's agree."""
    devices, nodes = recipe.train.devices, recipe.train.num_nodes
    extra: list[str] = []
    gpus = request.gpus_per_node or 0
    if gpus:
        if devices is not None and devices != gpus:
            raise ToolkitError(
                f"--gpus-per-node {gpus} but {recipe.name} has train.devices={devices}: a job "
                "runs one task per GPU; make them equal (--set train.devices=...)"
            )
        if devices is None and gpus > 1:
            extra.append(f"train.devices={gpus}")
        tasks = gpus
    else:
        tasks = devices or 1
    if request.nodes is not None and request.nodes != nodes:
        extra.append(f"train.num_nodes={request.nodes}")
        nodes = request.nodes
    return nodes, tasks, extra


def _resources(request: Request, nodes: int = 1, tasks: int = 1) -> Resources:
    return Resources(
        nodes=nodes, tasks_per_node=tasks, gpus_per_node=request.gpus_per_node or 0,
        cpus_per_task=request.cpus_per_task, mem=request.mem, time=request.time,
        partition=request.partition, account=request.account,
    )  # fmt: skip


def _flags(request: Request, extra: list[str]) -> tuple[str, ...]:
    words = ["--smoke"] if request.smoke else []
    for item in (*request.sets, *extra):
        words += ["--set", item]
    return tuple(words)


def _container(request: Request, settings: Settings, workdir: Path, recipe_args: list[str]):
    """The image and its binds: the toolkit's folders, the work folder, recipe files' folders."""
    if request.container is None:
        return None
    image = request.container.expanduser().resolve()
    if not image.is_file():
        raise ToolkitError(
            f"--container {request.container}: no such image file; build one with "
            "`apptainer build toolkit.sif docker/apptainer.def` (docs/scale-out.md)"
        )
    folders = [settings.data_dir, settings.cache_dir, settings.runs_dir,
               settings.submissions_dir, workdir]  # fmt: skip
    folders += [Path(a).parent for a in recipe_args if Path(a).is_absolute()]
    binds: list[Path] = []
    for folder in folders:
        folder.mkdir(parents=True, exist_ok=True)  # apptainer refuses a missing bind source
        if not any(folder == b or b in folder.parents for b in binds):
            binds = [b for b in binds if folder not in b.parents] + [folder]
    return Container(image, tuple(binds), gpus=bool(request.gpus_per_node))


def plan_submission(
    names: list[str], settings: Settings, request: Request, workdir: Path
) -> Plan:
    """Make the run folders and write the scripts for `names` (nothing is submitted)."""
    recipes = [
        resolve_recipe(n, smoke=request.smoke, overrides=list(request.sets),
                       recipes_dir=settings.recipes_dir)
        for n in names
    ]  # fmt: skip
    args = [_recipe_arg(n, settings) for n in names]
    container = _container(request, settings, workdir, args)
    toolkit = toolkit_words(settings, container is not None)
    if len(recipes) == 1 and recipes[0].ensemble is not None:
        plan = _ensemble_plan(recipes[0], args[0], settings, request, workdir, toolkit, container)
    elif len(recipes) == 1:
        plan = _single_plan(recipes[0], args[0], settings, request, workdir, toolkit, container)
    else:
        plan = _array_plan(recipes, args, settings, request, workdir, toolkit, container)
    try:
        for job in plan.jobs:
            write_text(job.path, render(job))
    except BaseException:
        plan.discard()
        raise
    return plan


def _single_plan(recipe, arg, settings, request, workdir, toolkit, container) -> Plan:
    nodes, tasks, extra = _layout(recipe, request)
    run = new_run_dir(settings.runs_dir, recipe)
    task = Task(recipe.name, run.path, ("run", arg, "--run-dir", str(run.path),
                                        *_flags(request, extra)))  # fmt: skip
    job = JobScript(
        name=f"toolkit:{recipe.name}", title=f"{recipe.name}: train, export, bundle, verify.",
        path=run.path / "slurm.sbatch", workdir=workdir,
        resources=_resources(request, nodes, tasks), tasks=(task,), toolkit=toolkit,
        container=container,
    )  # fmt: skip
    return Plan([job], created=[run.path])


def _ensemble_plan(recipe, arg, settings, request, workdir, toolkit, container) -> Plan:
    """An array with one task per member left to train, then the bundling job after it."""
    from toolkit.engine.ensemble import finished_run, member_recipe

    plan = Plan([])
    tasks: list[Task] = []
    layouts = set()
    for member in recipe.ensemble.members:
        sub = member_recipe(recipe, member)
        done = finished_run(settings, sub) if recipe.ensemble.reuse else None
        if done is not None:
            plan.notes.append(f"member {member.name}: reusing {done.path}")
            continue
        nodes, per_node, extra = _layout(sub, request)
        layouts.add((nodes, per_node))
        run = new_run_dir(settings.runs_dir, sub)
        plan.created.append(run.path)
        tasks.append(Task(f"ensemble member {member.name}", run.path, (
            "slurm", "member", arg, member.name, "--run-dir", str(run.path),
            *_flags(request, extra),
        )))  # fmt: skip
    if len(layouts) > 1:
        plan.discard()
        raise ToolkitError(
            f"{recipe.name}: the members need different nodes/devices {sorted(layouts)}; one "
            "array gives every task the same"
        )
    ensemble = new_run_dir(settings.runs_dir, recipe)
    plan.created.append(ensemble.path)
    if tasks:
        ((nodes, per_node),) = layouts
        plan.jobs.append(JobScript(
            name=f"toolkit:{recipe.name}:members",
            title=f"{recipe.name}: the ensemble's members, one array task each.",
            path=ensemble.path / "members.sbatch", workdir=workdir,
            resources=_resources(request, nodes, per_node), tasks=tuple(tasks),
            toolkit=toolkit, container=container, array_of="ensemble member",
        ))  # fmt: skip
    bundle = Task("ensemble", ensemble.path, ("run", arg, "--run-dir", str(ensemble.path),
                                              *_flags(request, [])))  # fmt: skip
    plan.jobs.append(JobScript(
        name=f"toolkit:{recipe.name}",
        title=f"{recipe.name}: average the trained members, export, bundle, verify.",
        path=ensemble.path / "slurm.sbatch", workdir=workdir, resources=_resources(request),
        tasks=(bundle,), toolkit=toolkit, container=container,
        after="every task of members.sbatch ended well" if tasks else "",
    ))  # fmt: skip
    return plan


def _array_plan(recipes, args, settings, request, workdir, toolkit, container) -> Plan:
    """Several recipes as one array, one task each; the script lives in runs/_slurm/<time>/."""
    plan = Plan([])
    layouts = set()
    tasks: list[Task] = []
    for recipe in recipes:
        if recipe.ensemble is not None:
            raise ToolkitError(
                f"{recipe.name}: an ensemble recipe; submit it alone (its members become an "
                "array of their own)"
            )
        nodes, per_node, _ = _layout(recipe, request)
        layouts.add((nodes, per_node))
        if len(layouts) > 1:
            raise ToolkitError(
                f"{recipe.name}: needs nodes/devices {(nodes, per_node)} unlike the recipes "
                "before it; one array gives every task the same (submit them separately)"
            )
    for recipe, arg in zip(recipes, args, strict=True):
        _, _, extra = _layout(recipe, request)
        run = new_run_dir(settings.runs_dir, recipe)
        plan.created.append(run.path)
        tasks.append(Task(recipe.name, run.path, ("run", arg, "--run-dir", str(run.path),
                                                  *_flags(request, extra))))  # fmt: skip
    folder = _array_folder(settings.runs_dir)
    plan.created.append(folder)
    ((nodes, per_node),) = layouts
    plan.jobs.append(JobScript(
        name=f"toolkit:{len(recipes)}-recipes",
        title=f"{len(recipes)} recipes, one array task each: train, export, bundle, verify.",
        path=folder / "array.sbatch", workdir=workdir,
        resources=_resources(request, nodes, per_node), tasks=tuple(tasks), toolkit=toolkit,
        container=container, array_of="recipe",
    ))  # fmt: skip
    return plan


def _array_folder(runs_dir: Path) -> Path:
    base = runs_dir / SLURM_FOLDER
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    for i in range(1000):
        path = base / (stamp if i == 0 else f"{stamp}-{i}")
        try:
            path.mkdir(parents=True)
            return path
        except FileExistsError:
            continue
    raise ToolkitError(f"{base}: cannot create a new folder")
