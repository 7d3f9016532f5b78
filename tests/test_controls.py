"""Lightning's controls through the real CLI: lr-find, test, --debug, --auto-batch-size, DDP
with two CPU processes (gloo, a real subprocess), TensorBoard logs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import only_run

pytestmark = pytest.mark.slow
RECIPE = "eeg2025/c1-baseline"  # smoke: 146 training windows, batch 16 -> 9 steps an epoch


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def test_lr_find_prints_a_suggestion_and_writes_the_curve_and_a_recipe(toolkit):
    result = toolkit("lr-find", RECIPE, "--smoke", "--apply", "--steps", "20")
    assert result.exit_code == 0, result.output
    (folder,) = (toolkit.root / "runs" / RECIPE / "lr-find").iterdir()
    found = json.loads((folder / "lr_find.json").read_text())
    assert 1e-7 <= found["suggestion"] <= 1.0
    assert 2 <= len(found["lr"]) <= 20 and found["lr"] == sorted(found["lr"])
    assert f"suggested lr {found['suggestion']:.4g}" in result.output
    width, height = _png_size(folder / "lr_find.png")
    assert width > 200 and height > 200
    written = folder / "eeg2025" / "c1-baseline-lr.yaml"
    base = yaml.safe_load(written.read_text())["extends"]
    assert base.endswith("recipes/eeg2025/c1-baseline.yaml")
    shown = toolkit("recipes", "show", str(written), "--smoke")
    assert shown.exit_code == 0, shown.output
    resolved = yaml.safe_load(shown.output)
    assert resolved["train"]["lr"] == pytest.approx(found["suggestion"], rel=1e-3)
    assert resolved["model"]["name"] == "EEGNeX"  # everything else comes from the base


def test_test_scores_the_best_checkpoint_as_training_did_and_writes_predictions(toolkit):
    assert toolkit("train", RECIPE, "--smoke", "--set", "train.epochs=2").exit_code == 0
    run = only_run(toolkit.root, RECIPE)
    trained = json.loads((run / "metrics.json").read_text())
    result = toolkit("test", str(run))
    assert result.exit_code == 0, result.output
    tested = json.loads((run / "test_metrics.json").read_text())
    assert tested["test_nrmse"] == pytest.approx(trained["val_nrmse"], abs=1e-9)
    assert tested["split"] == "validation" and tested["samples"] == trained["val_samples"]
    rows = (run / "test_predictions.csv").read_text().splitlines()
    assert rows[0] == "index,y_true,y_pred" and len(rows) == 1 + trained["val_samples"]

    missing = toolkit("test", str(run), "--checkpoint", str(run / "nope.ckpt"))
    assert missing.exit_code == 2
    assert "no checkpoint to test" in missing.output
    wrong = toolkit("test", str(run), "--set", "train.lr=1")
    assert wrong.exit_code == 2 and "only data.* keys" in wrong.output


def test_debug_runs_one_batch_through_the_whole_pipeline_and_leaves_nothing(toolkit):
    result = toolkit("run", RECIPE, "--smoke", "--debug")
    assert result.exit_code == 0, result.output
    out = result.output.replace("\n", "")
    assert "in 1 epochs" in out and "debug (one batch of each loop)" in out
    assert "verify  passed" in result.output and "debug run passed" in result.output
    folder = out.split("throw-away folder ")[1].split(" removed")[0]
    assert not Path(folder).exists()
    assert not (toolkit.root / "runs").exists()


def test_auto_batch_size_finds_the_cap_on_a_cpu_and_the_run_records_it(toolkit):
    result = toolkit("train", RECIPE, "--smoke", "--set", "train.epochs=1",
                     "--auto-batch-size", "64")  # fmt: skip
    assert result.exit_code == 0, result.output
    run = only_run(toolkit.root, RECIPE)
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["batch_size"] == 64
    assert metrics["global_step"] == 3  # ceil(146 / 64)
    saved = (run / "recipe.yaml").read_text()
    assert "--set train.batch_size=64" in saved.splitlines()[1]
    assert yaml.safe_load(saved)["train"]["batch_size"] == 64


@pytest.mark.parametrize(
    ("sets", "message"),
    [
        (["--set", "train.devices=2", "--auto-batch-size", "64"], "--auto-batch-size needs one"),
        (["--set", "train.devices=4096"], "train.devices=4096 CPU processes but this machine"),
    ],
    ids=["auto-batch-size-with-ddp", "more-devices-than-cores"],
)
def test_impossible_layouts_are_one_line(toolkit, sets, message):
    result = toolkit("train", RECIPE, "--smoke", *sets)
    assert result.exit_code == 2
    assert message in result.output


def test_two_cpu_processes_train_one_run_that_bundles_and_verifies(toolkit):
    """DDP with gloo: Lightning starts the second rank by re-running the command line, so this
    runs the real `toolkit` in a subprocess."""
    env = {**os.environ, **toolkit.env}
    proc = subprocess.run(
        [sys.executable, "-m", "toolkit.cli.main", "run", RECIPE, "--smoke",
         "--set", "train.devices=2", "--set", "train.epochs=2"],
        cwd=toolkit.root, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "verify  passed" in proc.stdout
    run = only_run(toolkit.root, RECIPE)  # the second rank trained in the same folder
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["processes"] == 2
    # each rank takes half of every epoch: ceil(ceil(146 / 2) / 16) = 5 steps an epoch
    assert (metrics["epochs_completed"], metrics["global_step"]) == (2, 10)
    assert metrics["val_samples"] == json.loads((run / "data_stats.json").read_text())[
        "val_windows"
    ]  # scored once, on the whole validation set
    history = json.loads((run / "history.json").read_text())
    assert [r["step"] for r in history] == [5, 10]


def test_tensorboard_logs_land_in_the_run_folder(toolkit):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    result = toolkit("train", RECIPE, "--smoke", "--set", "train.epochs=2",
                     "--set", "train.loggers=[csv,tensorboard]")  # fmt: skip
    assert result.exit_code == 0, result.output
    run = only_run(toolkit.root, RECIPE)
    events = EventAccumulator(str(run / "tensorboard"))
    events.Reload()
    tags = events.Tags()["scalars"]
    assert {"train_loss", "val_loss", "val_nrmse"} <= set(tags)
    logged = [s.value for s in events.Scalars("val_nrmse")]
    history = [r["val_nrmse"] for r in json.loads((run / "history.json").read_text())]
    final = json.loads((run / "metrics.json").read_text())["val_nrmse"]
    # one value per epoch, then the final validation of the best checkpoint
    assert logged == pytest.approx([*history, final], rel=1e-6)


def test_several_recipes_at_once_each_on_its_device_with_its_own_log(toolkit):
    result = toolkit("run", RECIPE, "arc/seed-7h", "--smoke", "--devices", "cpu,cpu")
    assert result.exit_code == 0, result.output
    (folder,) = (toolkit.root / "runs" / "_parallel").iterdir()
    logs = {p.name: p.read_text() for p in folder.iterdir()}
    assert set(logs) == {"eeg2025__c1-baseline.log", "arc__seed-7h.log"}
    assert "submissions/eeg2025/" in logs["eeg2025__c1-baseline.log"]
    assert "submissions/arc/" in logs["arc__seed-7h.log"]
    assert all("verify  passed" in text for text in logs.values())
    assert only_run(toolkit.root, RECIPE).joinpath("metrics.json").is_file()
    assert only_run(toolkit.root, "arc/seed-7h").joinpath("metrics.json").is_file()

    bad = toolkit("run", RECIPE, "arc/seed-7h", "--smoke", "--devices", "0")
    assert bad.exit_code == 2 and "1 device(s) for 2 recipe(s)" in bad.output


def test_checkpoints_every_n_epochs_are_kept_beside_last_and_best(toolkit):
    result = toolkit("train", RECIPE, "--smoke", "--set", "train.epochs=4",
                     "--set", "train.checkpoint_every_n_epochs=2")  # fmt: skip
    assert result.exit_code == 0, result.output
    names = sorted(p.name for p in (only_run(toolkit.root, RECIPE) / "checkpoints").iterdir())
    assert names == ["best.ckpt", "epoch-1.ckpt", "epoch-3.ckpt", "last.ckpt"]
