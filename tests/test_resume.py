"""Exact resume: a run stopped anywhere (a signal in the first or a later epoch, the time budget,
a crash after an interval checkpoint) and resumed with `--resume` ends at the same optimiser
step, the same epoch count and, on the CPU with the same seed, the same losses and score as a
run that was never stopped."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import lightning as L
import pytest

from tests.conftest import only_run
from toolkit.config.recipes import resolve_recipe
from toolkit.config.settings import get_settings
from toolkit.engine.rundir import RunDir
from toolkit.engine.train import train
from toolkit.errors import TrainingInterrupted

pytestmark = pytest.mark.slow
RECIPE = "eeg2025/c1-baseline"
EPOCHS = ["--set", "train.epochs=2"]  # 9 optimiser steps per epoch in the smoke block


class SignalAt(L.Callback):
    """Sends this process a real signal once, at the end of optimiser step `step`."""

    def __init__(self, step: int, signum: int):
        self.step, self.signum, self.sent = step, signum, False

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if not self.sent and trainer.global_step == self.step:
            self.sent = True
            os.kill(os.getpid(), self.signum)


class CrashAt(L.Callback):
    """Raises at optimiser step `step`, as an out-of-memory error or a bug would."""

    def __init__(self, step: int):
        self.step = step

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.global_step == self.step:
            raise RuntimeError(f"injected crash at step {self.step}")


def _train_in_process(
    toolkit, sets: list[str], callback: L.Callback, run: RunDir | None = None
) -> None:
    """`toolkit train RECIPE --smoke --set ...` with a fault-injecting callback."""
    overrides = [s for s in sets if s != "--set"]
    recipe = resolve_recipe(RECIPE, smoke=True, overrides=overrides)
    env = toolkit.env
    settings = get_settings(
        data_dir=env["TOOLKIT_DATA_DIR"], cache_dir=env["TOOLKIT_CACHE_DIR"],
        runs_dir=env["TOOLKIT_RUNS_DIR"], device="cpu", seed=int(env["TOOLKIT_SEED"]),
    )  # fmt: skip
    train(recipe, settings, command="test", extra_callbacks=[callback], run=run)


def _outcome(run: Path) -> dict:
    metrics = json.loads((run / "metrics.json").read_text())
    history = json.loads((run / "history.json").read_text())
    return {
        "step": metrics["global_step"],
        "epochs": metrics["epochs_completed"],
        "score": round(metrics["val_nrmse"], 6),
        "train_loss": [round(r["train_loss"], 6) for r in history],
        "epochs_in_history": [r["epoch"] for r in history],
    }


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, shared_cache) -> dict:
    from tests.conftest import Toolkit

    tk = Toolkit(tmp_path_factory.mktemp("uninterrupted"), shared_cache)
    result = tk("train", RECIPE, "--smoke", *EPOCHS)
    assert result.exit_code == 0, result.output
    outcome = _outcome(only_run(tk.root, RECIPE))
    assert outcome["step"] == 18 and outcome["epochs"] == 2
    return outcome


@pytest.mark.parametrize(
    ("step", "signum"),
    [(3, signal.SIGTERM), (12, signal.SIGINT)],
    ids=["sigterm-first-epoch", "sigint-second-epoch"],
)
def test_a_signal_then_resume_matches_an_uninterrupted_run(toolkit, uninterrupted, step, signum):
    with pytest.raises(TrainingInterrupted) as stopped:
        _train_in_process(toolkit, EPOCHS, SignalAt(step, signum))
    assert stopped.value.exit_code == 128 + signum
    run = only_run(toolkit.root, RECIPE)
    status = json.loads((run / "status.json").read_text())
    assert status["state"] == "interrupted"
    assert status["step"] == step  # stopped right after the step it was signalled at

    result = toolkit("train", RECIPE, "--smoke", "--resume")
    assert result.exit_code == 0, result.output
    assert only_run(toolkit.root, RECIPE) == run
    assert _outcome(run) == uninterrupted


def test_a_crash_after_an_interval_checkpoint_resumes_exactly(toolkit, uninterrupted):
    sets = [*EPOCHS, "--set", "train.checkpoint_every=0.001s"]  # a checkpoint every batch
    with pytest.raises(RuntimeError, match="injected crash"):
        _train_in_process(toolkit, sets, CrashAt(13))
    run = only_run(toolkit.root, RECIPE)
    assert RunDir(run).status()["state"] == "failed"
    assert (run / "checkpoints" / "interval.ckpt").is_file()

    result = toolkit("train", RECIPE, "--smoke", "--resume")
    assert result.exit_code == 0, result.output
    assert _outcome(run) == uninterrupted


def test_a_time_budget_stop_continues_where_it_stopped(toolkit, uninterrupted):
    result = toolkit("train", RECIPE, "--smoke", *EPOCHS, "--set", "train.time_budget=1.5s")
    assert result.exit_code == 0, result.output
    run = only_run(toolkit.root, RECIPE)
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["stopped_by"] == "time budget"
    assert metrics["global_step"] < 18

    result = toolkit(
        "train", RECIPE, "--smoke", "--resume", "--set", "train.time_budget=null"
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    resumed = _outcome(run)
    assert (resumed["step"], resumed["epochs"]) == (18, 2)
    assert resumed["train_loss"] == uninterrupted["train_loss"]
    assert resumed["epochs_in_history"] == [0, 1]


def test_resume_refuses_a_truncated_checkpoint_naming_it(toolkit):
    with pytest.raises(TrainingInterrupted):
        _train_in_process(toolkit, EPOCHS, SignalAt(3, signal.SIGTERM))
    run = only_run(toolkit.root, RECIPE)
    last = run / "checkpoints" / "last.ckpt"
    last.write_bytes(last.read_bytes()[:1000])
    result = toolkit("train", RECIPE, "--smoke", "--resume")
    assert result.exit_code == 2
    assert f"{last}: cannot read this checkpoint" in result.output.replace("\n", "")
    assert RunDir(run).status()["state"] == "interrupted"


def test_a_killed_process_never_reads_as_training(toolkit, tmp_path):
    run = RunDir(tmp_path / "run")
    run.path.mkdir()
    # a pid that cannot be alive: beyond the kernel's pid range
    (run.status_file).write_text(
        json.dumps({"state": "training", "pid": 2**22 + 1, "host": os.uname().nodename})
    )
    status = run.status()
    assert status["state"] == "interrupted"
    assert "ended without recording why" in status["reason"]


def test_a_fixed_run_folder_resumes_after_sigusr1_as_a_requeued_slurm_job_would(
    toolkit, uninterrupted, tmp_path, monkeypatch
):
    """What a SLURM job does: `--signal=SIGUSR1@90` before its time is up, then the requeued
    job runs the same `toolkit train --run-dir DIR` again."""
    folder = tmp_path / "job-folder"
    monkeypatch.setenv("SLURM_JOB_ID", "4242")  # SIGUSR1 is a stop signal under SLURM
    with pytest.raises(TrainingInterrupted):
        _train_in_process(toolkit, EPOCHS, SignalAt(5, signal.SIGUSR1), run=RunDir(folder))
    monkeypatch.delenv("SLURM_JOB_ID")
    status = RunDir(folder).status()
    assert (status["state"], status["signal"], status["step"]) == ("interrupted", "SIGUSR1", 5)

    result = toolkit("train", RECIPE, "--smoke", *EPOCHS, "--run-dir", str(folder))
    assert result.exit_code == 0, result.output
    assert f"resuming {folder}" in result.output.replace("\n", "")
    assert _outcome(folder) == uninterrupted
    again = toolkit("train", RECIPE, "--smoke", *EPOCHS, "--run-dir", str(folder))
    assert again.exit_code == 0 and "already trained" in again.output
