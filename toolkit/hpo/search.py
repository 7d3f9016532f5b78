"""`toolkit hpo RECIPE`: an Optuna study whose trials are ordinary run folders.

Each trial resolves the recipe with its sampled values as `--set` overrides, trains it into
runs/<recipe>/hpo/<study>/trial-<n>/ and returns the monitored validation metric; pruning
reads the same metric from Lightning after every validation. The study lives in a storage
(SQLite under the study folder by default), so the same command continues it; trials carry
heartbeats, so a trial whose process was killed is marked failed and retried with the same
parameters by the next worker that starts a trial.
"""

from __future__ import annotations

import json
import logging
import math
import os
import socket
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import lightning as L
import optuna
from rich.console import Console

from toolkit.config.recipes import resolve_recipe
from toolkit.config.schema import Recipe
from toolkit.config.search_space import HpoConfig, SearchRange
from toolkit.config.settings import Settings
from toolkit.engine.rundir import RunDir, recipe_runs_dir
from toolkit.errors import DataError, RecipeError, ToolkitError, TrainingError
from toolkit.fileio import read_json, write_json
from toolkit.hpo.storage import open_storage_url, shown_url

STUDY_FILE = "study.json"
FINISHED = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
LIVE = (*FINISHED, optuna.trial.TrialState.RUNNING)
WORKER_SEED_STRIDE = 1000  # sampler seed = seed + trials before + 1000 * worker index


class HpoError(ToolkitError):
    """The search cannot start or go on (storage, study, metric)."""


class TrialFailed(Exception):
    """A trial that failed on its own (diverged, crashed): recorded as FAIL, the search goes on."""


@dataclass
class SearchPlan:
    """Everything one `toolkit hpo` call needs, recipe defaults merged with the CLI's flags."""

    recipe: str  # name or path, as given
    recipe_name: str
    recipe_file: str
    smoke: bool
    sets: list[str]
    study: str
    storage: str
    folder: Path
    trials: int
    metric: str
    direction: str
    pruning: bool
    epochs: int | None
    timeout: float | None
    hpo: HpoConfig = field(repr=False)

    def record(self) -> dict[str, Any]:
        """study.json: what `toolkit hpo show` needs to find the study and its base recipe."""
        data = asdict(self)
        data.pop("hpo")
        data["folder"] = str(self.folder)
        return data


def metric_key(text: str) -> str:
    """`val/mae` (the users' spelling) -> `val_mae`, the name the engine logs."""
    return text.strip().replace("/", "_")


def plan_search(
    recipe: str,
    settings: Settings,
    *,
    smoke: bool,
    sets: list[str],
    entry_file: str,
    trials: int | None = None,
    storage: str | None = None,
    study: str | None = None,
    pruning: bool | None = None,
    metric: str | None = None,
    direction: str | None = None,
    epochs: int | None = None,
    timeout: timedelta | None = None,
) -> tuple[SearchPlan, Recipe]:
    """Resolve the recipe, check its `hpo:` block against the recipe, merge the CLI's flags."""
    from toolkit.competitions import get_competition

    base = resolve_recipe(recipe, smoke=smoke, overrides=sets, recipes_dir=settings.recipes_dir)
    if base.hpo is None:
        raise RecipeError(f"{entry_file}: no `hpo:` block (the search space) in this recipe")
    cfg = base.hpo
    check_space(recipe, cfg, settings, smoke, sets, entry_file)
    mode = get_competition(base.competition).metric.mode
    name = study or cfg.study or base.slug + ("-smoke" if smoke else "")
    if not name.replace("-", "").replace("_", "").replace(".", "").isalnum():
        raise HpoError(f"--study {name!r}: use letters, digits, '-', '_' or '.'")
    folder = recipe_runs_dir(settings.runs_dir, base.name) / "hpo" / name
    budget = timeout if timeout is not None else cfg.timeout
    plan = SearchPlan(
        recipe=recipe,
        recipe_name=base.name,
        recipe_file=entry_file,
        smoke=smoke,
        sets=list(sets),
        study=name,
        storage=storage or cfg.storage or f"sqlite:///{folder / 'study.db'}",
        folder=folder,
        trials=trials if trials is not None else cfg.trials,
        metric=metric_key(metric or cfg.metric or "val_score"),
        direction=direction or cfg.direction or ("minimize" if mode == "min" else "maximize"),
        pruning=cfg.pruning if pruning is None else pruning,
        epochs=epochs if epochs is not None else cfg.epochs,
        timeout=budget.total_seconds() if budget is not None else None,
        hpo=cfg,
    )
    return plan, base


