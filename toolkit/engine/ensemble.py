"""Ensembles: a recipe with `ensemble.members` trains (or reuses) one run per member and becomes
one run folder whose exported model averages the members' outputs.

Members are the recipe itself with per-member `set` overrides; each trains into
runs/<recipe>/members/<member>/<run-id>/ like any run, so it can be resumed or reused.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.console import Console
from torch import nn

from toolkit.config.recipes import set_key, validate_recipe
from toolkit.config.schema import EnsembleMember, Recipe
from toolkit.config.settings import Settings
from toolkit.engine.rundir import RunDir, latest_resumable, new_run_dir, recipe_runs
from toolkit.errors import ToolkitError
from toolkit.fileio import read_json, write_json, write_npy


class MeanEnsemble(nn.Module):
    """Averages the outputs of its members (each a complete model, preprocessing included)."""

    def __init__(self, members: list[nn.Module]):
        super().__init__()
        self.members = nn.ModuleList(members)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack([m(x) for m in self.members]).mean(dim=0)


def member_recipe(recipe: Recipe, member: EnsembleMember) -> Recipe:
    """The recipe a member trains: this one without `ensemble`, plus the member's overrides."""
    data: dict[str, Any] = recipe.model_dump(mode="json", exclude={"ensemble"})
    origins: dict[str, str] = {}
    where = f"{recipe.name} ensemble member {member.name}"
    for key, value in member.set.items():
        data = set_key(data, key, value, where, origins)
    data["name"] = f"{recipe.name}/members/{member.name}"
    return validate_recipe(data, origins, where)


def _same(a: Recipe, b: Recipe) -> bool:
    return a.model_dump(mode="json") == b.model_dump(mode="json")


def finished_run(settings: Settings, recipe: Recipe) -> RunDir | None:
    """The newest trained run whose saved recipe equals `recipe` exactly."""
    for run in recipe_runs(settings.runs_dir, recipe.name):
        if run.status().get("state") in ("trained", "exported") and run.metrics_file.is_file():
            try:
                if _same(run.recipe(), recipe):
                    return run
            except ToolkitError:
                continue
    return None


def train_ensemble(
    recipe: Recipe,
    settings: Settings,
    *,
    command: str,
    resume: bool,
    console: Console,
    run: RunDir | None = None,
) -> RunDir:
    """Train or reuse every member, then write the ensemble's run folder (members.json,
    data_stats.json, reference inputs, metrics.json): `run` when given (a batch job's fixed
    folder; returned as it is when it already holds the finished ensemble), else a new one."""
    from toolkit.engine.train import train

    assert recipe.ensemble is not None
    if run is not None and run.status().get("state") == "trained" and run.metrics_file.is_file():
        console.print(f"{run.path}: already trained")
        return run
    target = run
    members: list[tuple[str, RunDir]] = []
    for member in recipe.ensemble.members:
        sub = member_recipe(recipe, member)
        run = finished_run(settings, sub) if recipe.ensemble.reuse else None
        if run is not None:
            console.print(f"member [bold]{member.name}[/]: reusing {run.path}")
        else:
            previous = latest_resumable(settings.runs_dir, sub.name, sub.smoke_applied)
            previous = previous if resume else None
            doing = f"resuming {previous.path}" if previous else f"training {sub.name}"
            console.print(f"member [bold]{member.name}[/]: {doing}")
            run = train(sub, settings, command=f"{command}  # member {member.name}",
                        resume=previous, console=console)  # fmt: skip
        members.append((member.name, run))

    run = target or new_run_dir(settings.runs_dir, recipe)
    run.save_recipe(recipe, command)
    first = members[0][1]
    write_json(run.stats_file, {**first.stats(), "ensemble_of": [n for n, _ in members]})
    write_npy(run.reference_inputs, np.load(first.reference_inputs))
    write_json(run.members_file, [
        {"name": name, "run": str(r.path), "metrics": r.metrics()} for name, r in members
    ])  # fmt: skip
    write_json(run.metrics_file, _ensemble_metrics(recipe, settings, members))
    run.set_status("trained", members=len(members))
    return run


def _ensemble_metrics(
    recipe: Recipe, settings: Settings, members: list[tuple[str, RunDir]]
) -> dict[str, Any]:
    """Score the averaged model on the shared validation set when every member used the same
    data (same subjects and split); otherwise report the mean of the members' own scores."""
    from toolkit.competitions import get_competition
    from toolkit.export.run import trained_model

    competition = get_competition(recipe.competition)
    metric = competition.metric
    recipes = [r.recipe() for _, r in members]
    own = {name: r.metrics().get(f"val_{metric.name}") for name, r in members}
    out: dict[str, Any] = {"metric": metric.name, "mode": metric.mode, "members": own}
    shared = all(r.data == recipes[0].data for r in recipes) and all(
        r.stats().get("val_subjects") == members[0][1].stats().get("val_subjects")
        for _, r in members
    )
    if not shared:
        out[f"val_{metric.name}"] = float(np.mean([v for v in own.values() if v is not None]))
        out["validated_on"] = "mean of the members' own validation scores (different data)"
        return out
    datamodule = competition.build_datamodule(recipes[0], settings)
    datamodule.setup("validate")
    model = MeanEnsemble([trained_model(r) for _, r in members]).eval()
    ys, preds = [], []
    with torch.inference_mode():
        for x, y in datamodule.val_dataloader():
            preds.append(model(x).numpy())
            ys.append(y.numpy())
    y_true, y_pred = np.concatenate(ys), np.concatenate(preds)
    out[f"val_{metric.name}"] = float(metric.fn(y_true, y_pred))
    out["val_samples"] = len(y_true)
    out["validated_on"] = "the members' shared validation subjects"
    return out


def member_runs(run: RunDir) -> list[RunDir]:
    """The member runs listed in an ensemble run's members.json."""
    return [RunDir(Path(m["run"])) for m in read_json(run.members_file)]
