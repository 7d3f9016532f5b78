"""What a job asks SLURM for: nodes, tasks, GPUs, CPUs, memory, time, partition, account."""

from __future__ import annotations

import re
from dataclasses import dataclass

from toolkit.errors import ToolkitError

WARNING_SECONDS = 90  # `--signal=SIGUSR1@90`: the warning before the time limit
_TIME = re.compile(r"^(?:(\d+)-)?(\d{1,2}):(\d{2}):(\d{2})$")
_MEMORY = re.compile(r"^\d+[KMGT]?$")


@dataclass(frozen=True)
class Resources:
    """One job's (or each array task's) request; None leaves SLURM's default."""

    nodes: int = 1
    tasks_per_node: int = 1
    gpus_per_node: int = 0
    cpus_per_task: int | None = None
    mem: str | None = None
    time: str | None = None
    partition: str | None = None
    account: str | None = None

    def __post_init__(self) -> None:
        if self.time is not None:
            check_time(self.time)
        if self.mem is not None and not _MEMORY.match(self.mem):
            raise ToolkitError(
                f"--mem {self.mem}: not a SLURM memory size (a number of megabytes, or with a "
                "unit: 500M, 16G)"
            )


def time_seconds(text: str) -> int:
    """Seconds in a SLURM time limit `[D-]HH:MM:SS`."""
    match = _TIME.match(text)
    if match is None:
        raise ToolkitError(f"--time {text}: expected HH:MM:SS (or D-HH:MM:SS), e.g. 04:00:00")
    days, hours, minutes, seconds = (int(g or 0) for g in match.groups())
    if minutes > 59 or seconds > 59:
        raise ToolkitError(f"--time {text}: minutes and seconds must be below 60")
    return ((days * 24 + hours) * 60 + minutes) * 60 + seconds


def check_time(text: str) -> None:
    """A time limit must leave room for the SIGUSR1 warning before it."""
    if time_seconds(text) <= WARNING_SECONDS:
        raise ToolkitError(
            f"--time {text}: the job is warned {WARNING_SECONDS} s before its limit to save "
            "and requeue; ask for more than that"
        )
