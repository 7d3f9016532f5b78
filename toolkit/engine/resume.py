"""Exact resume: last.ckpt always holds a point training can continue from as if it never
stopped (loop position, random states, loaders mid-epoch), and a signal stops at such a point.

- `ResumePoint` owns last.ckpt. It writes it after every complete epoch and, when training
  stops part-way through an epoch (a signal, the time budget), at the batch where it stopped;
  nothing overwrites that later with an epoch marked as done. On SIGTERM / SIGINT (and SIGUSR1
  under SLURM) it saves at the next batch boundary (the next optimiser step when gradients are
  being accumulated; the same batch on every DDP rank) and raises `StopRequested`, so neither
  validation nor evaluation delays the exit.
- `RandomState` saves and restores the Python, NumPy and torch (CPU and CUDA) random states,
  so dropout and augmentation continue the same stream after a resume.
"""

from __future__ import annotations

import random
import signal
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import Checkpoint

from toolkit.engine.interrupts import stop_signals


class StopRequested(Exception):
    """Raised from a callback to leave `trainer.fit` at once after last.ckpt was saved."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def _plain(state: tuple) -> list:
    name, keys, pos, has_gauss, cached = state
    return [name, keys.tolist(), int(pos), int(has_gauss), float(cached)]


class RandomState(L.Callback):
    """Random states in every checkpoint, restored on resume."""

    def state_dict(self) -> dict[str, Any]:
        state: dict[str, Any] = {
            "python": random.getstate(),
            # plain lists, so checkpoints still load with torch.load(weights_only=True)
            "numpy": _plain(np.random.get_state()),
            "torch": torch.get_rng_state(),
        }
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            state["cuda"] = torch.cuda.get_rng_state_all()
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        random.setstate(state_dict["python"])
        name, keys, pos, has_gauss, cached = state_dict["numpy"]
        np.random.set_state((name, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
        torch.set_rng_state(state_dict["torch"])
        if "cuda" in state_dict and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state_dict["cuda"])


class ResumePoint(Checkpoint):
    """Writes last.ckpt (see the module docstring) and turns SIGTERM/SIGINT into a clean stop.

    A `Checkpoint` subclass, so Lightning runs it after every other callback: the epoch's
    evaluation and the best checkpoint are done before it saves. Call `install()` before
    `trainer.fit` and `restore()` after it; a second signal aborts at once.
    """

    def __init__(self, path: Path):
        self.path = path
        self.received: str | None = None
        self.saved_at: tuple[int, int] | None = None  # (epoch, step) of a mid-epoch stop
        self._previous: dict[int, Any] = {}

    # -- signals ---------------------------------------------------------------------------

    def _handle(self, signum: int, frame: Any) -> None:
        if self.received is not None:
            raise KeyboardInterrupt
        self.received = signal.Signals(signum).name

    def install(self) -> None:
        for sig in stop_signals():
            self._previous[sig] = signal.signal(sig, self._handle)

    def restore(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # Just before training, Lightning wraps SIGTERM with a handler that exits at the next
        # batch without a checkpoint (status 0); take the signals back so this callback decides.
        for sig in stop_signals():
            signal.signal(sig, self._handle)

    # -- saving ----------------------------------------------------------------------------

    def _signalled(self, trainer: L.Trainer) -> bool:
        """Whether to stop for a signal; under DDP every rank stops at the same batch if any
        rank got one (a collective call, made by every rank at every batch)."""
        if trainer.world_size > 1:
            anyone = trainer.strategy.reduce_boolean_decision(self.received is not None, all=False)
            if anyone and self.received is None:
                self.received = "a signal on another rank"
            return bool(anyone)
        return self.received is not None

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if self.saved_at is not None:
            return
        signalled = self._signalled(trainer)
        if not signalled and not trainer.should_stop:
            return
        if batch_idx + 1 >= trainer.num_training_batches:
            return  # the epoch is complete: its end saves it whole (after the evaluation)
        if signalled and (batch_idx + 1) % max(trainer.accumulate_grad_batches, 1):
            return  # mid-accumulation: stop after the optimiser step, so no gradient is lost
        trainer.save_checkpoint(self.path)
        self.saved_at = (trainer.current_epoch, trainer.global_step)
        if signalled:
            raise StopRequested(self.received or "signal")

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.saved_at is None:
            trainer.save_checkpoint(self.path)  # a complete epoch
        if self._signalled(trainer):
            if self.saved_at is None:
                self.saved_at = (trainer.current_epoch + 1, trainer.global_step)
            raise StopRequested(self.received or "signal")
