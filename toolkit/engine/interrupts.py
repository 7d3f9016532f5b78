"""SIGTERM and Ctrl-C outside the training loop (data preparation, final validation): raise,
so `finally` blocks and atomic writes clean up and the run's status can say what happened."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
from collections.abc import Iterator
from typing import Any


class SignalInterrupt(BaseException):
    """A signal arrived (raised from the handler). A BaseException, so that the `except
    Exception` of a library (a retry loop, a file reader) cannot swallow it."""

    def __init__(self, signum: int):
        self.signum = signum
        self.name = signal.Signals(signum).name
        super().__init__(f"stopped by {self.name}")


def _raise(signum: int, frame: Any) -> None:
    raise SignalInterrupt(signum)


def stop_signals() -> tuple[signal.Signals, ...]:
    """SIGTERM and SIGINT; under SLURM also SIGUSR1 (`#SBATCH --signal=SIGUSR1@90`: the
    warning before the time limit or a preemption, after which the job is requeued)."""
    extra = (signal.SIGUSR1,) if os.environ.get("SLURM_JOB_ID") else ()
    return (signal.SIGTERM, signal.SIGINT, *extra)


@contextlib.contextmanager
def signals_raise() -> Iterator[None]:
    """Within the block, the stop signals raise `SignalInterrupt` (handlers restored after)."""
    previous = {sig: signal.signal(sig, _raise) for sig in stop_signals()}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def requeue_slurm_job() -> str | None:
    """`scontrol requeue` this SLURM job (after SIGUSR1: its time is nearly up or it is being
    preempted); the requeued job resumes from last.ckpt. Returns the job id, or None."""
    job_id = os.environ.get("SLURM_JOB_ID")  # an array task's own id too
    scontrol = shutil.which("scontrol")
    if not job_id or scontrol is None:
        return None
    done = subprocess.run([scontrol, "requeue", job_id], capture_output=True, text=True)
    return job_id if done.returncode == 0 else None
