"""`toolkit run A B C --devices 0,1,2`: several recipes at once on one machine, each in its own
`toolkit run` process pinned to one device, each with its own log, one summary at the end."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from rich.table import Table

from toolkit.cli.common import console
from toolkit.errors import ToolkitError


@dataclass
class Job:
    """One recipe's process, its device and its log."""

    recipe: str
    device: str
    log: Path
    process: subprocess.Popen | None = None

    @property
    def returncode(self) -> int | None:
        return None if self.process is None else self.process.poll()


def parse_devices(text: str, count: int) -> list[str]:
    """`0,1,2` (CUDA indices) or `cpu,cpu`: one device per recipe."""
    devices = [d.strip() for d in text.split(",") if d.strip()]
    if len(devices) != count:
        raise ToolkitError(
            f"--devices {text}: {len(devices)} device(s) for {count} recipe(s); give one each"
        )
    for device in devices:
        if device != "cpu" and not device.isdigit():
            raise ToolkitError(f"--devices {text}: {device!r} is neither a CUDA index nor cpu")
    return devices


def _env(device: str) -> dict[str, str]:
    env = dict(os.environ)
    if device == "cpu":
        env["TOOLKIT_DEVICE"] = "cpu"
    else:
        env["CUDA_VISIBLE_DEVICES"] = device  # the process sees its one GPU as cuda:0
        env["TOOLKIT_DEVICE"] = "cuda"
    return env


def run_parallel(
    recipes: list[str],
    devices: list[str],
    args: list[str],
    logs_root: Path,
    root_args: Sequence[str] = (),
) -> list[Job]:
    """Start `toolkit ROOT_ARGS run RECIPE ARGS` per recipe on its device, wait for all, print
    a table.
    SIGTERM / Ctrl-C is passed on to every run (each saves its checkpoint and stops)."""
    folder = logs_root / "_parallel" / datetime.now().strftime("%Y%m%d-%H%M%S")
    folder.mkdir(parents=True, exist_ok=True)
    jobs = [
        Job(recipe, device, folder / f"{recipe.replace('/', '__')}.log")
        for recipe, device in zip(recipes, devices, strict=True)
    ]
    received: list[int] = []

    def forward(signum: int, frame: object) -> None:
        received.append(signum)
        for job in jobs:
            if job.returncode is None and job.process is not None:
                job.process.send_signal(signum)

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        for job in jobs:
            with job.log.open("w") as log:
                command = [sys.executable, "-m", "toolkit.cli.main", *root_args, "run",
                           job.recipe, *args]  # fmt: skip
                log.write(f"# {' '.join(command)}  (device {job.device})\n")
                log.flush()
                job.process = subprocess.Popen(
                    command, env=_env(job.device), stdout=log, stderr=subprocess.STDOUT
                )
            console.print(f"started {job.recipe} on {job.device}: log {job.log}")
        while any(job.returncode is None for job in jobs):
            time.sleep(0.5)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    _summary(jobs)
    return jobs


def _summary(jobs: list[Job]) -> None:
    table = Table("recipe", "device", "result", "log")
    for job in jobs:
        lines = job.log.read_text(errors="replace").splitlines()
        score = next((ln for ln in reversed(lines) if ln.startswith("score")), "")
        error = next((ln for ln in reversed(lines) if ln.startswith("error:")), "")
        result = (
            f"[green]passed[/] {score.removeprefix('score').strip()}"
            if job.returncode == 0
            else f"[red]exit {job.returncode}[/] {error.removeprefix('error:').strip()}"
        )
        table.add_row(job.recipe, job.device, result, str(job.log))
    console.print(table)
