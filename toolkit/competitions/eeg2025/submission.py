"""The eeg2025 submission: a flat zip of submission.py + TorchScript weights per challenge."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

from toolkit.bundle.manifest import MANIFEST
from toolkit.bundle.sandbox import Sandbox
from toolkit.competitions.eeg2025.models import ConstantModel
from toolkit.competitions.protocol import Check
from toolkit.engine.rundir import RunDir
from toolkit.errors import ToolkitError
from toolkit.export.run import export_parity
from toolkit.fileio import read_json

HERE = Path(__file__).resolve().parent
LOADER = HERE / "loader_template.py"
HARNESS = HERE / "harness_check.py"


def _run_summary(run: RunDir) -> dict[str, Any]:
    recipe = run.recipe()
    return {
        "kind": "model",
        "recipe": recipe.name,
        "run": str(run.path),
        "metrics": run.metrics(),
        "parity": export_parity(run),
    }


def write_eeg2025_bundle(runs: list[RunDir], content: Path, reference: Path) -> dict[str, Any]:
    """submission.py + weights_challenge_{1,2}.pt into `content`; references for verify.

    Challenge 1 is the first run's TorchScript export. Until a challenge 2 run is given, its
    slot is the honest baseline: the training mean of the challenge 2 target."""
    if not runs:
        raise ToolkitError("eeg2025 bundle: give at least one run")
    c1 = runs[0]
    ts = c1.export_dir / "model.ts"
    if not ts.is_file():
        raise ToolkitError(
            f"{c1.path}: no export/model.ts; export with torchscript in export.formats first"
        )
    shutil.copyfile(LOADER, content / "submission.py")
    shutil.copyfile(ts, content / "weights_challenge_1.pt")
    stats = c1.stats()
    baseline = ConstantModel(stats.get("c2_train_mean", 0.0)).eval()
    torch.jit.script(baseline).save(str(content / "weights_challenge_2.pt"))

    reference.mkdir(parents=True, exist_ok=True)
    x = np.load(c1.export_dir / "reference_inputs.npy")
    np.save(reference / "inputs.npy", x)
    np.save(reference / "c1_outputs.npy", np.load(c1.export_dir / "reference_outputs.npy"))
    with torch.inference_mode():
        np.save(reference / "c2_outputs.npy", baseline(torch.from_numpy(x)).numpy())
    recipe = c1.recipe()
    return {
        "recipe": recipe.model_dump(mode="json"),
        "tolerance": {"atol": recipe.export.atol, "rtol": recipe.export.rtol},
        "challenges": {
            "1": _run_summary(c1),
            "2": {
                "kind": "baseline",
                "description": (
                    f"predicts the training mean of {stats.get('c2_target', 'externalizing')} "
                    f"({stats.get('c2_train_mean', 0.0):.4f}); expected nRMSE about 1.0"
                ),
                "value": stats.get("c2_train_mean", 0.0),
            },
        },
    }


def verify_eeg2025_bundle(
    content: Path, reference: Path, sandbox: Sandbox, device: str
) -> list[Check]:
    """Run harness_check.py on the unpacked zip in the sandbox; compare with the references."""
    if not (content / "submission.py").is_file():
        return [Check("submission.py", False, "no submission.py at the top of the zip")]
    inputs = reference / "inputs.npy"
    if not inputs.is_file():
        return [Check("reference", False, f"no {inputs} beside the bundle to call the model on")]
    manifest = read_json(content / MANIFEST)
    tol = manifest.get("tolerance", {"atol": 1e-4, "rtol": 1e-3})
    out = content.parent / f"{content.name}-outputs.npz"
    result = sandbox.run(HARNESS, [str(content), str(inputs), str(out), device])
    if result.returncode != 0 or not out.is_file():
        detail = result.last_error
        if "network access refused" in result.stderr:
            detail = f"the loader needs the network, which the competition refuses: {detail}"
        elif result.stdout.strip().startswith("{"):
            detail = "; ".join(json.loads(result.stdout.strip().splitlines()[-1])["problems"])
        return [Check("harness call (offline, without the toolkit)", False, detail)]
    runtime = json.loads(result.stdout.strip().splitlines()[-1])
    checks = [
        Check(
            "harness call (offline, without the toolkit)",
            True,
            f"Submission(100, {device}) -> (B, 1) float32, finite; torch {runtime['torch']}",
        )
    ]
    outputs = np.load(out)
    for challenge in ("c1", "c2"):
        expected = np.load(reference / f"{challenge}_outputs.npy")
        for mode in ("batch_1", "batch"):
            got = outputs[f"{challenge}_{mode}"]
            err = float(np.max(np.abs(got - expected)))
            ok = got.shape == expected.shape and np.allclose(got, expected, **tol)
            checks.append(
                Check(f"{challenge} outputs match reference ({mode})", ok, f"max error {err:.2e}")
            )
    out.unlink(missing_ok=True)
    return checks
