"""Every recipe end to end on synthetic data: train -> export -> bundle -> verify."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest

from tests.conftest import bundle_path
from toolkit.config.recipes import list_recipes

RECIPES = [entry.name for entry in list_recipes()]


@pytest.mark.slow
@pytest.mark.parametrize("name", RECIPES)
def test_every_recipe_smoke_runs_end_to_end(smoke_runs, name: str):
    result, root = smoke_runs(name)
    assert result.exit_code == 0, result.output
    assert "verify  passed" in result.output
    bundle = bundle_path(result.output)
    assert bundle.is_relative_to(root / "submissions")
    assert (bundle / "submission.zip").is_file()
    run = newest_run(root, name)
    metrics = json.loads((run / "metrics.json").read_text())
    assert np.isfinite(metrics[f"val_{metrics['metric']}"])
    assert "-smoke" in run.name and "-smoke" in bundle.name


def newest_run(root, name: str):
    runs = [p for p in (root / "runs" / name).iterdir() if (p / "recipe.yaml").is_file()]
    return max(runs, key=lambda p: p.stat().st_mtime)


@pytest.mark.slow
def test_c1_smoke_model_beats_the_mean_predictor(smoke_runs):
    _, root = smoke_runs("eeg2025/c1-baseline")
    (run,) = (root / "runs" / "eeg2025" / "c1-baseline").iterdir()
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["val_nrmse"] < 0.7
    assert metrics["baselines"]["train_mean"] > 0.95
    history = json.loads((run / "history.json").read_text())
    assert [row["epoch"] for row in history] == list(range(metrics["epochs_completed"]))
    assert (run / "history.csv").read_text().startswith("epoch,step,train_loss,val_loss,val_nrmse")
    assert "toolkit run eeg2025/c1-baseline --smoke" in (run / "recipe.yaml").read_text()
    stats = json.loads((run / "data_stats.json").read_text())
    assert not set(stats["train_subjects"]) & set(stats["val_subjects"])


@pytest.mark.slow
def test_export_parity_recorded(smoke_runs):
    _, root = smoke_runs("eeg2025/c1-baseline")
    (run,) = (root / "runs" / "eeg2025" / "c1-baseline").iterdir()
    parity = json.loads((run / "export" / "parity.json").read_text())
    assert set(parity) == {"torchscript", "onnx"}
    for result in parity.values():
        assert result["ok"]
        assert max(result["max_abs_error"].values()) <= result["atol"]
    assert (run / "export" / "model.onnx").stat().st_size > 10_000
    outputs = np.load(run / "export" / "reference_outputs.npy")
    assert outputs.shape == (8, 1) and np.isfinite(outputs).all()


@pytest.mark.slow
def test_bundle_is_a_flat_zip_with_manifest(c1_bundle):
    with zipfile.ZipFile(c1_bundle / "submission.zip") as zf:
        names = sorted(zf.namelist())
        manifest = json.loads(zf.read("manifest.json"))
    assert names == [
        "manifest.json", "submission.py", "weights_challenge_1.pt", "weights_challenge_2.pt"
    ]  # fmt: skip
    assert set(manifest["files"]) == set(names) - {"manifest.json"}
    assert manifest["competition"] == "eeg2025"
    assert manifest["packages"]["torch"].startswith("2.14.1")
    assert manifest["recipe"]["name"] == "eeg2025/c1-baseline"
    assert manifest["challenges"]["1"]["metrics"]["val_nrmse"] < 0.7
    assert manifest["challenges"]["1"]["parity"]["torchscript"]["ok"]
    assert manifest["challenges"]["2"]["kind"] == "baseline"
    assert "training mean" in manifest["challenges"]["2"]["description"]
