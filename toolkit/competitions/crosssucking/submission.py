"""The crosssucking bundle: predict.py (numpy + av + onnxruntime) + model.onnx (one file) +
model.json (clip and TTA settings); verified by running predict.py offline, without torch, on
freshly made synthetic events (plus two bad rows), against probabilities computed here."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from toolkit.bundle.sandbox import Sandbox
from toolkit.competitions.crosssucking.standalone import (
    PyAVReader,
    decode_events,
    event_clips,
    onnx_forward,
    predict_manifest,
    read_manifest,
    tail_probabilities,
)
from toolkit.competitions.crosssucking.synth import write_synthetic
from toolkit.competitions.protocol import Check
from toolkit.engine.rundir import RunDir
from toolkit.errors import ExportError, ToolkitError
from toolkit.export.run import export_parity
from toolkit.fileio import read_json, write_json

PREDICTOR = Path(__file__).resolve().parent / "standalone.py"
BAD_ROWS = (  # (row text, what predict.py must warn about)
    ("bad-missing,videos/absent.mp4,0,8,tail,absent", "video not found"),
    ("bad-label,videos/t02.mp4,0,8,hoof,t02", "unknown label 'hoof'"),
)
ATOL = 1e-4


def write_reference(reference: Path) -> Path:
    """A tiny synthetic set (one held-out video, no confound) + two bad rows: manifest.csv."""
    data = write_synthetic(
        reference / "data", videos=2, test_videos=1, events_per_video=3, confound=False, seed=123
    )
    lines = (data / "test.csv").read_text().splitlines()
    header = "event_id,video,start,end,label,video_id"
    columns = lines[0].split(",")
    keep = [columns.index(c) for c in header.split(",")]
    rows = [",".join(line.split(",")[i] for i in keep) for line in lines[1:]]
    manifest = data / "manifest.csv"
    manifest.write_text("\n".join([header, *rows, *(r for r, _ in BAD_ROWS)]) + "\n")
    return manifest


def eager_probabilities(run: RunDir, manifest: Path, settings: dict[str, Any]) -> np.ndarray:
    """The trained torch model's TTA P(tail) on the manifest's decodable events."""
    from toolkit.export.models import numpy_forward
    from toolkit.export.run import trained_model

    events, _ = read_manifest(manifest, require_label=False)
    decoded = decode_events(
        events, manifest.parent, settings, PyAVReader(), lambda m: None, manifest
    )
    clip_sets = [
        event_clips(frames, settings, settings["clips_per_event"]) for _, frames in decoded
    ]
    forward = numpy_forward(trained_model(run))
    return np.array(
        tail_probabilities(forward, clip_sets, settings["aggregation"], settings["batch_size"])
    )


def write_crosssucking_bundle(runs: list[RunDir], content: Path, reference: Path) -> dict[str, Any]:
    """predict.py, model.onnx (the export's, one file) and model.json into `content`; verify's
    synthetic videos, manifest and expected probabilities into `reference`."""
    if len(runs) != 1:
        raise ToolkitError(f"crosssucking bundle: give exactly one run (got {len(runs)})")
    run = runs[0]
    onnx = run.export_dir / "model.onnx"
    if not onnx.is_file():
        raise ToolkitError(f"{run.path}: no export/model.onnx; keep onnx in export.formats")
    if any(run.export_dir.glob("*.onnx.data")) or any(run.export_dir.glob("*.data")):
        raise ExportError(f"{run.export_dir}: model.onnx has external data; it must be one file")
    settings = run.stats()["predict"]
    shutil.copyfile(onnx, content / "model.onnx")
    shutil.copyfile(PREDICTOR, content / "predict.py")
    write_json(content / "model.json", settings)

    reference.mkdir(parents=True, exist_ok=True)
    manifest = write_reference(reference)
    rows, _ = predict_manifest(
        manifest, manifest.parent, onnx_forward(onnx, "cpu"), settings, lambda m: None
    )
    onnx_probs = np.array([float(r["p_tail"]) for r in rows])
    eager = eager_probabilities(run, manifest, settings)
    worst = float(np.max(np.abs(onnx_probs - eager)))
    if worst > 1e-3:
        raise ExportError(
            f"crosssucking bundle: model.onnx's TTA P(tail) differs from eager by {worst:.2e}"
        )
    write_json(reference / "expected.json", {r["event_id"]: float(r["p_tail"]) for r in rows})
    metrics = run.metrics()
    return {
        "recipe": run.recipe().model_dump(mode="json"),
        "run": str(run.path),
        "metrics": metrics,
        "eval_score": metrics.get("eval_score"),
        "test": metrics.get("test"),
        "parity": {"export": export_parity(run), "bundle_tta_p_tail_max_abs_error": worst},
        "predictor": settings,
    }


def verify_crosssucking_bundle(
    content: Path, reference: Path, sandbox: Sandbox, device: str
) -> list[Check]:
    """predict.py offline (no torch, no toolkit) on the reference manifest: bad rows warned
    and skipped, every good event's P(tail) equal to the reference."""
    for name in ("predict.py", "model.onnx", "model.json"):
        if not (content / name).is_file():
            return [Check(name, False, f"no {name} at the top of the zip")]
    manifest = reference / "data" / "manifest.csv"
    expected_file = reference / "expected.json"
    if not manifest.is_file() or not expected_file.is_file():
        return [Check("reference", False, f"no {manifest} / {expected_file} beside the bundle")]
    out = content.parent / f"{content.name}-out" / "predictions.csv"
    result = sandbox.run(content / "predict.py", [str(manifest), str(out), "--device", device])
    name = "predict.py (offline, numpy + av + onnxruntime only)"
    if result.returncode != 0 or not out.is_file():
        return [Check(name, False, result.last_error)]
    checks = [Check(name, True, result.stdout.strip().splitlines()[-1])]
    warned = [what for _, what in BAD_ROWS if what not in result.stderr]
    checks.append(
        Check(
            "bad rows warned and skipped",
            not warned,
            f"missing warnings: {warned}" if warned else f"{len(BAD_ROWS)} rows",
        )
    )
    with out.open(newline="") as fh:
        got = {r["event_id"]: float(r["p_tail"]) for r in csv.DictReader(fh)}
    expected = read_json(expected_file)
    differ = [k for k, v in expected.items() if k not in got or abs(got[k] - v) > ATOL]
    extra = sorted(set(got) - set(expected))
    detail = (
        f"differ on {differ + extra}"
        if differ or extra
        else f"{len(expected)} events, |dp| <= {ATOL}"
    )
    checks.append(Check("P(tail) matches the reference", not (differ or extra), detail))
    shutil.rmtree(out.parent, ignore_errors=True)
    return checks