def check_space(
    recipe: str, cfg: HpoConfig, settings: Settings, smoke: bool, sets: list[str], where: str
) -> None:
    """Every searched key must be a recipe key that takes both ends (every choice) of its range:
    the recipe is resolved with each value (and the model built, for `model.*` keys, when the
    competition can check models), so an unknown key or a value the schema or the model refuses
    is one line naming the key, before any trial starts."""
    from toolkit.competitions import get_competition

    for key, spec in cfg.space.items():
        if key.split(".")[0] in ("hpo", "smoke", "competition", "name"):
            raise RecipeError(f"{where}: hpo.space: '{key}' cannot be searched")
        for value in spec.values():
            try:
                resolved = resolve_recipe(recipe, smoke=smoke,
                                          overrides=[*sets, _override(key, value)],
                                          recipes_dir=settings.recipes_dir)  # fmt: skip
                check_model = getattr(get_competition(resolved.competition), "check_model", None)
                if check_model is not None and key.startswith("model."):
                    check_model(resolved)
            except RecipeError as exc:
                detail = str(exc).split(": ", 1)[-1]
                raise RecipeError(
                    f"{where}: hpo.space: '{key}' = {value!r} is not a valid recipe value "
                    f"({detail})"
                ) from None


def _override(key: str, value: Any) -> str:
    return f"{key}={json.dumps(value)}"


def suggest(trial: optuna.Trial, key: str, spec: SearchRange) -> Any:
    """One value for `key` from its range (Optuna 5: keyword arguments)."""
    kind = spec.kind
    lo_hi = spec.bounds(kind)
    if kind == "choice":
        return trial.suggest_categorical(key, lo_hi)
    if kind in ("int", "log_int"):
        step = int(spec.step) if spec.step is not None else 1
        return trial.suggest_int(name=key, low=lo_hi[0], high=lo_hi[1], step=step,
                                 log=kind == "log_int")  # fmt: skip
    return trial.suggest_float(key, lo_hi[0], lo_hi[1], step=spec.step,
                               log=kind == "log_uniform")  # fmt: skip


def open_study(
    plan: SearchPlan, storage: optuna.storages.BaseStorage, seed: int, worker: int = 0
) -> optuna.Study:
    """Create the study or continue it; an existing study of the other direction is refused."""
    existing = {s.study_name: s for s in optuna.get_all_study_summaries(storage=storage)}
    if plan.study in existing:
        have = existing[plan.study].direction.name.lower()
        if have != plan.direction:
            raise HpoError(
                f"study {plan.study!r} in {shown_url(plan.storage)} exists with direction "
                f"{have}, not {plan.direction}; pick another --study or drop --direction"
            )
    # Each call samples with its own seed (seed + worker index, shifted by the trials already
    # there), so parallel workers and a continued study do not repeat each other.
    n_before = existing[plan.study].n_trials if plan.study in existing else 0
    sampler = optuna.samplers.TPESampler(seed=seed + n_before + WORKER_SEED_STRIDE * worker)
    pruner: optuna.pruners.BasePruner = optuna.pruners.NopPruner()
    if plan.pruning:
        pruner = optuna.pruners.MedianPruner(
            n_startup_trials=plan.hpo.pruning_startup_trials,
            n_warmup_steps=plan.hpo.pruning_warmup_epochs,
        )
    return optuna.create_study(
        storage=storage,
        sampler=sampler,
        pruner=pruner,
        study_name=plan.study,
        direction=plan.direction,
        load_if_exists=True,
    )


