"""crosssucking end to end (the smoke run that tests/test_pipeline.py also makes): TTA
evaluation every epoch, the test report, the bundle, `toolkit predict` on real videos without
torch, and `toolkit score` agreeing with test_metrics.json."""

from __future__ import annotations

import csv
import json
import shutil
import zipfile
from pathlib import Path

import pytest

from tests.conftest import DATA, bundle_path
from tests.test_pipeline import newest_run

pytestmark = pytest.mark.slow
RECIPE = "crosssucking/intravideo"


@pytest.fixture(scope="module")
def smoke(smoke_runs) -> tuple[Path, Path]:
    """(run folder, bundle folder) of the verified smoke run."""
    result, root = smoke_runs(RECIPE)
    assert result.exit_code == 0, result.output
    assert "verify  passed" in result.output
    return newest_run(root, RECIPE), bundle_path(result.output)


def test_every_epoch_is_scored_with_clips_and_the_best_tail_f1_kept(smoke):
    run, _ = smoke
    history = json.loads((run / "history.json").read_text())
    assert len(history) == 3 and all(r["eval_score"] is not None for r in history)
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["metric"] == "tail_f1"
    assert metrics["eval_score"] == max(r["eval_score"] for r in history)
    assert metrics["eval_details"]["clips_per_event"] == 2
    stats = json.loads((run / "data_stats.json").read_text())
    assert stats["sampler"]["balanced"] and sum(stats["sampler"]["class_counts"].values()) > 0
    split = json.loads((run / "split_report.json").read_text())
    assert split["kind"] == "intravideo" and split["videos_on_both_sides"]["train-val"] == 8
    assert split["test"]["videos"] == 3 and split["videos_on_both_sides"]["train-test"] == 0
    record = json.loads((run / "eval_predictions.json").read_text())
    assert len(record["predictions"]) == split["val"]["events"]


def test_test_report_files(smoke):
    run, _ = smoke
    report = json.loads((run / "test_metrics.json").read_text())
    assert report["events"] == 18 and report["clips_per_event"] == 2
    for key in ("tail_recall", "tail_f1", "macro_f1", "ece_positive_class_15", "ece_top_label_15"):
        assert 0.0 <= report[key] <= 1.0
    assert report["confounding"]["videos"] == 3
    with (run / "test_predictions.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 18 and {r["video_id"] for r in rows} == {"t08", "t09", "t10"}
    assert all(0.0 <= float(r["p_tail"]) <= 1.0 for r in rows)
    for name in ("reliability.png", "confusion.png"):
        assert (run / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["test"]["tail_f1"] == report["tail_f1"]


def test_bundle_holds_predict_py_one_onnx_file_and_settings(smoke):
    run, bundle = smoke
    with zipfile.ZipFile(bundle / "submission.zip") as zf:
        names = sorted(zf.namelist())
        settings = json.loads(zf.read("model.json"))
    assert names == ["manifest.json", "model.json", "model.onnx", "predict.py"]
    assert settings["clips_per_event"] == 2 and settings["crop"] == 32
    parity = json.loads((run / "export" / "parity.json").read_text())
    assert parity["onnx"]["ok"] and parity["torchscript"]["ok"]
    assert not list((run / "export").glob("*.data"))  # one ONNX file, no external data


def test_predict_on_real_videos_and_score_agrees_with_the_run(smoke, toolkit):
    run, bundle = smoke
    videos = toolkit.root / "real"
    videos.mkdir()
    shutil.copyfile(DATA / "crosssucking" / "openfield_m3v1_first13s.mp4", videos / "m3.mp4")
    manifest = videos / "events.csv"
    manifest.write_text("video,start,end,video_id\nm3.mp4,0,30,m3\nm3.mp4,190,230,m3\n")
    out = toolkit.root / "pred.csv"
    result = toolkit("predict", str(bundle), str(manifest), "--out", str(out), "--device", "cpu")
    assert result.exit_code == 0, result.output
    with out.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["event_id"] for r in rows] == ["1", "2"]
    assert all(0.0 <= float(r["p_tail"]) <= 1.0 for r in rows)

    test_manifest = Path(json.loads((run / "data_stats.json").read_text())["data_root"])
    result = toolkit("score", "crosssucking", str(run / "test_predictions.csv"),
                     str(test_manifest / "test.csv"))  # fmt: skip
    assert result.exit_code == 0, result.output
    report = json.loads((run / "test_metrics.json").read_text())
    assert f"score {report['tail_f1']:.4f}" in result.output
