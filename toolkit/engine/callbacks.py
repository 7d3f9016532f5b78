"""Callbacks the engine adds to every run: history, non-finite loss guard, graceful stop."""

from __future__ import annotations

import csv
import io
import math
import signal
import time
from pathlib import Path
from typing import Any

import lightning as L
from rich.console import Console

from toolkit.engine.rundir import RunDir
from toolkit.errors import TrainingError
from toolkit.fileio import read_json, write_json, write_text


def _scalar(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


class HistoryWriter(L.Callback):
    """Writes history.csv and history.json after every epoch (atomically), and on resume keeps
    the rows of the epochs already done. Prints one line per epoch when `echo` is set."""

    def __init__(self, run: RunDir, metric_name: str, echo: bool, console: Console):
        self.run = run
        self.metric_name = metric_name
        self.echo = echo
        self.console = console
        self.rows: list[dict[str, Any]] = []
        self._epoch_start = time.monotonic()

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # After a resume, the loop state (current_epoch) is restored by now.
        if self.run.history_json.is_file():
            done = trainer.current_epoch
            self.rows = [r for r in read_json(self.run.history_json) if r["epoch"] < done]

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._epoch_start = time.monotonic()

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        metrics = trainer.callback_metrics
        lr = trainer.optimizers[0].param_groups[0]["lr"] if trainer.optimizers else None
        row = {
            "epoch": trainer.current_epoch,
            "step": trainer.global_step,
            "train_loss": _scalar(metrics.get("train_loss")),
            "val_loss": _scalar(metrics.get("val_loss")),
            f"val_{self.metric_name}": _scalar(metrics.get(f"val_{self.metric_name}")),
            "lr": lr,
            "seconds": round(time.monotonic() - self._epoch_start, 3),
        }
        self.rows.append(row)
        write_json(self.run.history_json, self.rows)
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=list(row))
        writer.writeheader()
        writer.writerows(self.rows)
        write_text(self.run.history_csv, buf.getvalue())
        if self.echo:
            shown = "  ".join(
                f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}"
                for k, v in row.items()
                if v is not None and k not in ("step", "lr")
            )
            total = trainer.max_epochs or 0
            eta = row["seconds"] * max(total - trainer.current_epoch - 1, 0)
            self.console.print(f"[dim]{shown}  eta {eta:.0f}s[/]")


class FiniteLossGuard(L.Callback):
    """Stops training with a clear message as soon as the loss is NaN or infinite."""

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
        if loss is not None and not math.isfinite(float(loss)):
            raise TrainingError(
                f"loss became {float(loss)} at epoch {trainer.current_epoch}, batch {batch_idx}: "
                "lower train.lr, set train.gradient_clip_val, or check the data for NaN"
            )


class GracefulStop(L.Callback):
    """On SIGTERM or Ctrl-C: finish the current batch, save last.ckpt, stop cleanly.

    A second signal while stopping aborts at once. Call `install()` before `trainer.fit`
    and `restore()` after it.
    """

    def __init__(self, checkpoint: Path):
        self.checkpoint = checkpoint
        self.received: str | None = None
        self.saved_at: tuple[int, int] | None = None
        self._previous: dict[int, Any] = {}

    def _handle(self, signum: int, frame: Any) -> None:
        if self.received is not None:
            raise KeyboardInterrupt
        self.received = signal.Signals(signum).name

    def install(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGINT):
            self._previous[sig] = signal.signal(sig, self._handle)

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # Just before training, Lightning wraps SIGTERM with a handler that exits at the next
        # batch without a checkpoint (status 0); take the signals back so ours decides.
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._handle)

    def restore(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()

    def _stop(self, trainer: L.Trainer) -> None:
        if self.received is None or self.saved_at is not None:
            return
        trainer.save_checkpoint(self.checkpoint)
        self.saved_at = (trainer.current_epoch, trainer.global_step)
        trainer.should_stop = True

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self._stop(trainer)

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        self._stop(trainer)
