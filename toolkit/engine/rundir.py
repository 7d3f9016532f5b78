"""A run folder: runs/<recipe>/<run-id>/ with the resolved recipe, checkpoints, history, metrics."""

from __future__ import annotations

import re
import socket
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from toolkit.config.recipes import dump_recipe, load_resolved
from toolkit.config.schema import Recipe
from toolkit.errors import ToolkitError
from toolkit.fileio import read_json, write_json, write_text
from toolkit.processes import pid_alive


@dataclass(frozen=True)
class RunDir:
    """Paths inside one run folder; every step reads and writes through these names."""

    path: Path

    @property
    def recipe_file(self) -> Path:
        return self.path / "recipe.yaml"

    @property
    def checkpoints(self) -> Path:
        return self.path / "checkpoints"

    @property
    def best_checkpoint(self) -> Path:
        return self.checkpoints / "best.ckpt"

    @property
    def last_checkpoint(self) -> Path:
        return self.checkpoints / "last.ckpt"

    @property
    def history_csv(self) -> Path:
        return self.path / "history.csv"

    @property
    def history_json(self) -> Path:
        return self.path / "history.json"

    @property
    def eval_predictions(self) -> Path:
        return self.path / "eval_predictions.json"

    @property
    def metrics_file(self) -> Path:
        return self.path / "metrics.json"

    @property
    def stats_file(self) -> Path:
        return self.path / "data_stats.json"

    @property
    def status_file(self) -> Path:
        return self.path / "status.json"

    @property
    def reference_inputs(self) -> Path:
        return self.path / "reference_inputs.npy"

    @property
    def export_dir(self) -> Path:
        return self.path / "export"

    @property
    def members_file(self) -> Path:
        """members.json: the member runs of an ensemble run."""
        return self.path / "members.json"

    @property
    def exported(self) -> bool:
        return (self.export_dir / "parity.json").is_file()

    def recipe(self) -> Recipe:
        if not self.recipe_file.is_file():
            raise ToolkitError(f"{self.path}: not a run folder (no recipe.yaml)")
        return load_resolved(self.recipe_file)

    def stats(self) -> dict[str, Any]:
        return read_json(self.stats_file) if self.stats_file.is_file() else {}

    def metrics(self) -> dict[str, Any]:
        return read_json(self.metrics_file) if self.metrics_file.is_file() else {}

    def status(self) -> dict[str, Any]:
        """status.json; a `training` run whose process is gone (killed, crashed machine) reads
        as `interrupted`, with the reason, so a dead process never looks like a live one."""
        status = read_json(self.status_file) if self.status_file.is_file() else {}
        if status.get("state") == "training" and not _alive(status):
            status = {
                **status,
                "state": "interrupted",
                "reason": f"process {status.get('pid')} on {status.get('host')} ended without "
                "recording why (killed or crashed)",
            }
        return status

    def resumable(self) -> bool:
        """Interrupted (or stopped by its time budget) with a checkpoint to continue from."""
        status = self.status()
        if self.resume_checkpoint() is None:
            return False
        return status.get("state") != "trained" or status.get("stopped_by") == "time budget"

    def set_status(self, state: str, **extra: Any) -> None:
        write_json(self.status_file, {"state": state, "updated": _now(), **extra})

    def save_recipe(self, recipe: Recipe, command: str) -> None:
        header = f"# Resolved recipe of this run. Reproduce with:\n#   {command}\n"
        write_text(self.recipe_file, header + dump_recipe(recipe))

    def resume_checkpoint(self) -> Path | None:
        """The newest checkpoint to resume from (last or interval), if any."""
        found = [p for p in self.checkpoints.glob("*.ckpt") if p.name != "best.ckpt"]
        return max(found, key=lambda p: p.stat().st_mtime) if found else None


def _alive(status: dict[str, Any]) -> bool:
    """Whether the process that wrote a `training` status still runs (unknown: assume so)."""
    pid, host = status.get("pid"), status.get("host")
    if not isinstance(pid, int) or host != socket.gethostname():
        return True
    return pid_alive(pid)


def _now() -> str:
    return datetime.now().isoformat(timespec="seconds")


def recipe_runs_dir(runs_root: Path, recipe_name: str) -> Path:
    """runs/<competition>/<stem> for a recipe named <competition>/<stem>."""
    return runs_root / Path(*[re.sub(r"[^\w.-]", "_", p) for p in recipe_name.split("/")])


def new_run_dir(runs_root: Path, recipe: Recipe) -> RunDir:
    """Create a fresh run folder named by time (and `-smoke` for smoke runs)."""
    base = recipe_runs_dir(runs_root, recipe.name)
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S") + ("-smoke" if recipe.smoke_applied else "")
    for i in range(1000):
        path = base / (stamp if i == 0 else f"{stamp}-{i}")
        try:
            path.mkdir(parents=True, exist_ok=False)
            return RunDir(path)
        except FileExistsError:
            continue
    raise ToolkitError(f"{base}: cannot create a new run folder")


def recipe_runs(runs_root: Path, recipe_name: str) -> list[RunDir]:
    """Run folders of a recipe, newest first."""
    base = recipe_runs_dir(runs_root, recipe_name)
    if not base.is_dir():
        return []
    found = [RunDir(p) for p in base.iterdir() if (p / "recipe.yaml").is_file()]
    return sorted(found, key=lambda r: r.path.stat().st_mtime, reverse=True)


def latest_exported(runs_root: Path, recipe_name: str, smoke: bool) -> RunDir | None:
    """The newest exported run of a recipe (smoke runs only when `smoke`)."""
    for run in recipe_runs(runs_root, recipe_name):
        if run.exported and ("-smoke" in run.path.name) == smoke:
            return run
    return None


def latest_resumable(runs_root: Path, recipe_name: str, smoke: bool) -> RunDir | None:
    """The newest unfinished run of a recipe that has a checkpoint to resume from."""
    base = recipe_runs_dir(runs_root, recipe_name)
    if not base.is_dir():
        return None
    runs = sorted(
        (RunDir(p) for p in base.iterdir() if p.is_dir() and not p.name.startswith(".")),
        key=lambda r: r.path.stat().st_mtime,
        reverse=True,
    )
    for run in runs:
        if not run.resumable():
            continue
        try:
            if run.recipe().smoke_applied == smoke:
                return run
        except ToolkitError:
            continue
    return None
