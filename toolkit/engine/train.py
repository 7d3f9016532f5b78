"""Train a recipe into a run folder: seed, data, model, Lightning Trainer, metrics."""

from __future__ import annotations

import time
from collections.abc import Sequence
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
    GracefulStop,
    HistoryWriter,
    ProgressBar,
    Throughput,
)
from toolkit.engine.checkpoint_io import AtomicCheckpointIO
from toolkit.engine.device import resolve_device
from toolkit.engine.module import TaskModule
from toolkit.engine.rundir import RunDir, new_run_dir
from toolkit.errors import TrainingInterrupted
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
) -> RunDir:
    """Train `recipe` (or continue `resume`) and return its run folder with metrics.json.

    `run` names a fresh folder to train into (default: a new one under the runs folder);
    `extra_callbacks` join the engine's own (e.g. a search's pruning callback)."""
    console = console or Console()
    quiet_libraries()
    competition = get_competition(recipe.competition)
    run = resume or run or new_run_dir(settings.runs_dir, recipe)
    if resume is None:
        run.save_recipe(recipe, command)
    else:
        recipe = run.recipe()
    cfg = recipe.train
    seed = cfg.seed if cfg.seed is not None else settings.seed
    L.seed_everything(seed, workers=True, verbose=False)
    run.set_status("training", seed=seed)
    try:
        datamodule = competition.build_datamodule(recipe, settings)
        datamodule.setup("fit")
    except Exception as exc:
        run.set_status("failed", error=f"{type(exc).__name__}: {exc}")
        raise
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
        save_last=True,
        enable_version_counter=False,
        auto_insert_metric_name=False,
        # Evaluation happens at the end of the training epoch: save after it, not at validation.
        save_on_train_epoch_end=True if evaluator is not None else None,
    )
    stop = GracefulStop(run.last_checkpoint)
    throughput = Throughput()
    callbacks: list[L.Callback] = [best, stop, FiniteLossGuard(), throughput]
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

    accelerator, devices = resolve_device(settings.device)
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
    ckpt_path = run.resume_checkpoint() if resume is not None else None
    started = time.monotonic()
    stop.install()
    try:
        trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt_path)
    except Exception as exc:
        run.set_status("failed", error=f"{type(exc).__name__}: {exc}")
        raise
    finally:
        stop.restore()
    if stop.received is not None:
        epoch, step = stop.saved_at or (trainer.current_epoch, trainer.global_step)
        run.set_status("interrupted", signal=stop.received, epoch=epoch, step=step)
        smoke = " --smoke" if recipe.smoke_applied else ""
        raise TrainingInterrupted(
            f"stopped by {stop.received} at epoch {epoch} (step {step}); checkpoint saved to "
            f"{run.last_checkpoint}; continue with: toolkit run {recipe.name}{smoke} --resume"
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

    trainer.validate(module, datamodule=datamodule, ckpt_path=best.best_model_path, verbose=False)
    y_true, y_pred = module.last_val_predictions
    metric = competition.metric
    metrics: dict[str, Any] = {
        "metric": metric.name,
        "mode": mode,
        f"val_{metric.name}": float(metric.fn(y_true, y_pred)),
        "val_samples": len(y_true),
        "epochs_completed": trainer.current_epoch,
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
    run.set_status("trained")
    return run
