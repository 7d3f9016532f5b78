"""mabe end to end: the pair-tcn smoke run scores clearly above both baselines; its bundle's
predict.py runs without the toolkit and torch on a FRESH synthetic test split with bad inputs,
and the CLI's score / predict / report accept what it writes; bad input gets one line."""

from __future__ import annotations

import re
import shutil
import zipfile
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import bundle_path
from toolkit.bundle.sandbox import Sandbox
from toolkit.competitions.mabe.metric import mouse_fbeta
from toolkit.competitions.mabe.synth import add_bad_test_inputs, write_synthetic
from toolkit.fileio import read_json

BLOCKED = ("toolkit", "torch", "lightning", "pytorch_lightning", "braindecode", "torchvision")


@pytest.fixture(scope="module")
def smoke(smoke_runs) -> tuple[Path, Path]:
    """(bundle folder, run folder) of `toolkit run mabe/pair-tcn --smoke`."""
    result, root = smoke_runs("mabe/pair-tcn")
    assert result.exit_code == 0, result.output
    assert "verify  passed" in result.output
    runs = [p for p in (root / "runs" / "mabe" / "pair-tcn").iterdir() if p.is_dir()]
    return bundle_path(result.output), max(runs, key=lambda p: p.stat().st_mtime)


@pytest.fixture(scope="module")
def unpacked(smoke, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("mabe-bundle")
    with zipfile.ZipFile(smoke[0] / "submission.zip") as zf:
        zf.extractall(folder)
    return folder


@pytest.fixture(scope="module")
def fresh_split(tmp_path_factory) -> tuple[Path, list[tuple[int, str]]]:
    """A test split no run or bundle has seen (another seed), bad inputs mixed in."""
    root = write_synthetic(tmp_path_factory.mktemp("fresh"), videos=3, frames=600, seed=11,
                           train=False)  # fmt: skip
    return root, add_bad_test_inputs(root, 600, seed=11)


def test_smoke_run_scores_clearly_above_both_baselines(smoke):
    bundle, run = smoke
    metrics = read_json(run / "metrics.json")
    assert metrics["val_mabe_fbeta"] > 0.5
    assert metrics["val_mabe_fbeta"] > metrics["val_baselines_mabe_fbeta"]["most_frequent"] + 0.3
    assert metrics["val_baselines_mabe_fbeta"]["nothing"] == 0.0
    test = read_json(bundle / "manifest.json")["synthetic_test"]
    assert test["score"] > 0.3 and test["score"] > test["baselines"]["most_frequent"] + 0.2
    post = read_json(run / "postprocess.json")
    assert set(post) >= {"thresholds", "smooth", "max_gap", "min_duration"}


def test_bundle_is_predict_py_models_and_parameters(smoke):
    with zipfile.ZipFile(smoke[0] / "submission.zip") as zf:
        names = sorted(zf.namelist())
        spec = __import__("json").loads(zf.read("model.json"))
        script = zf.read("predict.py").decode()
    assert names == ["dataset-metadata.json", "manifest.json", "model.json", "model.onnx",
                     "postprocess.json", "predict.py"]  # fmt: skip
    assert spec["models"] == {"*": "model.onnx"} and spec["features"] == "pair"
    assert not re.search(r"^\s*(import|from)\s+(torch|toolkit|lightning)\b", script, re.M)


def test_predict_py_without_torch_writes_a_submission_the_metric_accepts(
    unpacked, fresh_split, toolkit, tmp_path
):
    data, cases = fresh_split
    out = tmp_path / "out" / "submission.csv"
    result = Sandbox(blocked=BLOCKED, timeout=300).run(
        unpacked / "predict.py", [str(data), str(out), "--device", "cpu"]
    )
    assert result.returncode == 0, result.stderr
    sub = pd.read_csv(out)
    for video_id, what in cases:
        if what in ("missing tracking", "renamed columns", "behaviors_labeled not a list"):
            assert f"video {video_id} " in result.stderr, what
            assert video_id not in set(sub["video_id"]), what
    assert f"video {cases[2][0]} (lab SynthMARS): mouse2 has no tracking" in result.stderr
    failing = {v for v, what in cases
               if what in ("missing tracking", "renamed columns", "behaviors_labeled not a list")}
    failed = {int(v) for v in re.findall(r"video (\d+) \(lab \w+\): .*; no rows for it",
                                         result.stderr)}  # fmt: skip
    assert failed == failing  # the one-mouse and NaN-nose videos are predicted, not failed
    good = set(pd.read_csv(data / "solution.csv")["video_id"]) - failing
    assert len(good) == 5 and len(good & set(sub["video_id"])) >= 4
    scored = toolkit("score", "mabe", str(out), str(data / "solution.csv"))
    assert scored.exit_code == 0, scored.output
    score = float(re.search(r"score\s+([\d.]+)", scored.output).group(1))
    assert score > 0.3
    assert "lab SynthHRnet" in scored.output and "F1 SynthMARS/rear" in scored.output
    # a data root with annotations: its broken whitelist is one line naming the video...
    broken = toolkit("score", "mabe", str(out), str(data))
    assert broken.exit_code == 2 and f"video {cases[4][0]}" in broken.output, broken.output
    assert "behaviors_labeled is not a list" in broken.output
    # ...and without that video it scores like the solution file without it
    clean = shutil.copytree(data, tmp_path / "clean")
    test = pd.read_csv(clean / "test.csv")
    test[test["video_id"] != cases[4][0]].to_csv(clean / "test.csv", index=False)
    from_root = toolkit("score", "mabe", str(out), str(clean))
    assert from_root.exit_code == 0, from_root.output
    solution = pd.read_csv(data / "solution.csv")
    expected = mouse_fbeta(solution[solution["video_id"] != cases[4][0]], sub)["score"]
    assert f"score {expected:.4f}" in from_root.output


def test_toolkit_predict_runs_the_bundle_and_report_draws_per_action_f1(
    smoke, fresh_split, toolkit, tmp_path
):
    data, _ = fresh_split
    out = tmp_path / "sub.csv"
    result = toolkit("predict", str(smoke[0]), str(data), "--out", str(out), "--device", "cpu")
    assert result.exit_code == 0, result.output
    assert "rows for" in result.output and out.is_file()
    assert list(pd.read_csv(out).columns) == [
        "row_id", "video_id", "agent_id", "target_id", "action", "start_frame", "stop_frame"
    ]  # fmt: skip
    report = toolkit("report", str(smoke[1]), "--out", str(tmp_path / "report"))
    assert report.exit_code == 0, report.output
    png = tmp_path / "report" / "per_action_f1.png"
    assert png.is_file() and png.read_bytes()[:4] == b"\x89PNG"


def _submission(rows) -> pd.DataFrame:
    cols = ["video_id", "agent_id", "target_id", "action", "start_frame", "stop_frame"]
    frame = pd.DataFrame(rows, columns=cols)
    frame.insert(0, "row_id", range(len(frame)))
    return frame


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([(0, "mouse1", "mouse2", "chase", 0, 10), (0, "mouse1", "mouse2", "sniff", 5, 9)],
         "multiple predictions for the same frame"),
        ([(12345, "mouse1", "mouse2", "chase", 0, 10)], "unknown video id"),
        ([(0, "m1", "mouse2", "chase", 0, 10)], "unknown agent/target id m1,mouse2"),
        ([], "no rows"),
    ],
)  # fmt: skip
def test_score_refuses_bad_submissions_with_one_line(fresh_split, toolkit, tmp_path, rows, message):
    data, _ = fresh_split
    solution = pd.read_csv(data / "solution.csv")
    video = int(solution.query("lab_id == 'SynthMARS'")["video_id"].iloc[0])
    rows = [(video if r[0] == 0 else r[0], *r[1:]) for r in rows]
    path = tmp_path / "bad.csv"
    _submission(rows).to_csv(path, index=False)
    result = toolkit("score", "mabe", str(path), str(data / "solution.csv"))
    assert result.exit_code == 2
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and message in lines[0] and "bad.csv" in lines[0], result.output


