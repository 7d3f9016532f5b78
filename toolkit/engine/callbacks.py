"""Callbacks the engine adds to every run: history, progress (samples/s, ETA within the time
budget), competition evaluation every N epochs, non-finite loss guard (signals and last.ckpt:
`toolkit.engine.resume`)."""

from __future__ import annotations

import csv
import io
import math
import time
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import RichProgressBar, Timer
from rich.console import Console

from toolkit.competitions.protocol import EvalResult
from toolkit.engine.rundir import RunDir
from toolkit.errors import TrainingError
from toolkit.fileio import read_json, write_json, write_text


def _scalar(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _hms(seconds: float) -> str:
    seconds = max(0, round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


class Throughput(L.Callback):
    """Samples per second and the ETA of the run: the epochs left at the pace so far, capped by
    what remains of the time budget (Lightning's Timer) when there is one."""

    def __init__(self) -> None:
        self._start = time.monotonic()
        self._first_epoch = 0
        self._epoch_start = time.monotonic()
        self._epoch_samples = 0
        self.samples_per_second: float | None = None

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._start = time.monotonic()
        self._first_epoch = trainer.current_epoch

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._epoch_start = time.monotonic()
        self._epoch_samples = 0

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        first = batch[0] if isinstance(batch, list | tuple) else batch
        self._epoch_samples += len(first) if hasattr(first, "__len__") else 1
        elapsed = time.monotonic() - self._epoch_start
        if elapsed > 0:
            self.samples_per_second = self._epoch_samples / elapsed

    def eta_seconds(self, trainer: L.Trainer) -> float | None:
        """Seconds until training stops (max epochs or time budget, whichever comes first)."""
        done = trainer.current_epoch - self._first_epoch
        batches = trainer.num_training_batches
        if isinstance(batches, int | float) and batches and math.isfinite(batches):
            done += min(trainer.fit_loop.epoch_loop.batch_progress.current.completed / batches, 1)
        elapsed = time.monotonic() - self._start
        left = None
        if done > 0 and trainer.max_epochs is not None and trainer.max_epochs > 0:
            total = trainer.max_epochs - self._first_epoch
            left = elapsed / done * max(total - done, 0)
        timer = next((cb for cb in trainer.callbacks if isinstance(cb, Timer)), None)
        budget = timer.time_remaining("train") if timer is not None else None
        if budget is not None:
            left = budget if left is None else min(left, budget)
        return None if left is None else max(left, 0.0)

    def summary(self, trainer: L.Trainer) -> dict[str, str]:
        eta = self.eta_seconds(trainer)
        rate = self.samples_per_second
        return {
            "samples/s": "?" if rate is None else f"{rate:.1f}",
            "eta": "?" if eta is None else _hms(eta),
        }


class ProgressBar(RichProgressBar):
    """Lightning's rich bar plus samples/s and the ETA (time budget honoured)."""

    def __init__(self, throughput: Throughput):
        super().__init__()
        self.throughput = throughput

    def get_metrics(self, trainer: L.Trainer, pl_module: L.LightningModule) -> dict[str, Any]:
        return {**super().get_metrics(trainer, pl_module), **self.throughput.summary(trainer)}


class Evaluator(L.Callback):
    """Calls the competition's `evaluate` hook every N epochs (and on the last one), writes
    `<run>/eval_predictions.json` atomically, and publishes `eval_score` plus `eval_select` (the
    score, ties broken by lower val_loss) for the best checkpoint to monitor."""

    MONITOR = "eval_select"

    def __init__(
        self, evaluate: Any, run: RunDir, every_n_epochs: int, mode: str, console: Console
    ):
        self.evaluate = evaluate
        self.run = run
        self.every = every_n_epochs
        self.sign = 1.0 if mode == "max" else -1.0
        self.console = console
        self.best: dict[str, Any] | None = None
        self.last_score: float | None = None
        self._last_seconds = 0.0

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.best = state_dict.get("best")

    def _due(self, trainer: L.Trainer) -> bool:
        epoch = trainer.current_epoch + 1
        if epoch % self.every == 0 or trainer.should_stop:
            return True
        if trainer.max_epochs is not None and epoch >= trainer.max_epochs:
            return True
        timer = next((cb for cb in trainer.callbacks if isinstance(cb, Timer)), None)
        remaining = timer.time_remaining("train") if timer is not None else None
        epoch_seconds = time.monotonic() - getattr(self, "_epoch_start", time.monotonic())
        return remaining is not None and remaining < epoch_seconds + self._last_seconds

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._epoch_start = time.monotonic()
        self.last_score = None

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        metrics = trainer.callback_metrics
        worst = torch.tensor(-self.sign * math.inf, dtype=torch.float64)
        if not self._due(trainer):
            metrics.setdefault(self.MONITOR, worst)
            return
        started = time.monotonic()
        result: EvalResult = self.evaluate(pl_module.model, trainer.datamodule)
        self._last_seconds = time.monotonic() - started
        epoch = trainer.current_epoch
        record = {"epoch": epoch, "score": result.score, **result.details,
                  "predictions": result.predictions}  # fmt: skip
        writer = trainer.is_global_zero
        if writer:
            write_json(self.run.eval_predictions, record)
        val_loss = _scalar(metrics.get("val_loss")) or 0.0
        select = result.score - self.sign * 1e-6 * min(abs(val_loss), 100.0)
        metrics["eval_score"] = torch.tensor(result.score, dtype=torch.float64)
        metrics[self.MONITOR] = torch.tensor(select, dtype=torch.float64)
        self.last_score = result.score
        if self.best is None or self.sign * (select - self.best["select"]) > 0:
            self.best = {"score": result.score, "select": select, "epoch": epoch,
                         "details": result.details}  # fmt: skip
            if writer:
                write_json(self.run.path / "eval_predictions.best.json", record)
        if writer:
            self.console.print(
                f"[dim]eval epoch {epoch}: score {result.score:.4f} "
                f"({len(result.predictions)} items, {self._last_seconds:.1f}s)[/]"
            )


class HistoryWriter(L.Callback):
    """Writes history.csv and history.json after every epoch (atomically), and on resume keeps
    the rows of the epochs already done. Prints one line per epoch when `echo` is set."""

    def __init__(
        self,
        run: RunDir,
        metric_name: str,
        echo: bool,
        console: Console,
        throughput: Throughput | None = None,
        evaluator: Evaluator | None = None,
    ):
        self.run = run
        self.metric_name = metric_name
        self.echo = echo
        self.console = console
        self.throughput = throughput
        self.evaluator = evaluator
        self.rows: list[dict[str, Any]] = []
        self._epoch_start = time.monotonic()
        self._loss_sum, self._samples = 0.0, 0

    def state_dict(self) -> dict[str, Any]:
        # The epoch in progress, so a run resumed mid-epoch reports the whole epoch's loss.
        return {"loss_sum": self._loss_sum, "samples": self._samples}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._loss_sum = float(state_dict.get("loss_sum", 0.0))
        self._samples = int(state_dict.get("samples", 0))

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # After a resume, the loop state (current_epoch) is restored by now.
        if self.run.history_json.is_file():
            done = trainer.current_epoch
            self.rows = [r for r in read_json(self.run.history_json) if r["epoch"] < done]

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._epoch_start = time.monotonic()
        self._loss_sum, self._samples = 0.0, 0

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
        if loss is None:
            return
        first = batch[0] if isinstance(batch, list | tuple) else batch
        n = len(first) if hasattr(first, "__len__") else 1
        # Lightning hands back the loss divided by the accumulation factor.
        self._loss_sum += float(loss) * max(trainer.accumulate_grad_batches, 1) * n
        self._samples += n

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        metrics = trainer.callback_metrics
        lr = trainer.optimizers[0].param_groups[0]["lr"] if trainer.optimizers else None
        row = {
            "epoch": trainer.current_epoch,
            "step": trainer.global_step,
            "train_loss": self._loss_sum / self._samples
            if self._samples
            else _scalar(metrics.get("train_loss")),
            "val_loss": _scalar(metrics.get("val_loss")),
            f"val_{self.metric_name}": _scalar(metrics.get(f"val_{self.metric_name}")),
            "lr": lr,
            "seconds": round(time.monotonic() - self._epoch_start, 3),
        }
        for key, value in metrics.items():  # auxiliary losses (e.g. a domain head's)
            if key.startswith("train_") and key.endswith("_loss") and key not in row:
                row[key] = _scalar(value)
        if self.throughput is not None and self.throughput.samples_per_second is not None:
            row["samples_per_s"] = round(self.throughput.samples_per_second, 2)
        if self.evaluator is not None:
            row["eval_score"] = self.evaluator.last_score
        self.rows.append(row)
        if not trainer.is_global_zero:
            return  # under DDP, rank 0 writes the history
        write_json(self.run.history_json, self.rows)
        buf = io.StringIO()
        columns = list(dict.fromkeys(key for r in self.rows for key in r))  # every row's keys
        writer = csv.DictWriter(buf, fieldnames=columns)
        writer.writeheader()
        writer.writerows(self.rows)
        write_text(self.run.history_csv, buf.getvalue())
        if self.echo:
            shown = "  ".join(
                f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}"
                for k, v in row.items()
                if v is not None and k not in ("step", "lr", "samples_per_s")
            )
            if self.throughput is not None:
                progress = self.throughput.summary(trainer)
                shown += f"  samples/s {progress['samples/s']}  eta {progress['eta']}"
            else:
                total = trainer.max_epochs or 0
                shown += f"  eta {row['seconds'] * max(total - trainer.current_epoch - 1, 0):.0f}s"
            self.console.print(f"[dim]{shown}[/]")


class FiniteLossGuard(L.Callback):
    """Stops training with a clear message as soon as the loss is NaN or infinite."""

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
        if loss is not None and not math.isfinite(float(loss)):
            raise TrainingError(
                f"loss became {float(loss)} at epoch {trainer.current_epoch}, batch {batch_idx}: "
                "lower train.lr, set train.gradient_clip_val, or check the data for NaN"
            )
