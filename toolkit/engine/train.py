"""Train a recipe into a run folder: seed, data, model, Lightning Trainer, metrics."""

from __future__ import annotations

import os
import signal
import socket
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint, Timer
from rich.console import Console

from toolkit.competitions import get_competition
from toolkit.config.schema import Recipe
from toolkit.config.settings import Settings
from toolkit.engine.callbacks import (
    Evaluator,
    FiniteLossGuard,
    HistoryWriter,
    ProgressBar,
    Throughput,
)
from toolkit.engine.checkpoint_io import AtomicCheckpointIO
from toolkit.engine.device import resolve_device
from toolkit.engine.interrupts import SignalInterrupt, signals_raise
from toolkit.engine.module import TaskModule
from toolkit.engine.resume import RandomState, ResumePoint, StopRequested
from toolkit.engine.rundir import RunDir, new_run_dir
from toolkit.errors import TrainingError, TrainingInterrupted
from toolkit.fileio import write_json, write_npy
from toolkit.logs import quiet_libraries


def _precision(requested: str, accelerator: str) -> str:
    # float16 autocast is CUDA-only; bfloat16 is the CPU's mixed precision.
    return "bf16-mixed" if accelerator == "cpu" and requested == "16-mixed" else requested


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
) -> RunDir:
    """Train `recipe` (or continue `resume`, with its saved recipe and `resume_changes` to the
    train section) and return its run folder with metrics.json.

    `run` names a fresh folder to train into (default: a new one under the runs folder);
    `extra_callbacks` join the engine's own (e.g. a search's pruning callback). Whatever ends
    the call, status.json says so: `trained`, `interrupted` (signal, with where it stopped) or
    `failed` (with the error)."""
    console = console or Console()
    quiet_libraries()
    competition = get_competition(recipe.competition)
    run = resume or run or new_run_dir(settings.runs_dir, recipe)
    if resume is None:
        run.save_recipe(recipe, command)
    else:
        recipe = resume_recipe(run, dict(resume_changes or {}))
    seed = recipe.train.seed if recipe.train.seed is not None else settings.seed
    resume_hint = f"toolkit run {recipe.name}{' --smoke' if recipe.smoke_applied else ''} --resume"
    ckpt_path = run.resume_checkpoint() if resume is not None else None
    if ckpt_path is not None:
        check_checkpoint(ckpt_path)  # before the status changes: the run stays interrupted
    run.set_status("training", seed=seed, pid=os.getpid(), host=socket.gethostname())
    phase = ["data preparation"]
    try:
        with signals_raise():
            accelerator, devices = resolve_device(settings.device)
            check_model = getattr(competition, "check_model", None)
            if check_model is not None:
                check_model(recipe)  # a wrong model name or argument fails before any data
            L.seed_everything(seed, workers=True, verbose=False)
            datamodule = competition.build_datamodule(recipe, settings)
            datamodule.setup("fit")
            phase[0] = "model set-up"
            return _fit(
                recipe, competition, run, datamodule, seed, accelerator, devices,
                ckpt_path, console, extra_callbacks, resume_hint, phase,
            )  # fmt: skip
    except (SignalInterrupt, KeyboardInterrupt) as stop:
        name = stop.name if isinstance(stop, SignalInterrupt) else "SIGINT"
        run.set_status("interrupted", signal=name, during=phase[0])
        keep = (
            "finished cache entries are kept"
            if phase[0] == "data preparation"
            else (f"the checkpoints in {run.checkpoints} are kept")
        )
        raise TrainingInterrupted(
            f"stopped by {name} during {phase[0]}; {keep}; continue with: {resume_hint}",
            signum=getattr(signal, name),
        ) from None
    except TrainingInterrupted:
        raise
    except BaseException as exc:
        run.set_status("failed", error=f"{type(exc).__name__}: {exc}".strip(), during=phase[0])
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


RESUMABLE_TRAIN_KEYS = ("time_budget", "checkpoint_every")


