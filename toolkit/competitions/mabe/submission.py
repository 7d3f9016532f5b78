"""The mabe bundle: predict.py (numpy + pandas/pyarrow + onnxruntime) + model.onnx (or one
model per lab for per-lab ensembles) + model.json (features, frame rates, outputs) +
postprocess.json (tuned thresholds); verified by running predict.py offline on a fresh
synthetic test split with bad inputs mixed in, then checking format, overlap and score."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from toolkit.bundle.sandbox import Sandbox
from toolkit.competitions.mabe.evaluate import (
    POSTPROCESS,
    default_post,
    model_spec,
    most_frequent_baseline,
    safe_score,
)
from toolkit.competitions.mabe.metric import MetricError, overlapping_pair
from toolkit.competitions.mabe.standalone import (
    SUBMISSION_COLUMNS,
    InputError,
    label_fps,
    onnx_forward,
    parse_behaviors,
    predict_all,
    write_csv_atomic,
)
from toolkit.competitions.mabe.synth import LABEL_FPS, add_bad_test_inputs, write_synthetic
from toolkit.competitions.protocol import Check
from toolkit.engine.rundir import RunDir
from toolkit.errors import ExportError, ToolkitError
from toolkit.export.models import parity, to_onnx
from toolkit.export.run import export_parity, trained_model
from toolkit.fileio import read_json, write_json

PREDICTOR = Path(__file__).resolve().parent / "standalone.py"
VERIFY_SEED = 7  # the verify split is never a training split (those use data.synthetic.seed)
EXPECTED_FAILURES = ("missing tracking", "renamed columns", "behaviors_labeled not a list")


def _member_models(run: RunDir, content: Path, atol: float) -> tuple[dict[str, str], dict]:
    """One ONNX file per single-lab ensemble member (model-<lab>.onnx), parity-checked, and
    the members' tuned thresholds (each for its own lab)."""
    from toolkit.engine.ensemble import member_runs

    models: dict[str, str] = {}
    thresholds: dict[str, dict[str, float]] = {}
    x = np.load(run.export_dir / "reference_inputs.npy").astype(np.float32)
    for member in member_runs(run):
        labs = member.recipe().data.labs
        if not labs or len(labs) != 1:
            continue
        model = trained_model(member)
        name = f"model-{labs[0]}.onnx"
        path = to_onnx(model, torch.from_numpy(x), content / name)
        with torch.inference_mode():
            expected = model(torch.from_numpy(x)).numpy()
        check = parity("onnx", path, x, expected, atol, 1e-3)
        if not check["ok"]:
            raise ExportError(f"mabe bundle: {name} disagrees with eager: {check}")
        models[labs[0]] = name
        post = member.path / POSTPROCESS
        if post.is_file():
            tuned = read_json(post).get("thresholds", {})
            if labs[0] in tuned:
                thresholds[labs[0]] = tuned[labs[0]]
    return models, thresholds


def kaggle_metadata(slug: str) -> dict[str, Any]:
    """dataset-metadata.json: the unzipped bundle is a Kaggle dataset (`kaggle datasets create
    -p FOLDER` after setting your user name in `id`), attached to the offline notebook."""
    return {
        "title": f"MABe bundle {slug}"[:50],
        "id": f"KAGGLE_USERNAME/mabe-{slug}"[:60],
        "licenses": [{"name": "CC0-1.0"}],
    }


def reference_split(folder: Path, frames: int) -> tuple[Path, list[tuple[int, str]]]:
    """A fresh synthetic test split (one video per lab) plus the bad-input videos."""
    data = folder / "data"
    write_synthetic(data, videos=3, frames=frames, seed=VERIFY_SEED, train=False)
    return data, add_bad_test_inputs(data, frames, VERIFY_SEED)


