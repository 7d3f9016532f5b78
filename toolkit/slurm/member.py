"""Train one member of an ensemble recipe into a given run folder (what an array task runs):
start there, resume the interrupted run it holds, or stop at once when it is already trained."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from toolkit.config.recipes import resolve_recipe
from toolkit.config.settings import Settings
from toolkit.engine.rundir import RunDir
from toolkit.errors import ToolkitError


def train_member(
    recipe_name: str,
    member_name: str,
    run_dir: Path,
    settings: Settings,
    *,
    smoke: bool,
    sets: list[str],
    command: str,
    console: Console,
) -> RunDir:
    """Train member `member_name` of `recipe_name` in `run_dir` (as `train_ensemble` would: the
    same member recipe, so the ensemble job then reuses this run)."""
    from toolkit.engine.ensemble import member_recipe
    from toolkit.engine.train import train

    recipe = resolve_recipe(recipe_name, smoke=smoke, overrides=sets,
                            recipes_dir=settings.recipes_dir)  # fmt: skip
    if recipe.ensemble is None:
        raise ToolkitError(f"{recipe.name}: not an ensemble recipe (no ensemble.members)")
    members = {m.name: m for m in recipe.ensemble.members}
    if member_name not in members:
        raise ToolkitError(
            f"{recipe.name}: no ensemble member {member_name!r} (members: {', '.join(members)})"
        )
    sub = member_recipe(recipe, members[member_name])
    run = RunDir(run_dir.expanduser().resolve())
    if run.status().get("state") in ("trained", "exported") and run.metrics_file.is_file():
        console.print(f"member [bold]{member_name}[/]: {run.path} is already trained")
        return run
    previous = run if run.recipe_file.is_file() and run.resumable() else None
    doing = f"resuming {run.path}" if previous else f"training in {run.path}"
    console.print(f"member [bold]{member_name}[/]: {doing}")
    return train(sub, settings, command=command, resume=previous,
                 run=None if previous else run, console=console)  # fmt: skip