def _fit(
    recipe: Recipe,
    competition: Any,
    run: RunDir,
    datamodule: L.LightningDataModule,
    seed: int,
    accelerator: str,
    devices: list[int] | int,
    ckpt_path: Path | None,
    console: Console,
    extra_callbacks: Sequence[L.Callback],
    resume_hint: str,
    phase: list[str],
) -> RunDir:
    cfg = recipe.train
    stats: dict[str, Any] = dict(datamodule.stats)
    write_json(run.stats_file, stats)
    write_npy(run.reference_inputs, datamodule.reference_inputs(recipe.export.reference_batch))

    module = TaskModule(
        competition.build_model(recipe, stats),
        competition.build_loss(recipe),
        competition.metric,
        cfg,
    )
    mode = competition.metric.mode
    interactive = console.is_terminal
    evaluate = getattr(competition, "evaluate", None)
    evaluator = None
    if evaluate is not None:
        evaluator = Evaluator(
            lambda model, dm: evaluate(model, dm, recipe), run, cfg.eval_every_n_epochs, mode,
            console,
        )  # fmt: skip
    best = ModelCheckpoint(
        dirpath=run.checkpoints,
        filename="best",
        monitor=Evaluator.MONITOR if evaluator is not None else "val_score",
        mode=mode,
        save_top_k=1,
        save_last=False,  # last.ckpt belongs to ResumePoint
        enable_version_counter=False,
        auto_insert_metric_name=False,
        # Evaluation happens at the end of the training epoch: save after it, not at validation.
        save_on_train_epoch_end=True if evaluator is not None else None,
    )
    stop = ResumePoint(run.last_checkpoint)
    throughput = Throughput()
    callbacks: list[L.Callback] = [best, stop, RandomState(), FiniteLossGuard(), throughput]
    if evaluator is not None:
        callbacks.append(evaluator)
    callbacks.append(
        HistoryWriter(
            run,
            competition.metric.name,
            echo=not interactive,
            console=console,
            throughput=throughput,
            evaluator=evaluator,
        )
    )
    if cfg.checkpoint_every is not None:
        callbacks.append(
            ModelCheckpoint(
                dirpath=run.checkpoints,
                filename="interval",
                train_time_interval=cfg.checkpoint_every,
                save_top_k=1,
                enable_version_counter=False,
            )
        )
    early = None
    if cfg.early_stopping_patience is not None:
        early = EarlyStopping(monitor="val_score", mode=mode, patience=cfg.early_stopping_patience)
        callbacks.append(early)
    if interactive:
        callbacks.append(ProgressBar(throughput))
    callbacks.extend(extra_callbacks)

    trainer = L.Trainer(
        max_epochs=cfg.epochs,
        max_time=cfg.time_budget,
        accelerator=accelerator,
        devices=devices,
        precision=_precision(cfg.precision, accelerator),
        gradient_clip_val=cfg.gradient_clip_val,
        accumulate_grad_batches=cfg.accumulate_grad_batches,
        check_val_every_n_epoch=cfg.val_every_n_epochs,
        deterministic="warn" if cfg.deterministic else False,
        callbacks=callbacks,
        plugins=[AtomicCheckpointIO()],
        logger=False,
        enable_progress_bar=interactive,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        default_root_dir=run.path,
    )
    started = time.monotonic()
    phase[0] = "training"
    stop.install()
    try:
        trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt_path)
    except StopRequested:
        pass
    finally:
        stop.restore()
    if stop.received is not None:
        epoch, step = stop.saved_at or (trainer.current_epoch, trainer.global_step)
        run.set_status("interrupted", signal=stop.received, epoch=epoch, step=step,
                       checkpoint=str(run.last_checkpoint))  # fmt: skip
        raise TrainingInterrupted(
            f"stopped by {stop.received} at epoch {epoch} (step {step}); checkpoint saved to "
            f"{run.last_checkpoint}; continue with: {resume_hint}",
            signum=getattr(signal, stop.received),
        )

    timer = (
        next(cb for cb in trainer.callbacks if isinstance(cb, Timer)) if cfg.time_budget else None
    )
    if timer is not None and (timer.time_remaining("train") or 0) <= 0:
        reason = "time budget"
    elif early is not None and early.stopped_epoch > 0:
        reason = "early stopping"
    else:
        reason = "max epochs"
    if not best.best_model_path:
        raise TrainingError(
            f"{run.path}: training stopped before any validation, so there is no best "
            "checkpoint; raise train.time_budget or lower train.val_every_n_epochs"
        )

    phase[0] = "final validation"
    trainer.validate(module, datamodule=datamodule, ckpt_path=best.best_model_path, verbose=False)
    y_true, y_pred = module.last_val_predictions
    metric = competition.metric
    metrics: dict[str, Any] = {
        "metric": metric.name,
        "mode": mode,
        f"val_{metric.name}": float(metric.fn(y_true, y_pred)),
        "val_samples": len(y_true),
        "epochs_completed": trainer.current_epoch,
        "global_step": trainer.global_step,
        "stopped_by": reason,
        "train_seconds": round(time.monotonic() - started, 2),
        "seed": seed,
        "best_checkpoint": best.best_model_path,
    }
    if evaluator is not None and evaluator.best is not None:
        details = evaluator.best["details"]
        metrics.update(
            eval_score=evaluator.best["score"],
            eval_epoch=evaluator.best["epoch"],
            eval_predictions=str(run.path / "eval_predictions.best.json"),
            eval_details={k: v for k, v in details.items() if k != "baselines"},
            eval_baselines=details.get("baselines", {}),
        )
    baselines = getattr(datamodule, "baselines", None)
    if baselines is not None:
        metrics["baselines"] = {
            name: float(metric.fn(y_true, pred)) for name, pred in baselines(y_true).items()
        }
    after_training = getattr(competition, "after_training", None)
    if after_training is not None:
        metrics.update(after_training(module.model, datamodule, recipe, run))
    write_json(run.metrics_file, metrics)
    run.set_status("trained", stopped_by=reason, epoch=trainer.current_epoch,
                   step=trainer.global_step)  # fmt: skip
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