class TrialMonitor(L.Callback):
    """Reads the monitored metric after each validation: reports it to the trial (pruning) and
    keeps the value of the final validation of the best checkpoint (the trial's result)."""

    def __init__(self, metric: str, trial: optuna.Trial | None):
        self.metric = metric
        self.trial = trial
        self.epoch_values: list[float] = []
        self.final: float | None = None
        self.pruned_at: int | None = None

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        value = trainer.callback_metrics.get(self.metric)
        if value is None:
            logged = ", ".join(sorted(k for k in trainer.callback_metrics if k.startswith("val")))
            raise HpoError(f"--metric {self.metric}: not logged by this recipe (logged: {logged})")
        value = float(value)
        if trainer.state.fn != "fit":
            self.final = value
            return
        self.epoch_values.append(value)
        if self.trial is None:
            return
        self.trial.report(value, step=trainer.current_epoch)
        if self.trial.should_prune():
            self.pruned_at = trainer.current_epoch
            raise optuna.TrialPruned(f"pruned at epoch {trainer.current_epoch}")


def make_objective(
    plan: SearchPlan,
    settings: Settings,
    console: Console,
    train_fn: Callable[..., RunDir] | None = None,
    worker: int | None = None,
) -> Callable[[optuna.Trial], float]:
    """The function Optuna calls per trial: sample, resolve, train into the trial's folder."""
    if train_fn is None:
        from toolkit.engine.train import train as train_fn

    def objective(trial: optuna.Trial) -> float:
        if worker is not None:
            trial.set_user_attr("worker", {"index": worker, "pid": os.getpid(),
                                           "host": socket.gethostname()})  # fmt: skip
            _refuse_surplus(trial, plan.trials)
        params = {key: suggest(trial, key, spec) for key, spec in plan.hpo.space.items()}
        overrides = [*plan.sets, *(_override(k, v) for k, v in params.items())]
        if plan.epochs is not None:
            overrides.append(f"train.epochs={plan.epochs}")
        recipe = resolve_recipe(plan.recipe, smoke=plan.smoke, overrides=overrides,
                                recipes_dir=settings.recipes_dir)  # fmt: skip
        run = RunDir(plan.folder / f"trial-{trial.number}")
        run.path.mkdir(parents=True, exist_ok=True)
        trial.set_user_attr("run", str(run.path))
        monitor = TrialMonitor(plan.metric, trial if plan.pruning else None)
        shown = ", ".join(f"{k}={_short(v)}" for k, v in params.items())
        console.print(f"[bold]trial {trial.number}[/] {shown}")
        command = f"toolkit hpo {plan.recipe} --study {plan.study} (trial {trial.number})"
        try:
            train_fn(recipe, settings, command=command, run=run, console=console,
                     extra_callbacks=[monitor])  # fmt: skip
        except optuna.TrialPruned:
            run.set_status("pruned", epoch=monitor.pruned_at, values=monitor.epoch_values)
            console.print(f"trial {trial.number}: pruned at epoch {monitor.pruned_at}")
            raise
        except (RecipeError, DataError, HpoError):
            raise  # the same for every trial: stop the search with its one line
        except (TrainingError, FloatingPointError, RuntimeError) as exc:
            console.print(f"[yellow]trial {trial.number} failed:[/] {exc}")
            raise TrialFailed(str(exc)) from exc
        value = monitor.final
        if value is None and monitor.epoch_values:
            pick = min if plan.direction == "minimize" else max
            value = pick(monitor.epoch_values)
        if value is None or not math.isfinite(value):
            raise TrialFailed(f"trial {trial.number}: no finite {plan.metric}")
        console.print(f"trial {trial.number}: {plan.metric} {value:.4f}  ({run.path})")
        return value

    return objective


def _refuse_surplus(trial: optuna.Trial, cap: int) -> None:
    """Two workers that checked the budget at the same moment may both start a trial: the one
    numbered after `cap` live (finished or running) trials is failed at once, before training."""
    ahead = [t for t in trial.study.get_trials(deepcopy=False, states=LIVE)
             if t.number < trial.number]  # fmt: skip
    if len(ahead) >= cap:
        trial.set_user_attr("surplus", True)
        raise TrialFailed(f"trial {trial.number}: {cap} trials already finished or running")


