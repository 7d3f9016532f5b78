"""Train a recipe into a run folder: seed, data, model, Lightning Trainer, metrics."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import Timer
from rich.console import Console

from toolkit.competitions import get_competition
from toolkit.config.schema import Recipe
from toolkit.config.settings import Settings
from toolkit.engine.interrupts import SignalInterrupt, requeue_slurm_job, signals_raise
from toolkit.engine.resume import StopRequested
from toolkit.engine.rundir import RunDir, new_run_dir
from toolkit.engine.session import (
    RUN_DIR_ENV,
    Layout,
    bare_trainer,
    build_module,
    build_session,
    is_rank_zero,
    layout,
    scored,
)
from toolkit.errors import TrainingError, TrainingInterrupted
from toolkit.fileio import write_json, write_npy
from toolkit.logs import quiet_libraries

RESUMABLE_TRAIN_KEYS = ("time_budget", "checkpoint_every")


def train(
    recipe: Recipe,
    settings: Settings,
    *,
    command: str,
    resume: RunDir | None = None,
    console: Console | None = None,
    run: RunDir | None = None,
    extra_callbacks: Sequence[L.Callback] = (),
    resume_changes: dict[str, Any] | None = None,
    debug: bool = False,
    auto_batch_size: int | None = None,
) -> RunDir:
    """Train `recipe` (or continue `resume`, with its saved recipe and `resume_changes` to the
    train section) and return its run folder with metrics.json.

    `run` names a fresh folder to train into (default: a new one under the runs folder);
    `extra_callbacks` join the engine's own (e.g. a search's pruning callback); `debug` runs
    one batch of each loop; `auto_batch_size` (a cap) first finds the largest batch size that
    fits, up to the cap. Whatever ends the call, status.json says so: `trained`,
    `interrupted` (signal, with where it stopped) or `failed` (with the error). Under DDP the
    other ranks train in the same folder and only rank 0 writes files."""
    console = console or Console()
    quiet_libraries()
    competition = get_competition(recipe.competition)
    writer = is_rank_zero()
    if not writer and os.environ.get(RUN_DIR_ENV):
        run = RunDir(Path(os.environ[RUN_DIR_ENV]))  # a DDP child: rank 0's folder
    run = resume or run or new_run_dir(settings.runs_dir, recipe)
    if resume is None and writer:
        run.save_recipe(recipe, command)
    elif resume is not None:
        recipe = resume_recipe(run, dict(resume_changes or {}))
    seed = recipe.train.seed if recipe.train.seed is not None else settings.seed
    resume_hint = f"toolkit run {recipe.name}{' --smoke' if recipe.smoke_applied else ''} --resume"
    ckpt_path = run.resume_checkpoint() if resume is not None else None
    if ckpt_path is not None:
        check_checkpoint(ckpt_path)  # before the status changes: the run stays interrupted
    status = run.set_status if writer else (lambda *a, **k: None)
    status("training", seed=seed, pid=os.getpid(), host=socket.gethostname())
    phase = ["data preparation"]
    try:
        with signals_raise():
            where = layout(recipe, settings)
            if auto_batch_size and where.processes > 1:
                raise TrainingError(
                    "--auto-batch-size needs one device: find the size without DDP "
                    "(train.devices=1), then set train.batch_size"
                )
            check_model = getattr(competition, "check_model", None)
            if check_model is not None:
                check_model(recipe)  # a wrong model name or argument fails before any data
            L.seed_everything(seed, workers=True, verbose=False)
            datamodule = competition.build_datamodule(recipe, settings)
            datamodule.setup("fit")
            phase[0] = "model set-up"
            stats: dict[str, Any] = dict(datamodule.stats)
            if writer:
                write_json(run.stats_file, stats)
                reference = datamodule.reference_inputs(recipe.export.reference_batch)
                write_npy(run.reference_inputs, reference)
            if auto_batch_size:
                phase[0] = "batch size search"
                recipe = _find_batch_size(recipe, competition, datamodule, stats, where,
                                          auto_batch_size, run, command, console)  # fmt: skip
            phase[0] = "training"
            return _fit(recipe, competition, run, datamodule, stats, seed, where, ckpt_path,
                        console, extra_callbacks, resume_hint, phase, debug, status)  # fmt: skip
    except (SignalInterrupt, KeyboardInterrupt) as stop:
        name = stop.name if isinstance(stop, SignalInterrupt) else "SIGINT"
        requeued = requeue_slurm_job() if name == "SIGUSR1" and writer else None
        status("interrupted", signal=name, during=phase[0], requeued=requeued)
        if requeued:
            resume_hint = f"SLURM job {requeued} was requeued and starts again"
        keep = (
            "finished cache entries are kept"
            if phase[0] == "data preparation"
            else f"the checkpoints in {run.checkpoints} are kept"
        )
        if run.resume_checkpoint() is None and not requeued:
            resume_hint = resume_hint.removesuffix(" --resume")  # nothing to resume: start over
        raise TrainingInterrupted(
            f"stopped by {name} during {phase[0]}; {keep}; continue with: {resume_hint}",
            signum=getattr(signal, name),
        ) from None
    except TrainingInterrupted:
        raise
    except BaseException as exc:
        # (if even that cannot be written, e.g. the disk is still full, the dead-process check
        # of RunDir.status tells the truth later)
        with contextlib.suppress(OSError):
            status("failed", error=f"{type(exc).__name__}: {exc}".strip(), during=phase[0])
        raise


def resume_recipe(run: RunDir, changes: dict[str, Any]) -> Recipe:
    """The run's saved recipe with the runtime controls `--resume --set` may change (the time
    budget, the checkpoint interval: `RESUMABLE_TRAIN_KEYS`) replaced, validated."""
    saved = run.recipe()
    unknown = sorted(set(changes) - set(RESUMABLE_TRAIN_KEYS))
    if unknown:
        raise TrainingError(f"--resume cannot change train.{unknown[0]}")
    if not changes:
        return saved
    train_cfg = type(saved.train).model_validate({**saved.train.model_dump(), **changes})
    return saved.model_copy(update={"train": train_cfg})


def with_train(recipe: Recipe, **changes: Any) -> Recipe:
    """A copy of `recipe` with train keys replaced (validated)."""
    train_cfg = type(recipe.train).model_validate({**recipe.train.model_dump(), **changes})
    return recipe.model_copy(update={"train": train_cfg})


def _find_batch_size(
    recipe: Recipe,
    competition: Any,
    datamodule: L.LightningDataModule,
    stats: dict[str, Any],
    where: Layout,
    cap: int,
    run: RunDir,
    command: str,
    console: Console,
) -> Recipe:
    """Lightning's batch-size finder (power mode, from the recipe's size up to `cap` and the
    training set's size) on a bare trainer; the run's recipe records what it found."""
    from lightning.pytorch.tuner import Tuner

    from toolkit.engine.session import scratch_dir

    start = recipe.train.batch_size
    n_train = len(datamodule.train_dataloader().dataset)
    cap = max(start, min(cap, n_train))
    module = build_module(recipe, competition, stats)
    with scratch_dir("batch-size") as tmp:
        trainer = bare_trainer(recipe, where, Path(tmp))
        found = Tuner(trainer).scale_batch_size(
            module, datamodule=datamodule, mode="power", init_val=start, max_val=cap,
            steps_per_trial=2,
        )  # fmt: skip
    size = int(found or start)
    datamodule.batch_size = size
    console.print(f"batch size: {size} (searched {start}..{cap})")
    recipe = with_train(recipe, batch_size=size)
    run.save_recipe(recipe, f"{command} --set train.batch_size={size}  # --auto-batch-size found")
    return recipe


def _fit(
    recipe: Recipe,
    competition: Any,
    run: RunDir,
    datamodule: L.LightningDataModule,
    stats: dict[str, Any],
    seed: int,
    where: Layout,
    ckpt_path: Path | None,
    console: Console,
    extra_callbacks: Sequence[L.Callback],
    resume_hint: str,
    phase: list[str],
    debug: bool,
    status: Any,
) -> RunDir:
    cfg = recipe.train
    writer = is_rank_zero()
    module = build_module(recipe, competition, stats)
    session = build_session(recipe, competition, run, where, console, extra_callbacks, debug)
    trainer, best, stop = session.trainer, session.best, session.stop
    if where.processes > 1:
        os.environ[RUN_DIR_ENV] = str(run.path)  # the ranks Lightning starts train here too
    started = time.monotonic()
    stop.install()
    try:
        trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt_path)
    except StopRequested:
        pass
    finally:
        stop.restore()
    if stop.received is not None:
        epoch, step = stop.saved_at or (trainer.current_epoch, trainer.global_step)
        requeued = requeue_slurm_job() if stop.received == "SIGUSR1" and writer else None
        status("interrupted", signal=stop.received, epoch=epoch, step=step,
               checkpoint=str(run.last_checkpoint), requeued=requeued)  # fmt: skip
        if requeued:
            resume_hint = f"SLURM job {requeued} was requeued and resumes from it"
        raise TrainingInterrupted(
            f"stopped by {stop.received} at epoch {epoch} (step {step}); checkpoint saved to "
            f"{run.last_checkpoint}; continue with: {resume_hint}",
            signum=getattr(signal, stop.received, signal.SIGTERM),
        )
    if not trainer.is_global_zero:
        return run  # rank 0 validates, scores and writes the results

    timer = next((cb for cb in trainer.callbacks if isinstance(cb, Timer)), None)
    if debug:
        reason = "debug (one batch of each loop)"
    elif timer is not None and (timer.time_remaining("train") or 0) <= 0:
        reason = "time budget"
    elif session.early is not None and session.early.stopped_epoch > 0:
        reason = "early stopping"
    else:
        reason = "max epochs"
    best_path = best.best_model_path
    if debug and not best_path and run.last_checkpoint.is_file():
        # fast_dev_run keeps no best checkpoint; the one batch's weights stand in for it
        shutil.copyfile(run.last_checkpoint, run.best_checkpoint)
        best_path = str(run.best_checkpoint)
    if not best_path:
        raise TrainingError(
            f"{run.path}: training stopped before any validation, so there is no best "
            "checkpoint; raise train.time_budget or lower train.val_every_n_epochs"
        )

    phase[0] = "final validation"
    if where.processes > 1:
        # One process scores the whole validation set; the DDP group is done with.
        import torch.distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()
        from toolkit.engine.session import scratch_dir

        with scratch_dir("validate") as tmp:
            single = Layout(where.accelerator, 1, 1, "auto")
            bare_trainer(recipe, single, Path(tmp)).validate(
                module, datamodule=datamodule, ckpt_path=best_path, verbose=False
            )
    else:
        trainer.validate(module, datamodule=datamodule, ckpt_path=best_path, verbose=False)
    y_true, y_pred = module.last_val_predictions
    metrics = scored("val", competition.metric, datamodule, y_true, y_pred)
    metrics.update({
        "val_samples": len(y_true),
        "epochs_completed": trainer.current_epoch,
        "global_step": trainer.global_step,
        "stopped_by": reason,
        "train_seconds": round(time.monotonic() - started, 2),
        "seed": seed,
        "processes": where.processes,
        "batch_size": cfg.batch_size,
        "best_checkpoint": best_path,
    })  # fmt: skip
    evaluator = session.evaluator
    if evaluator is not None and evaluator.best is not None:
        details = evaluator.best["details"]
        metrics.update(
            eval_score=evaluator.best["score"],
            eval_epoch=evaluator.best["epoch"],
            eval_predictions=str(run.path / "eval_predictions.best.json"),
            eval_details={k: v for k, v in details.items() if k != "baselines"},
            eval_baselines=details.get("baselines", {}),
        )
    after_training = getattr(competition, "after_training", None)
    if after_training is not None:
        metrics.update(after_training(module.model, datamodule, recipe, run))
    write_json(run.metrics_file, metrics)
    status("trained", stopped_by=reason, epoch=trainer.current_epoch, step=trainer.global_step)
    return run


def check_checkpoint(path: Path) -> None:
    """A checkpoint that cannot be read (truncated, not a checkpoint) is one line naming it."""
    import torch

    try:
        state = torch.load(path, map_location="cpu", weights_only=False, mmap=True)
    except Exception as exc:
        raise TrainingError(
            f"{path}: cannot read this checkpoint ({type(exc).__name__}: {exc}); it is "
            "truncated or not a checkpoint: delete it to resume from an older one, or start "
            "a new run without --resume"
        ) from None
    if not isinstance(state, dict) or "loops" not in state:
        raise TrainingError(f"{path}: not a training checkpoint (no loop state); cannot resume")
