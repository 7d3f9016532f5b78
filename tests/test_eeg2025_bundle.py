"""Combined submissions (`toolkit bundle eeg2025 --c1 --c2`), ensembles exported as one module,
and (opt-in) verification in the challenge's own runtime, torch 2.2.2."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest
import torch

from tests.conftest import Toolkit, bundle_path
from toolkit.engine.ensemble import MeanEnsemble

C1 = "eeg2025/c1-baseline"
C2 = "eeg2025/c2-stage1-r1-20subj"
ENSEMBLE = "eeg2025/c1-stage4-240subj-5seeds"


def _runs(root: Path, name: str) -> list[Path]:
    base = root / "runs" / name
    return sorted(p for p in base.iterdir() if (p / "recipe.yaml").is_file())


@pytest.fixture(scope="module")
def smoke_root(smoke_runs, shared_cache) -> Toolkit:
    for name in (C1, C2, ENSEMBLE):
        result, root = smoke_runs(name)
        assert result.exit_code == 0, result.output
    return Toolkit(root, shared_cache)


def _manifest(bundle: Path) -> dict:
    with zipfile.ZipFile(bundle / "submission.zip") as zf:
        return json.loads(zf.read("manifest.json"))


@pytest.mark.slow
def test_bundle_both_challenges_from_a_run_and_a_recipe(smoke_root: Toolkit):
    c1_run = _runs(smoke_root.root, C1)[-1]
    result = smoke_root(
        "bundle", "eeg2025", "--c1", str(c1_run), "--c2", C2, "--smoke", "--name", "combined"
    )
    assert result.exit_code == 0, result.output
    bundle = smoke_root.root / "submissions" / "eeg2025" / "combined"
    manifest = _manifest(bundle)
    beside = json.loads((bundle / "manifest.json").read_text())  # the full record, with paths
    assert beside["challenges"]["1"]["run"] == str(c1_run)
    assert manifest["challenges"]["2"]["kind"] == "model"
    assert manifest["challenges"]["2"]["recipe"] == C2
    assert manifest["recipes"] == {"1": C1, "2": C2}
    verified = smoke_root("verify", str(bundle))
    assert verified.exit_code == 0, verified.output
    assert "c2 outputs match reference (batch)" in verified.output


@pytest.mark.slow
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--c2", C1], "fills slot c1, not c2"),
        (["--c3", C1], "--c3: not a slot of eeg2025 (slots: --c1, --c2)"),
        (["--c1"], "usage: toolkit bundle eeg2025 --c1 RUN_OR_RECIPE --c2 RUN_OR_RECIPE"),
        (["--c2", C2], "no challenge 1 run given"),
    ],
)
def test_bundle_slot_mistakes_are_one_line(smoke_root: Toolkit, args, message):
    result = smoke_root("bundle", "eeg2025", *args, "--smoke")
    assert result.exit_code != 0
    assert message in result.output.strip().splitlines()[-1]


@pytest.mark.slow
def test_stage_recipe_zip_holds_both_challenges(smoke_runs):
    result, _ = smoke_runs("eeg2025/c1-stage1-r1-20subj")
    manifest = _manifest(bundle_path(result.output))
    assert {c: manifest["challenges"][c]["kind"] for c in ("1", "2")} == {
        "1": "model", "2": "model"
    }  # fmt: skip
    assert manifest["expected_score"] == {"c1": 0.98, "c2": 1.0, "overall": 0.994}


@pytest.mark.slow
def test_ensemble_is_one_module_scored_on_shared_validation(smoke_root: Toolkit):
    run = _runs(smoke_root.root, ENSEMBLE)[-1]
    members = json.loads((run / "members.json").read_text())
    assert [m["name"] for m in members] == ["seed1", "seed2"]
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["validated_on"] == "the members' shared validation subjects"
    assert set(metrics["members"]) == {"seed1", "seed2"}
    module = torch.jit.load(str(run / "export" / "model.ts"))
    assert len(list(module.members.children())) == 2  # one module, two members inside
    # The same recipe again trains nothing: both members are reused.
    again = smoke_root("train", ENSEMBLE, "--smoke")
    assert again.exit_code == 0, again.output
    assert again.output.count("reusing") == 2
    assert "epoch 0" not in again.output


def test_mean_ensemble_averages_members():
    class Const(torch.nn.Module):
        def __init__(self, value: float):
            super().__init__()
            self.value = value

        def forward(self, x):
            return torch.full((x.shape[0], 1), self.value)

    out = MeanEnsemble([Const(1.0), Const(2.0), Const(6.0)])(torch.zeros(4, 129, 200))
    assert out.shape == (4, 1) and torch.allclose(out, torch.full((4, 1), 3.0))


@pytest.mark.runtime
def test_stage_zip_verifies_under_torch_2_2_2(smoke_runs, shared_cache):
    """Opt-in (`pytest -m runtime`): makes the torch 2.2.2 venv once (~3 GB download)."""
    result, root = smoke_runs("eeg2025/c1-stage3-per-release-ensemble")
    assert result.exit_code == 0, result.output
    checker = Toolkit(root, shared_cache)
    # The venv outlives the test session, so the download happens once per machine.
    checker.env["TOOLKIT_CACHE_DIR"] = str(Path.home() / ".cache" / "toolkit-test-runtimes")
    verified = checker("verify", str(bundle_path(result.output)), "--runtime", "eeg2025")
    assert verified.exit_code == 0, verified.output
    assert "torch 2.2.2" in verified.output