def test_baseline(data: Path, spec: dict, solution: pd.DataFrame) -> float:
    """The most-frequent-action baseline's score on a test split (from test.csv alone)."""
    items = []
    for row in pd.read_csv(data / "test.csv").to_dict("records"):
        try:
            behaviors = parse_behaviors(row["behaviors_labeled"], "")
        except InputError:
            continue
        fps = label_fps(str(row["lab_id"]), float(row["frames_per_second"]), spec)
        items.append((int(row["video_id"]), behaviors, round(row["video_duration_sec"] * fps)))
    return safe_score(solution, most_frequent_baseline(items, spec["action_priority"]))["score"]


def write_mabe_bundle(runs: list[RunDir], content: Path, reference: Path) -> dict[str, Any]:
    """predict.py, model(s), model.json and postprocess.json into `content`; the verify split,
    its expected submission and score into `reference`."""
    if len(runs) != 1:
        raise ToolkitError(f"mabe bundle: give exactly one run (got {len(runs)})")
    run = runs[0]
    recipe = run.recipe()
    onnx = run.export_dir / "model.onnx"
    if not onnx.is_file():
        raise ToolkitError(f"{run.path}: no export/model.onnx; export with formats [onnx]")
    shutil.copyfile(onnx, content / "model.onnx")
    models = {"*": "model.onnx"}
    post_file = run.path / POSTPROCESS
    post = read_json(post_file) if post_file.is_file() else default_post(recipe.data)
    if run.members_file.is_file():
        per_lab, thresholds = _member_models(run, content, max(recipe.export.atol, 1e-4))
        models.update(per_lab)
        post["thresholds"] = {**post.get("thresholds", {}), **thresholds}
    spec = {**model_spec(run.stats()), "models": models}
    if recipe.data.source == "synthetic":
        spec["label_fps"] = {**LABEL_FPS, **spec["label_fps"]}
    write_json(content / "model.json", spec)
    write_json(content / "postprocess.json", post)
    shutil.copyfile(PREDICTOR, content / "predict.py")
    write_json(content / "dataset-metadata.json", kaggle_metadata(recipe.slug))

    reference.mkdir(parents=True, exist_ok=True)
    data, cases = reference_split(reference, recipe.data.synthetic.frames)
    forwards = {lab: onnx_forward(content / name, "cpu") for lab, name in models.items()}
    warnings: list[str] = []
    expected, failed = predict_all(data, forwards, spec, post, warnings.append)
    write_csv_atomic(reference / "submission.csv", expected)
    solution = pd.read_csv(data / "solution.csv")
    result = safe_score(solution, expected)
    summary = {
        "score": result["score"],
        "per_lab": result["per_lab"],
        "rows": len(expected),
        "failed": failed,
        "videos_with_rows": sorted(int(v) for v in expected["video_id"].unique()),
        "expected_failures": [v for v, what in cases if what in EXPECTED_FAILURES],
        "baselines": {"nothing": 0.0, "most_frequent": test_baseline(data, spec, solution)},
    }
    write_json(reference / "expected.json", summary)
    metrics = run.metrics()
    return {
        "recipe": recipe.model_dump(mode="json"),
        "run": str(run.path),
        "metrics": metrics,
        "eval_score": metrics.get("eval_score"),
        "val_mabe_fbeta": metrics.get("val_mabe_fbeta"),
        "synthetic_test": summary,
        "parity": {"export": export_parity(run)},
        "models": models,
    }


