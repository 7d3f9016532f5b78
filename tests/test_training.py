"""Training engine: SIGTERM -> checkpoint -> --resume, NaN loss, time budget, empty data."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest

from tests.conftest import only_run

pytestmark = pytest.mark.slow
RECIPE = "eeg2025/c1-baseline"


def test_sigterm_saves_a_checkpoint_and_resume_finishes(toolkit):
    env = {**os.environ, **toolkit.env}
    proc = subprocess.Popen(
        [sys.executable, "-m", "toolkit.cli.main", "train", RECIPE, "--smoke",
         "--set", "train.epochs=6"],
        cwd=toolkit.root, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 240
    history = None
    while time.monotonic() < deadline and proc.poll() is None:
        found = list((toolkit.root / "runs").rglob("history.json"))
        if found and json.loads(found[0].read_text() or "[]"):
            history = found[0]
            break
        time.sleep(0.2)
    assert history is not None, "training never finished its first epoch"
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err  # 128 + SIGTERM, as a shell reports it
    assert f"continue with: toolkit run {RECIPE} --smoke --resume" in err
    run = only_run(toolkit.root, RECIPE)
    assert (run / "checkpoints" / "last.ckpt").is_file()
    assert json.loads((run / "status.json").read_text())["state"] == "interrupted"
    assert not list(run.rglob("*.tmp")), "a half-written file was left behind"
    epochs_before = len(json.loads(history.read_text()))
    assert epochs_before < 6

    result = toolkit("train", RECIPE, "--smoke", "--resume")
    assert result.exit_code == 0, result.output
    assert f"resuming {run}" in result.output.replace("\n", "")
    assert only_run(toolkit.root, RECIPE) == run  # continued in place, no new run folder
    rows = json.loads((run / "history.json").read_text())
    assert [r["epoch"] for r in rows] == list(range(6))
    assert json.loads((run / "status.json").read_text())["state"] == "trained"
    metrics = json.loads((run / "metrics.json").read_text())
    assert (metrics["epochs_completed"], metrics["global_step"]) == (6, 6 * 9)  # no step lost


def test_nan_loss_stops_with_the_epoch_named(toolkit):
    result = toolkit(
        "train",
        RECIPE,
        "--smoke",
        "--set",
        "train.lr=1e30",
        "--set",
        "train.gradient_clip_val=null",
    )
    assert result.exit_code == 2
    assert "loss became nan at epoch 0" in result.output
    run = only_run(toolkit.root, RECIPE)
    assert json.loads((run / "status.json").read_text())["state"] == "failed"


@pytest.mark.parametrize("recipe", [RECIPE, "arc/seed-7h"])
def test_time_budget_stops_cleanly_with_interval_checkpoints_and_eta(toolkit, recipe: str):
    """The engine's runtime control, for every competition: budget, interval checkpoints, ETA."""
    result = toolkit(
        "train", recipe, "--smoke", "--set", "train.epochs=500",
        "--set", "train.time_budget=8s", "--set", "train.checkpoint_every=2s",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    run = only_run(toolkit.root, recipe)
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["stopped_by"] == "time budget"
    assert metrics["epochs_completed"] < 500
    assert (run / "checkpoints" / "best.ckpt").is_file()
    assert (run / "checkpoints" / "interval.ckpt").is_file()
    if recipe.startswith("arc/"):  # a competition with an evaluate hook scores before stopping
        assert "eval_score" in metrics
    etas = re.findall(r"samples/s [\d.]+  eta (?:(\d+)m)?(\d+)s", result.output)
    assert etas, result.output
    assert all(int(m or 0) * 60 + int(s) <= 8 for m, s in etas)  # not 500 epochs' worth


def test_no_subject_left_after_filtering_is_clear(toolkit):
    bids = toolkit.root / "bids-r1"
    assert toolkit("data", "synth", "eeg2025", str(bids), "--subjects", "3").exit_code == 0
    result = toolkit(
        "train", RECIPE, "--smoke", "--set", f"data.source={bids}", "--set", "data.releases=[R9]"
    )
    assert result.exit_code == 2
    last = result.output.strip().splitlines()[-1]
    assert "no subject of release R9 has contrastChangeDetection" in last and str(bids) in last
