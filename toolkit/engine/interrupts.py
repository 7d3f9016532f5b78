"""SIGTERM and Ctrl-C outside the training loop (data preparation, final validation): raise,
so `finally` blocks and atomic writes clean up and the run's status can say what happened."""

from __future__ import annotations

import contextlib
import signal
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


@contextlib.contextmanager
def signals_raise() -> Iterator[None]:
    """Within the block, SIGTERM and SIGINT raise `SignalInterrupt` (handlers restored after)."""
    previous = {sig: signal.signal(sig, _raise) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
