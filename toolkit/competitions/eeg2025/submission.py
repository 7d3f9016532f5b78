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
    summary = {
        "kind": "ensemble" if run.members_file.is_file() else "model",
        "recipe": recipe.name,
        "run": str(run.path),
        "metrics": run.metrics(),
        "parity": export_parity(run),
    }
    if run.members_file.is_file():
        summary["members"] = read_json(run.members_file)
    return summary


def runs_by_challenge(runs: list[RunDir]) -> dict[int, RunDir]:
    """{1: run, 2: run} from exported runs; each challenge at most once, challenge 1 required."""
    found: dict[int, RunDir] = {}
    for run in runs:
        challenge = run.recipe().data.challenge
        if challenge in found:
            raise ToolkitError(
                f"eeg2025 bundle: two challenge {challenge} runs ({found[challenge].path}, "
                f"{run.path}); give one per challenge (--c1 RUN --c2 RUN)"
            )
        ts = run.export_dir / "model.ts"
        if not ts.is_file():
            raise ToolkitError(
                f"{run.path}: no export/model.ts; add torchscript to export.formats and re-export"
            )
        found[challenge] = run
    if 1 not in found:
        raise ToolkitError("eeg2025 bundle: no challenge 1 run given (--c1 RUN_OR_RECIPE)")
    return found


def write_eeg2025_bundle(runs: list[RunDir], content: Path, reference: Path) -> dict[str, Any]:
    """submission.py + weights_challenge_{1,2}.pt into `content`; references for verify.

    Each challenge's weights are its run's TorchScript export (an ensemble run exports one
    averaging module). Without a challenge 2 run, its slot is the honest baseline: the
    training mean of the challenge 2 target over the challenge 1 run's training subjects."""
    by = runs_by_challenge(runs)
    shutil.copyfile(LOADER, content / "submission.py")
    reference.mkdir(parents=True, exist_ok=True)
    challenges: dict[str, Any] = {}
    for challenge, run in sorted(by.items()):
        shutil.copyfile(run.export_dir / "model.ts", content / f"weights_challenge_{challenge}.pt")
        for kind in ("inputs", "outputs"):
            shutil.copyfile(
                run.export_dir / f"reference_{kind}.npy", reference / f"c{challenge}_{kind}.npy"
            )
        challenges[str(challenge)] = _run_summary(run)
    if 2 not in by:
        stats = by[1].stats()
        value = stats.get("c2_train_mean", 0.0)
        baseline = ConstantModel(value).eval()
        torch.jit.script(baseline).save(str(content / "weights_challenge_2.pt"))
        x = np.load(reference / "c1_inputs.npy")
        np.save(reference / "c2_inputs.npy", x)
        with torch.inference_mode():
            np.save(reference / "c2_outputs.npy", baseline(torch.from_numpy(x)).numpy())
        challenges["2"] = {
            "kind": "baseline",
            "description": (
                f"predicts the training mean of {stats.get('c2_target', 'externalizing')} "
                f"({value:.4f}); expected nRMSE about 1.0"
            ),
            "value": value,
        }
    recipes = {str(c): run.recipe() for c, run in by.items()}
    atol = max(r.export.atol for r in recipes.values())
    rtol = max(r.export.rtol for r in recipes.values())
    return {
        "recipe": recipes["1"].model_dump(mode="json"),
        "recipes": {c: r.name for c, r in recipes.items()},
        "tolerance": {"atol": atol, "rtol": rtol},
        "challenges": challenges,
        "expected_score": _expected(recipes),
    }


def _expected(recipes: dict[str, Any]) -> dict[str, float | None]:
    """The plan's expected leaderboard scores, and the overall 0.3·C1 + 0.7·C2 when both exist."""
    scores = {f"c{c}": r.stage.expected_score for c, r in recipes.items()}
    if scores.get("c1") is not None and scores.get("c2") is not None:
        scores["overall"] = round(0.3 * scores["c1"] + 0.7 * scores["c2"], 5)
    return scores


def verify_eeg2025_bundle(
    content: Path, reference: Path, sandbox: Sandbox, device: str
) -> list[Check]:
    """Run harness_check.py on the unpacked zip in the sandbox; compare with the references."""
    if not (content / "submission.py").is_file():
        return [Check("submission.py", False, "no submission.py at the top of the zip")]
    inputs = [reference / f"c{c}_inputs.npy" for c in (1, 2)]
    absent = [str(p) for p in inputs if not p.is_file()]
    if absent:
        return [Check("reference", False, f"no {absent[0]} beside the bundle to call it on")]
    manifest = read_json(content / MANIFEST)
    tol = manifest.get("tolerance", {"atol": 1e-4, "rtol": 1e-3})
    out = content.parent / f"{content.name}-outputs.npz"
    result = sandbox.run(HARNESS, [str(content), *map(str, inputs), str(out), device])
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
