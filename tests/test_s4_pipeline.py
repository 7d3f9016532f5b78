"""The S4 recipes end to end on synthetic data (the same memoised smoke runs as
test_pipeline): the bundle beats the mean predictor, the export formats agree, the standalone
load.py rebuilds the model without the toolkit, and the DANN recipe trains its domain head."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from tests.test_pipeline import newest_run
from toolkit.bundle.sandbox import Sandbox


@pytest.fixture(scope="module")
def s4_run(smoke_runs):
    result, root = smoke_runs("eeg2025/c1-s4")
    assert result.exit_code == 0, result.output
    return newest_run(root, "eeg2025/c1-s4")


@pytest.mark.slow
def test_c1_s4_smoke_beats_the_mean_predictor(s4_run):
    metrics = json.loads((s4_run / "metrics.json").read_text())
    assert metrics["val_nrmse"] < 0.8
    assert metrics["baselines"]["train_mean"] > 0.95
    parity = json.loads((s4_run / "export" / "parity.json").read_text())
    assert set(parity) == {"torchscript", "onnx", "state_dict"}
    assert all(r["ok"] and max(r["max_abs_error"].values()) < 1e-4 for r in parity.values())


@pytest.mark.slow
def test_state_dict_export_loads_in_plain_torch_without_the_toolkit(s4_run, tmp_path):
    export = s4_run / "export"
    arch = json.loads((export / "model.json").read_text())
    assert arch["arch"]["backbone"]["kernel"] == "dplr" and arch["recipe"] == "eeg2025/c1-s4"
    state = torch.load(export / "model.pth", weights_only=True)
    assert all(isinstance(v, torch.Tensor) for v in state.values())
    source = (export / "load.py").read_text()
    assert "toolkit" not in source.split('"""', 2)[2] and "braindecode" not in source
    out = tmp_path / "out.npy"
    sandbox = Sandbox(blocked=("toolkit", "braindecode", "lightning"))
    result = sandbox.run(export / "load.py", [str(export / "reference_inputs.npy"), str(out)])
    assert result.returncode == 0, result.stderr
    expected = np.load(export / "reference_outputs.npy")
    assert np.abs(np.load(out) - expected).max() < 1e-5


@pytest.mark.slow
def test_c1_s4_dann_trains_a_domain_head_that_the_export_leaves_out(smoke_runs):
    result, root = smoke_runs("eeg2025/c1-s4-dann")
    assert result.exit_code == 0, result.output
    run = newest_run(root, "eeg2025/c1-s4-dann")
    stats = json.loads((run / "data_stats.json").read_text())
    assert stats["domain"] == "subject" and stats["domains"] == stats["train_subjects"]
    weights = torch.load(run / "export" / "state_dict.pt", weights_only=True)
    assert any(k.startswith("backbone.domain_head.") for k in weights)
    traced = torch.jit.load(str(run / "export" / "model.ts"))
    code = "\n".join(m.code for m in traced.modules() if hasattr(m, "forward"))
    assert "domain_head" not in code