def format_problem(sub: pd.DataFrame, test: pd.DataFrame) -> str | None:
    """Why `sub` is not a valid submission for `test` (columns, ids, whitelist, frames)."""
    if list(sub.columns) != list(SUBMISSION_COLUMNS):
        return f"columns {list(sub.columns)} != {list(SUBMISSION_COLUMNS)}"
    if sub["row_id"].duplicated().any():
        return "row_id is not unique"
    if (sub["start_frame"] >= sub["stop_frame"]).any() or (sub["start_frame"] < 0).any():
        return "an interval is empty or starts before frame 0"
    allowed = set()
    for row in test.to_dict("records"):
        try:
            allowed |= {(int(row["video_id"]), *e.split(","))
                        for e in parse_behaviors(row["behaviors_labeled"], "")}  # fmt: skip
        except InputError:
            continue
    triples = zip(sub["video_id"], sub["agent_id"], sub["target_id"], sub["action"], strict=True)
    outside = [t for t in triples if (int(t[0]), *t[1:]) not in allowed]
    if outside:
        return f"{len(outside)} row(s) outside their video's whitelist (first: {outside[0]})"
    return None


def verify_mabe_bundle(
    content: Path, reference: Path, sandbox: Sandbox, device: str
) -> list[Check]:
    """predict.py offline on the verify split; format, overlap rule, coverage, score."""
    spec_file = content / "model.json"
    if not (content / "predict.py").is_file() or not spec_file.is_file():
        return [Check("bundle files", False, "predict.py and model.json must be at the top")]
    missing = [n for n in read_json(spec_file)["models"].values() if not (content / n).is_file()]
    if missing:
        return [Check("bundle files", False, f"missing model file(s): {', '.join(missing)}")]
    data = reference / "data"
    if not (reference / "expected.json").is_file() or not data.is_dir():
        return [Check("reference", False, f"no verify split under {reference}")]
    expected = read_json(reference / "expected.json")
    out = content.parent / f"{content.name}-out" / "submission.csv"
    result = sandbox.run(content / "predict.py", [str(data), str(out), "--device", device])
    name = "predict.py (offline; numpy, pandas, pyarrow, onnxruntime only)"
    if result.returncode != 0 or not out.is_file():
        detail = result.last_error
        if "network access refused" in result.stderr:
            detail = f"predict.py needs the network, which the competition refuses: {detail}"
        return [Check(name, False, detail)]
    checks = [Check(name, True, result.stdout.strip().splitlines()[-1])]
    sub = pd.read_csv(out)
    test = pd.read_csv(data / "test.csv")
    problem = format_problem(sub, test)
    detail = problem or f"{len(sub)} rows, ids and actions from the whitelists"
    checks.append(Check("submission.csv format", problem is None, detail))
    clash = overlapping_pair(sub) if len(sub) else None
    detail = "no (agent, target) frame has two actions"
    if clash is not None:
        detail = f"video {clash['video_id']} {clash['agent_id']},{clash['target_id']} overlaps"
    checks.append(Check("overlap rule", clash is None, detail))
    bad = set(expected["expected_failures"])
    unwarned = sorted(v for v in bad if f"video {v} " not in result.stderr)
    with_rows = {int(v) for v in sub["video_id"].unique()}
    differ = sorted(with_rows ^ set(expected["videos_with_rows"]))
    ok = not unwarned and not (bad & with_rows) and not differ
    detail = (f"{len(bad)} bad video(s) warned and skipped; rows for the same "
              f"{len(with_rows)} video(s) as the reference")  # fmt: skip
    if not ok:
        detail = (f"no warning for {unwarned}; rows for bad videos {sorted(bad & with_rows)}; "
                  f"videos with rows differ from the reference: {differ}")  # fmt: skip
    checks.append(Check("every test video covered; failures warn and are skipped", ok, detail))
    try:
        score = safe_score(pd.read_csv(data / "solution.csv"), sub)["score"]
    except MetricError as exc:
        checks.append(Check("score", False, str(exc)))
        return checks
    base = expected["baselines"]
    same = abs(score - expected["score"]) < 1e-9
    checks.append(Check(
        "score matches the reference", same,
        f"{score:.4f} (reference {expected['score']:.4f}; baselines: nothing "
        f"{base['nothing']:.4f}, most frequent {base['most_frequent']:.4f})",
    ))  # fmt: skip
    shutil.rmtree(out.parent, ignore_errors=True)
    return checks