def test_predict_py_refuses_an_empty_test_csv_with_one_line(unpacked, tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "test.csv").write_text("lab_id,video_id,behaviors_labeled\n")
    out = tmp_path / "submission.csv"
    result = Sandbox(blocked=BLOCKED, timeout=120).run(
        unpacked / "predict.py", [str(tmp_path / "data"), str(out)]
    )
    assert result.returncode == 2 and not out.exists()
    last = result.stderr.strip().splitlines()[-1]
    assert last.endswith("test.csv: no videos (the file has a header only)")


@pytest.mark.slow
def test_one_model_per_lab_ensemble_bundles_a_model_per_lab(toolkit):
    members = ("[{name: mars, set: {data.labs: [SynthMARS]}}, "
               "{name: hrnet, set: {data.labs: [SynthHRnet]}}]")  # fmt: skip
    result = toolkit("run", "mabe/pair-tcn", "--smoke", "--set", f"ensemble.members={members}",
                     "--set", "train.epochs=2", "--set", "data.val_fraction=0.5")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "verify  passed" in result.output
    with zipfile.ZipFile(bundle_path(result.output) / "submission.zip") as zf:
        spec = __import__("json").loads(zf.read("model.json"))
        post = __import__("json").loads(zf.read("postprocess.json"))
        names = set(zf.namelist())
    assert spec["models"] == {"*": "model.onnx", "SynthMARS": "model-SynthMARS.onnx",
                              "SynthHRnet": "model-SynthHRnet.onnx"}  # fmt: skip
    assert set(spec["models"].values()) <= names
    assert {"SynthMARS", "SynthHRnet"} <= set(post["thresholds"])
    assert spec["outputs"] == ["chase", "mount", "rear", "sniff"]  # one output space for all


def test_predict_py_never_writes_an_empty_submission(unpacked, fresh_split, tmp_path):
    data, _ = fresh_split
    root = shutil.copytree(data, tmp_path / "data")
    shutil.rmtree(root / "test_tracking")  # every video fails: nothing is written
    out = tmp_path / "submission.csv"
    result = Sandbox(blocked=BLOCKED, timeout=120).run(
        unpacked / "predict.py", [str(root), str(out)]
    )
    assert result.returncode == 2 and not out.exists()
    assert "every video of" in result.stderr.strip().splitlines()[-1]
    # a model that predicts nothing still leaves the metric one valid row to accept
    spec = __import__("json").loads((unpacked / "model.json").read_text())
    post = {"threshold": 2.0, "thresholds": {}}  # above any probability
    from toolkit.competitions.mabe.standalone import onnx_forward, predict_all

    sub, failed = predict_all(data, {"*": onnx_forward(unpacked / "model.onnx", "cpu")}, spec,
                              post, lambda m: None)  # fmt: skip
    assert len(sub) == 1 and sub["stop_frame"].iloc[0] - sub["start_frame"].iloc[0] == 1
    assert len(failed) == 3