def _short(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def finished_trials(study: optuna.Study) -> int:
    return len(study.get_trials(deepcopy=False, states=FINISHED))


def live_trials(study: optuna.Study) -> tuple[int, int]:
    """(finished, running) trials of the study, across every worker."""
    trials = study.get_trials(deepcopy=False, states=LIVE)
    running = sum(t.state == optuna.trial.TrialState.RUNNING for t in trials)
    return len(trials) - running, running


def prepare_study(plan: SearchPlan, settings: Settings, worker: int = 0) -> optuna.Study:
    """Open the storage (creating its tables) and the study, and write study.json."""
    # Trials report their own outcome (one line each); Optuna's own warnings would repeat a
    # failure with its traceback before the CLI's one line.
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    logging.getLogger("optuna").setLevel(logging.ERROR)
    storage = open_storage_url(plan.storage, plan.hpo)
    study = open_study(plan, storage, settings.seed, worker)
    plan.folder.mkdir(parents=True, exist_ok=True)
    write_json(plan.folder / STUDY_FILE, plan.record())
    return study


def optuna_study(plan: SearchPlan) -> optuna.Study:
    """The plan's study, as the workers left it."""
    return optuna.load_study(study_name=plan.study, storage=open_storage_url(plan.storage))


def run_search(
    plan: SearchPlan, settings: Settings, console: Console, worker: int | None = None
) -> optuna.Study:
    """Run (or continue) the study until it holds `plan.trials` finished trials.

    Several workers (`worker` = their index) may run this on one study at once: a worker starts
    a trial only while finished + running trials stay below the cap, and otherwise waits for the
    others' trials, failing stale ones (a killed worker's) so that their retry runs here."""
    study = prepare_study(plan, settings, worker or 0)
    before, _ = live_trials(study)
    if before >= plan.trials:
        console.print(
            f"study {plan.study}: already {before} finished trials (--trials {plan.trials}); "
            "raise --trials to search further"
        )
        return study
    who = "" if worker is None else f"worker {worker}: "
    console.print(
        f"{who}study [bold]{plan.study}[/] ({shown_url(plan.storage)}): {before} finished, "
        f"running up to {plan.trials - before} more, {plan.direction} {plan.metric}"
    )
    objective = make_objective(plan, settings, console, worker=worker)
    cap = optuna.study.MaxTrialsCallback(plan.trials, states=FINISHED)
    deadline = None if plan.timeout is None else time.monotonic() + plan.timeout
    attempts = plan.trials - before  # a worker starts at most this many trials (some may fail)
    poll = min(1.0, plan.hpo.heartbeat_interval)  # a cheap query; the end is seen at once
    waiting = False
    while attempts > 0:
        left = None if deadline is None else deadline - time.monotonic()
        if left is not None and left <= 0:
            break
        finished, running = live_trials(study)
        if finished >= plan.trials:
            break
        if finished + running >= plan.trials:
            if not waiting:
                console.print(
                    f"{who}waiting for {running} running trial(s); a killed worker's trial is "
                    f"retried after hpo.grace_period={plan.hpo.grace_period}s without heartbeat"
                )
                waiting = True
            time.sleep(poll if left is None else min(poll, max(left, 0.0)))
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
                optuna.storages.fail_stale_trials(study)
            continue
        waiting = False
        attempts -= 1
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
            study.optimize(objective, n_trials=1, timeout=left, catch=(TrialFailed,),
                           callbacks=[cap], gc_after_trial=True)  # fmt: skip
    return study


def find_study(target: str, runs_dir: Path) -> dict[str, Any]:
    """study.json of a study folder, or of the study of that name under the runs folder."""
    path = Path(target).expanduser()
    if (path / STUDY_FILE).is_file():
        return read_json(path / STUDY_FILE)
    found = sorted(runs_dir.glob(f"*/*/hpo/{target}/{STUDY_FILE}")) if runs_dir.is_dir() else []
    if not found:
        raise HpoError(
            f"no study {target!r}: neither a study folder nor runs/*/*/hpo/{target}/ under "
            f"{runs_dir} (run `toolkit hpo RECIPE` first)"
        )
    if len(found) > 1:
        folders = ", ".join(str(p.parent) for p in found)
        raise HpoError(f"study name {target!r} is ambiguous: {folders}; give the folder")
    return read_json(found[0])
