"""ARC end to end: evaluation every N epochs, a budgeted resumable run, and the bundle's
predict.py run offline without the toolkit (or torch) on unseen tasks."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from tests.conftest import DATA, only_run
from tests.test_arc import kaggle_files
from toolkit.bundle.sandbox import Sandbox
from toolkit.competitions.arc import ARC
from toolkit.competitions.arc.score import check_submission, score_files
from toolkit.competitions.arc.synth import verify_challenges

pytestmark = pytest.mark.slow
RECIPE = "arc/seed-7h"


def test_evaluation_every_n_epochs_writes_predictions_and_keeps_the_best(toolkit):
    result = toolkit("train", RECIPE, "--smoke", "--set", "train.epochs=3",
                     "--set", "train.eval_every_n_epochs=2")  # fmt: skip
    assert result.exit_code == 0, result.output
    run = only_run(toolkit.root, RECIPE)
    history = json.loads((run / "history.json").read_text())
    # epoch 1 is the 2nd epoch (every 2), epoch 2 the last one (always evaluated)
    assert [r["eval_score"] is not None for r in history] == [False, True, True]
    assert all(r["samples_per_s"] > 0 for r in history)
    record = json.loads((run / "eval_predictions.json").read_text())
    assert record["epoch"] == 2 and record["tasks"] == 4
    for task in record["predictions"].values():
        assert len(task["attempts"]) == len(task["correct"])
        assert all(len(pair) == 2 for pair in task["attempts"])
    metrics = json.loads((run / "metrics.json").read_text())
    best = [r["eval_score"] for r in history if r["eval_score"] is not None]
    assert metrics["eval_score"] == max(best)
    assert metrics["eval_epoch"] in (1, 2)
    assert 0.0 <= metrics["eval_baselines"]["copy_input"] < 1.0
    assert (run / "checkpoints" / "best.ckpt").is_file()
    assert re.search(r"eval epoch 1: score \d\.\d{4}", result.output)


def test_sigterm_then_resume_finishes_the_arc_run(toolkit):
    env = {**os.environ, **toolkit.env}
    proc = subprocess.Popen(
        [sys.executable, "-m", "toolkit.cli.main", "train", RECIPE, "--smoke",
         "--set", "train.epochs=30", "--set", "train.eval_every_n_epochs=100"],
        cwd=toolkit.root, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        found = list((toolkit.root / "runs").rglob("history.json"))
        if found and json.loads(found[0].read_text() or "[]"):
            break
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err
    run = only_run(toolkit.root, RECIPE)
    assert (run / "checkpoints" / "last.ckpt").is_file()
    steps_per_epoch = json.loads((run / "history.json").read_text())[0]["step"]
    result = toolkit("train", RECIPE, "--smoke", "--resume")
    assert result.exit_code == 0, result.output
    rows = json.loads((run / "history.json").read_text())
    assert [r["epoch"] for r in rows] == list(range(30))
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["epochs_completed"] == 30
    assert metrics["global_step"] == 30 * steps_per_epoch  # the cut epoch was finished, not lost
    evaluated = [r["epoch"] for r in rows if r["eval_score"] is not None]
    assert evaluated[-1] == 29 and metrics["eval_epoch"] in evaluated  # the last one, always


@pytest.fixture(scope="module")
def arc_bundle(smoke_runs) -> Path:
    result, root = smoke_runs(RECIPE)
    assert result.exit_code == 0, result.output
    return root / "submissions" / "arc" / "seed-7h-smoke"


def test_bundle_holds_only_the_predictor_model_and_settings(arc_bundle: Path):
    with zipfile.ZipFile(arc_bundle / "submission.zip") as zf:
        names = sorted(zf.namelist())
        manifest = json.loads(zf.read("manifest.json"))
    assert names == ["decoder.onnx", "manifest.json", "model.json", "model.onnx", "predict.py"]
    assert manifest["competition"] == "arc"
    assert manifest["parity"]["bundle_onnx"]["ok"]
    assert manifest["parity"]["bundle_onnx"]["decoder_max_abs_error"] < 1e-3
    assert manifest["predictor"]["max_len"] == 192


def test_predict_py_offline_without_toolkit_or_torch_on_unseen_tasks(arc_bundle, tmp_path):
    content = tmp_path / "content"
    with zipfile.ZipFile(arc_bundle / "submission.zip") as zf:
        zf.extractall(content)
    challenges, counts = verify_challenges(seed=99)
    real, solutions = kaggle_files(DATA / "arc" / "evaluation", tmp_path)
    challenges.update(json.loads(real.read_text()))
    counts.update({t: len(v) for t, v in json.loads(solutions.read_text()).items()})
    (tmp_path / "c.json").write_text(json.dumps(challenges))
    out = tmp_path / "out" / "submission.json"
    sandbox = Sandbox(blocked=("toolkit", *ARC.unavailable_modules))
    result = sandbox.run(content / "predict.py", [str(tmp_path / "c.json"), str(out)])
    assert result.returncode == 0, result.stderr
    submission = json.loads(out.read_text())
    check_submission(submission, counts)
    assert counts["multi3ts"] == 3 and len(submission["multi3ts"]) == 3
    assert "task badbad00" in result.stderr and "ragged rows" in result.stderr
    assert submission["badbad00"] == [{"attempt_1": [[0]], "attempt_2": [[0]]}] * 2
    assert len(submission["30x30big"]) == 1 and len(submission["1x1tiny0"]) == 1

    # with decoder.onnx corrupt (a warning) or gone, decoding re-runs model.onnx per cell and
    # writes the same answers
    (content / "decoder.onnx").write_bytes(b"not onnx")
    slow = tmp_path / "out" / "uncached.json"
    result = sandbox.run(content / "predict.py", [str(tmp_path / "c.json"), str(slow)])
    assert result.returncode == 0, result.stderr
    assert "decoding without the cache" in result.stderr
    uncached = json.loads(slow.read_text())
    assert {t: v for t, v in uncached.items() if t != "30x30big"} == {
        t: v for t, v in submission.items() if t != "30x30big"  # may stop at its time limit
    }
    (content / "decoder.onnx").unlink()

    # the same file without the model still yields a valid, padded submission (and exit 1)
    (content / "model.onnx").unlink()
    broken = sandbox.run(content / "predict.py", [str(tmp_path / "c.json"), str(out)])
    assert broken.returncode == 1 and "cannot load the model" in broken.stderr
    check_submission(json.loads(out.read_text()), counts)


def test_predict_py_bad_challenges_file_is_one_line(arc_bundle, tmp_path):
    content = tmp_path / "content"
    with zipfile.ZipFile(arc_bundle / "submission.zip") as zf:
        zf.extractall(content)
    sandbox = Sandbox(blocked=("toolkit", *ARC.unavailable_modules))
    cases = [
        ("[1, 2]", "expected an object of task_id -> task"),
        ("{", "not valid JSON"),
        ("{}", "no tasks in the file"),
        ('{"a": {"train": [], "test": []}}', "no task has test inputs"),
    ]
    for text, message in cases:
        (tmp_path / "c.json").write_text(text)
        result = sandbox.run(
            content / "predict.py", [str(tmp_path / "c.json"), str(tmp_path / "o")]
        )
        assert result.returncode == 2
        assert message in result.last_error and result.last_error.startswith("error:")


def test_toolkit_predict_runs_the_bundle(toolkit, arc_bundle, tmp_path):
    challenges, solutions = kaggle_files(DATA / "arc" / "training", tmp_path)
    out = tmp_path / "sub.json"
    result = toolkit("predict", str(arc_bundle), str(challenges), "--out", str(out))
    assert result.exit_code == 0, result.output
    assert "7 tasks, 10 test inputs" in result.output
    assert score_files(out, solutions)["outputs"] == 10
