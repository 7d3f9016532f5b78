"""The pieces of a training session, shared by `train`, `lr-find`, `--auto-batch-size` and
`test`: the device and DDP layout, the datamodule, the task module, and Lightning Trainers
(the full one with the engine's callbacks, and a bare one for the tuners)."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint
from rich.console import Console

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
from toolkit.engine.module import TaskModule
from toolkit.engine.resume import RandomState, ResumePoint
from toolkit.engine.rundir import RunDir
from toolkit.errors import TrainingError

RUN_DIR_ENV = "TOOLKIT_RUN_DIR"  # the run folder, handed to the other DDP ranks


def is_rank_zero() -> bool:
    """Whether this is the process that writes files: the only one, or rank 0 of a
    multi-process run (Lightning's DDP children, torchrun, SLURM tasks)."""
    for key in ("RANK", "SLURM_PROCID", "LOCAL_RANK", "NODE_RANK"):
        value = os.environ.get(key, "")
        if value.isdigit() and int(value) != 0:
            return False
    return True


def precision(requested: str, accelerator: str) -> str:
    # float16 autocast is CUDA-only; bfloat16 is the CPU's mixed precision.
    return "bf16-mixed" if accelerator == "cpu" and requested == "16-mixed" else requested


@dataclass(frozen=True)
class Layout:
    """Where training runs: Lightning's accelerator, devices, nodes and strategy."""

    accelerator: str
    devices: list[int] | int
    num_nodes: int
    strategy: str

    @property
    def processes(self) -> int:
        per_node = len(self.devices) if isinstance(self.devices, list) else self.devices
        return per_node * self.num_nodes


def layout(recipe: Recipe, settings: Settings) -> Layout:
    """The device setting and `train.devices / num_nodes / strategy`, checked against what
    this machine has."""
    cfg = recipe.train
    accelerator, devices = resolve_device(settings.device)
    if cfg.devices is not None:
        if accelerator == "gpu":
            import torch

            have = torch.cuda.device_count()
            if cfg.devices > have:
                raise TrainingError(
                    f"train.devices={cfg.devices} but this machine has {have} CUDA device(s)"
                )
        else:
            have = os.cpu_count() or 1
            if cfg.devices > have:
                raise TrainingError(
                    f"train.devices={cfg.devices} CPU processes but this machine has {have} "
                    "cores; use at most that many"
                )
        devices = cfg.devices
    strategy = cfg.strategy
    per_node = len(devices) if isinstance(devices, list) else devices
    if strategy == "auto" and (per_node > 1 or cfg.num_nodes > 1):
        strategy = "ddp"
    return Layout(accelerator, devices, cfg.num_nodes, strategy)


def build_module(recipe: Recipe, competition: Any, stats: dict[str, Any]) -> TaskModule:
    return TaskModule(
        competition.build_model(recipe, stats),
        competition.build_loss(recipe),
        competition.metric,
        recipe.train,
    )


@dataclass
class Session:
    """A Trainer with the engine's callbacks, and the callbacks train() reads afterwards."""

    trainer: L.Trainer
    best: ModelCheckpoint
    stop: ResumePoint
    evaluator: Evaluator | None
    early: EarlyStopping | None


def build_session(
    recipe: Recipe,
    competition: Any,
    run: RunDir,
    where: Layout,
    console: Console,
    extra_callbacks: Sequence[L.Callback] = (),
    debug: bool = False,
) -> Session:
    """The full Trainer: best/last/interval checkpoints, history, evaluation, early stopping,
    progress, graceful stop; `debug` runs one batch of each loop (Lightning's fast_dev_run)."""
    cfg = recipe.train
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
    if cfg.checkpoint_every_n_epochs is not None:
        callbacks.append(
            ModelCheckpoint(
                dirpath=run.checkpoints,
                filename="epoch-{epoch}",
                auto_insert_metric_name=False,
                every_n_epochs=cfg.checkpoint_every_n_epochs,
                save_top_k=-1,
                save_on_train_epoch_end=True,
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
    plugins: list[Any] = [AtomicCheckpointIO()]
    from lightning.pytorch.plugins.environments import SLURMEnvironment

    if SLURMEnvironment.detect():
        # ResumePoint saves an exact last.ckpt on SIGUSR1 and requeues; not Lightning's hpc_ckpt
        plugins.append(SLURMEnvironment(auto_requeue=False))
    loggers: list[Any] = []
    if "tensorboard" in cfg.loggers:
        from lightning.pytorch.loggers import TensorBoardLogger

        loggers.append(TensorBoardLogger(save_dir=run.path, name="tensorboard", version=""))
    trainer = L.Trainer(
        max_epochs=cfg.epochs,
        max_time=cfg.time_budget,
        accelerator=where.accelerator,
        devices=where.devices,
        num_nodes=where.num_nodes,
        strategy=where.strategy,
        # ResumableLoader shards the epoch itself under DDP and stays resumable.
        use_distributed_sampler=False,
        precision=precision(cfg.precision, where.accelerator),
        gradient_clip_val=cfg.gradient_clip_val,
        accumulate_grad_batches=cfg.accumulate_grad_batches,
        check_val_every_n_epoch=cfg.val_every_n_epochs,
        deterministic="warn" if cfg.deterministic else False,
        callbacks=callbacks,
        plugins=plugins,
        logger=loggers or False,
        log_every_n_steps=1,
        enable_progress_bar=interactive,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        default_root_dir=run.path,
        fast_dev_run=1 if debug else False,
    )
    return Session(trainer, best, stop, evaluator, early)


def bare_trainer(recipe: Recipe, where: Layout, root: Path, max_epochs: int = 1000) -> L.Trainer:
    """A Trainer without the engine's callbacks, checkpoints or logs (for Lightning's tuners)."""
    return L.Trainer(
        max_epochs=max_epochs,
        accelerator=where.accelerator,
        devices=1,
        precision=precision(recipe.train.precision, where.accelerator),
        gradient_clip_val=recipe.train.gradient_clip_val,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        default_root_dir=root,
    )


def scratch_dir(prefix: str) -> tempfile.TemporaryDirectory:
    """A temporary folder for a tuner's own checkpoints (removed afterwards)."""
    return tempfile.TemporaryDirectory(prefix=f"toolkit-{prefix}-")


def scored(
    prefix: str, metric: Any, datamodule: L.LightningDataModule, y_true: Any, y_pred: Any
) -> dict[str, Any]:
    """The metric's name and direction, `<prefix>_<metric>` for these predictions, and the
    datamodule's trivial baselines (if it has any) scored the same way."""
    result: dict[str, Any] = {
        "metric": metric.name,
        "mode": metric.mode,
        f"{prefix}_{metric.name}": float(metric.fn(y_true, y_pred)),
    }
    baselines = getattr(datamodule, "baselines", None)
    if baselines is not None:
        result["baselines"] = {
            name: float(metric.fn(y_true, pred)) for name, pred in baselines(y_true).items()
        }
    return result
