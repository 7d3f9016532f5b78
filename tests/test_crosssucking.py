"""crosssucking, fast parts: the PyAV reader (bad seeks on a real file), synthetic MP4s and their
planted signal and confound, the decode-once cache, splits, metrics, the confounding check, bad
input lines, `toolkit score`, and predict.py run offline without torch on real videos."""

from __future__ import annotations

import csv
import logging
import shutil
from pathlib import Path

import av
import numpy as np
import pytest

from tests.conftest import DATA
from toolkit.bundle.sandbox import Sandbox
from toolkit.competitions.crosssucking import CrossSucking
from toolkit.competitions.crosssucking.cache import EventFrames
from toolkit.competitions.crosssucking.config import BoostConfig, SplitConfig
from toolkit.competitions.crosssucking.events import ClipEvent, LoadReport, load_events
from toolkit.competitions.crosssucking.metrics import (
    binary_report,
    confounding,
    expected_calibration_error,
)
from toolkit.competitions.crosssucking.splits import boosted, split_events, split_report
from toolkit.competitions.crosssucking.standalone import (
    Event,
    PyAVReader,
    aggregate,
    clip_starts,
    read_manifest,
)
from toolkit.competitions.crosssucking.synth import write_synthetic
from toolkit.errors import DataError

BAD_SEEK = DATA / "crosssucking" / "openfield_m3v1_first13s.mp4"
COMP = CrossSucking()


@pytest.fixture(scope="module")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("calves")
    return write_synthetic(root, videos=6, test_videos=2, events_per_video=5, seed=3)


def rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


# --- reader -----------------------------------------------------------------------------------


def test_bad_seek_on_a_real_file_is_detected_and_decoded_from_the_start():
    reader = PyAVReader()
    assert reader._after_seek(BAD_SEEK, 185, 200, 48) is None  # the seek lands on garbage
    frames = reader.read(BAD_SEEK, 185, 200, 48)
    assert reader.reseeks == 1
    in_order = np.stack(reader._from_start(BAD_SEEK, 185, 200, 48))
    assert frames.shape == (15, 48, 64, 3) and np.array_equal(frames, in_order)
    info = reader.probe(BAD_SEEK)
    assert (info.frames, info.width, info.height, round(info.fps)) == (393, 640, 480, 30)


def test_clean_seek_matches_decoding_in_order(synth: Path):
    reader = PyAVReader()
    video = synth / "videos" / "v01.mp4"
    frames = reader.read(video, 40, 52, 32)
    assert reader.reseeks == 0
    assert frames.shape == (12, 32, 43, 3)
    assert np.array_equal(frames, np.stack(reader._from_start(video, 40, 52, 32)))


def test_clip_offsets_are_evenly_spaced_and_aggregation_switches():
    assert clip_starts(20, 8, 5) == [0, 3, 6, 9, 12]
    assert clip_starts(20, 8, 1) == [6] and clip_starts(4, 8, 3) == [0, 0, 0]
    logits = np.array([[0.0, 4.0], [0.0, -4.0]])
    assert aggregate(logits, "mean_logits") == pytest.approx(0.5)
    assert aggregate(np.array([[0.0, 4.0], [0.0, 0.0]]), "mean_probs") == pytest.approx(
        (1 / (1 + np.exp(-4)) + 0.5) / 2
    )


# --- synthetic data ---------------------------------------------------------------------------


def test_synthetic_manifests_are_real_layout_mp4s_with_events_inside(synth: Path):
    reader = PyAVReader()
    for name, prefix, videos in (("events.csv", "v", 6), ("test.csv", "t", 2)):
        events, problems = read_manifest(synth / name, require_label=True)
        assert not problems and len(events) == 5 * videos
        assert {e.video_id[0] for e in events} == {prefix}
        for event in events:
            assert reader.probe(synth / event.video).frames >= event.end
    assert (synth / "videos" / "v00.mp4").read_bytes()[4:8] == b"ftyp"  # an MP4 container
    assert rows(synth / "events.csv")[0]["lighting"]  # extra columns travel with the events


def _event_features(root: Path, manifest: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    reader = PyAVReader()
    events, _ = read_manifest(root / manifest, require_label=True)
    if manifest == "events.csv":  # the pool's confounded videos
        events = [e for e in events if e.extra["confounded"] == "True"]
    warm, bright, decoded = [], [], {}
    for e in events:
        if e.video not in decoded:  # each video decoded once, in order
            decoded[e.video] = np.stack(reader._from_start(root / e.video, 0, 10**6, 32))
        frames = decoded[e.video][int(e.start) : int(e.end)].astype(float)
        red_minus_blue = frames[..., 0] - frames[..., 2]
        warm.append(np.percentile(red_minus_blue, 99) / max(frames.mean(), 1.0))
        bright.append(frames.mean())
    return np.array([e.label for e in events]), np.array(warm), np.array(bright)


def test_planted_signal_separates_labels_and_the_confound_only_in_the_pool(synth: Path):
    from sklearn.metrics import roc_auc_score

    y, warm, bright = _event_features(synth, "events.csv")
    assert roc_auc_score(y, warm) > 0.95  # the planted difference: a warm marker in tail events
    # the confound: in confounded videos, bright ones are 80 % tail and dark ones all ear
    assert y[bright > 80].mean() == pytest.approx(0.8) and y[bright < 80].sum() == 0
    y_test, warm_test, _ = _event_features(synth, "test.csv")
    assert roc_auc_score(y_test, warm_test) > 0.95 and 0 < y_test.mean() < 1


def test_data_synth_command_writes_videos_and_manifests(toolkit):
    result = toolkit("data", "synth", "crosssucking", "calves", "--subjects", "3")
    assert result.exit_code == 0, result.output
    root = toolkit.root / "calves"
    assert sorted(p.name for p in (root / "videos").iterdir()) == [
        "t03.mp4", "v00.mp4", "v01.mp4", "v02.mp4"
    ]  # fmt: skip
    assert len(rows(root / "events.csv")) == 3 * 8 and len(rows(root / "test.csv")) == 8


# --- cache ------------------------------------------------------------------------------------


def test_events_are_decoded_once_into_the_array_cache(synth: Path, tmp_path: Path):
    reader = PyAVReader()
    events = load_events(synth / "test.csv", synth, "frames", reader, LoadReport())
    calls = []
    original = reader.read
    reader.read = lambda *a: calls.append(a) or original(*a)  # type: ignore[method-assign]
    first = EventFrames(tmp_path, 40, reader)
    arrays = [first.get(e) for e in events]
    assert len(calls) == len(events) and first.cache.misses == len(events)
    again = EventFrames(tmp_path, 40, reader)  # a second run: memory maps, no video decoded
    assert all(np.array_equal(a, again.get(e)) for a, e in zip(arrays, events, strict=True))
    assert len(calls) == len(events) and again.cache.hits == len(events)
    assert isinstance(again.get(events[0]), np.memmap)
    other_size = EventFrames(tmp_path, 32, reader)  # the short side is part of the key
    assert other_size.get(events[0]).shape[1] == 32 and len(calls) == len(events) + 1


# --- splits -----------------------------------------------------------------------------------


def _events(labels_by_video: dict[str, list[int]]) -> list[ClipEvent]:
    out = []
    for video, labels in labels_by_video.items():
        for k, label in enumerate(labels):
            event = Event(f"{video}-{k}", k + 1, f"{video}.mp4", video, 10.0 * k, 10.0 * k + 8,
                          label)  # fmt: skip
            out.append(ClipEvent(event, Path(f"{video}.mp4"), "m.csv", 10 * k, 10 * k + 8, video))
    return out


POOL = {f"v{i}": [1, 0, 0, 1, 0, 0, 0, 0, 1, 0] for i in range(10)}


def test_video_split_keeps_every_video_on_one_side():
    train, val = split_events(_events(POOL), None, SplitConfig(kind="video", val_fraction=0.2))
    assert not {e.video_id for e in train} & {e.video_id for e in val}
    assert len(train) == 80 and len(val) == 20
    report = split_report({"train": train, "val": val}, "video")
    assert report["videos_on_both_sides"] == {"train-val": 0}


def test_intravideo_split_is_time_ordered_with_a_gap():
    cfg = SplitConfig(kind="intravideo", val_fraction=0.2, gap=5.0)
    train, val = split_events(_events(POOL), None, cfg)
    for video in POOL:
        first_val = min(e.event.start for e in val if e.video_id == video)
        assert all(e.event.end + 5.0 <= first_val for e in train if e.video_id == video)
    # 2 of 10 per video to validation; the 8th event ends 2 before the 9th starts: dropped
    assert len(val) == 20 and len(train) == 70
    report = split_report({"train": train, "val": val}, "intravideo")
    assert report["videos_on_both_sides"] == {"train-val": 10}
    assert report["val"]["tail"] == 10 and report["train"]["tail"] == 20


def test_boosting_reaches_the_users_numbers():
    events = _events({"v": [0] * 658 + [1] * 112})
    out = boosted(events, BoostConfig(tail_fraction=0.3))
    assert len(out) == 940 and sum(e.label for e in out) == 282
    assert len({e.event.event_id for e in out}) == 940  # copies get their own ids
    report = split_report({"train": out}, "given")["train"]
    assert report["boosted_copies"] == 170 and report["tail_fraction"] == pytest.approx(0.3, 1e-3)


def test_a_split_without_tail_on_one_side_is_one_clear_line():
    pool = {"v0": [1, 0, 0, 0, 0], "v1": [0, 0, 0, 0, 0]}
    with pytest.raises(DataError) as err:
        split_events(_events(pool), None, SplitConfig(kind="intravideo", val_fraction=0.2))
    message = str(err.value)
    assert "validation side has 2 events and 0 tail events" in message and "\n" not in message


# --- metrics ----------------------------------------------------------------------------------


def test_binary_report_on_a_hand_example():
    y = np.array([1, 1, 0, 0, 0, 0])
    p = np.array([0.9, 0.4, 0.6, 0.1, 0.2, 0.1])
    report = binary_report(y, p)
    assert report["tail_recall"] == 0.5 and report["tail_precision"] == 0.5
    assert report["tail_f1"] == 0.5 and report["roc_auc"] == pytest.approx(7 / 8)
    assert report["macro_f1"] == pytest.approx((0.5 + 0.75) / 2)
    assert report["baselines"]["all_tail"] == pytest.approx(0.5)


def test_positive_class_ece_bins_p_equal_one_and_differs_from_top_label():
    assert expected_calibration_error(np.array([1.0, 1.0]), np.array([1.0, 1.0])) == 0.0
    y = np.array([0] * 9 + [1])
    report = binary_report(y, np.full(10, 0.3))  # "ear" at 70 %, right 90 % of the time
    assert report["ece_positive_class_15"] == pytest.approx(0.2)
    # p = 0.3 never tail, p = 0.7 tail 4 times in 10: P(tail) is 0.3 off in both bins, but
    # top-label confidence is 0.7 in one bin whose accuracy is (10 + 4) / 20 = 0.7
    y = np.array([0] * 10 + [1] * 4 + [0] * 6)
    p = np.array([0.3] * 10 + [0.7] * 10)
    report = binary_report(y, p)
    assert report["ece_positive_class_15"] == pytest.approx(0.3)
    assert report["ece_top_label_15"] == pytest.approx(0.0, abs=1e-12)


def test_confounding_flags_probabilities_that_cluster_by_video():
    rng = np.random.default_rng(0)
    videos = [f"v{i // 8}" for i in range(48)]
    y = rng.integers(0, 2, 48)
    per_video = {v: rng.uniform(0.1, 0.9) for v in sorted(set(videos))}  # hash-seed free
    clustered = np.clip([per_video[v] + 0.05 * lab for v, lab in zip(videos, y, strict=True)], 0, 1)
    flagged = confounding(clustered + rng.normal(0, 0.01, 48), y, videos, 0.3)
    assert flagged["flagged"] and flagged["video_share"] > 0.9
    honest = np.clip(0.2 + 0.6 * y + rng.normal(0, 0.05, 48), 0, 1)
    clean = confounding(honest, y, videos, 0.3)
    assert not clean["flagged"] and clean["label_share"] > 0.9
    assert clean["per_video"]["v0"]["events"] == 8


# --- bad input --------------------------------------------------------------------------------


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_bad_rows_are_skipped_with_one_line_each_naming_row_and_file(synth, tmp_path, caplog):
    root = tmp_path / "data"
    shutil.copytree(synth / "videos", root / "videos")
    (root / "videos" / "garbage.mp4").write_bytes(b"not a video at all")
    with av.open(str(root / "videos" / "empty.mp4"), "w") as container:  # a header, no frame
        stream = container.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 16, 16, "yuv420p"
        container.start_encoding()
    manifest = _write(root / "m.csv", "\n".join([
        "video,start,end,label,video_id",
        "videos/v00.mp4,0,8,tail,v00",
        "videos/absent.mp4,0,8,tail,x",
        "videos/v00.mp4,0,99999,ear,v00",
        "videos/v00.mp4,9,3,ear,v00",
        "videos/v00.mp4,0,8,hoof,v00",
        "videos/garbage.mp4,0,8,ear,g",
        "videos/empty.mp4,0,8,ear,e",
    ]) + "\n")  # fmt: skip
    report = LoadReport()
    with caplog.at_level(logging.WARNING):
        events = load_events(manifest, root, "frames", PyAVReader(), report)
    assert [e.event.row for e in events] == [1]
    assert report.as_dict() == {
        "rows": 7,
        "kept": 1,
        "skipped": {"bad row": 2, "video missing or unreadable": 3, "past the end of its video": 1},
    }
    text = caplog.text
    assert f"{manifest} row 2 (videos/absent.mp4)" in text and "video not found" in text
    assert f"{manifest} row 3" in text and "past the end" in text
    assert f"{manifest} row 4: end 3 is not after start 9" in text
    assert f"{manifest} row 5: unknown label 'hoof'" in text
    assert "row 6 (videos/garbage.mp4)" in text and "unreadable video" in text
    assert "row 7 (videos/empty.mp4)" in text and "video has no frames" in text


def test_manifest_without_needed_columns_fails_training_in_one_line(toolkit, synth):
    root = toolkit.root / "data" / "calves"
    shutil.copytree(synth, root)
    _write(root / "events.csv", "video,begin,end,label\nvideos/v00.mp4,0,8,tail\n")
    result = toolkit("train", "crosssucking/intravideo", "--smoke", "--set", f"data.source={root}")
    assert result.exit_code == 2
    last = result.output.strip().splitlines()[-1]
    assert str(root / "events.csv") in last and "lacks column(s) start, video_id" in last


# --- score ------------------------------------------------------------------------------------


def test_score_command_reports_and_rejects_malformed_predictions(toolkit, synth):
    manifest = synth / "test.csv"
    events = rows(manifest)
    good = toolkit.root / "good.csv"
    lines = ["event_id,p_tail"] + [
        f"{e['event_id']},{0.9 if e['label'] == 'tail' else 0.2}" for e in events
    ]
    _write(good, "\n".join(lines) + "\n")
    result = toolkit("score", "crosssucking", str(good), str(manifest))
    assert result.exit_code == 0, result.output
    assert "score 1.0000" in result.output and "roc_auc" in result.output
    _write(good, "\n".join(lines[:-1]) + "\n")
    result = toolkit("score", "crosssucking", str(good), str(manifest))
    assert result.exit_code == 2 and f"first: event_id {events[-1]['event_id']}" in result.output
    _write(good, "\n".join([*lines[:-1], f"{events[-1]['event_id']},1.5"]) + "\n")
    result = toolkit("score", "crosssucking", str(good), str(manifest))
    assert (
        result.exit_code == 2
        and f"row {len(events)}: p_tail '1.5' is not in [0, 1]" in result.output
    )


# --- predict.py, offline, without torch --------------------------------------------------------


def tiny_onnx(path: Path) -> Path:
    """A stand-in for r3d_18 with its input/output contract: mean colour -> 2 logits."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    weights = numpy_helper.from_array(np.array([[1.0, -1.0], [0.0, 0.0], [-1.0, 1.0]],
                                               np.float32), "w")  # fmt: skip
    axes = numpy_helper.from_array(np.array([2, 3, 4], np.int64), "axes")
    graph = helper.make_graph(
        [helper.make_node("ReduceMean", ["input", "axes"], ["pooled"], keepdims=0),
         helper.make_node("MatMul", ["pooled", "w"], ["output"])],
        "tiny", [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["B", 3, 8, 32, 32])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["B", 2])], [weights, axes],
    )  # fmt: skip
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]), path)
    return path


def test_predict_py_runs_without_torch_on_real_videos(tmp_path: Path):
    import json

    from toolkit.competitions.crosssucking import standalone

    bundle = tmp_path / "bundle"
    bundle.mkdir()
    shutil.copyfile(standalone.__file__, bundle / "predict.py")
    tiny_onnx(bundle / "model.onnx")
    settings = {"frames": 8, "stride": 2, "short_side": 40, "crop": 32, "clips_per_event": 3,
                "aggregation": "mean_probs", "batch_size": 4, "time_unit": "seconds"}  # fmt: skip
    (bundle / "model.json").write_text(json.dumps(settings))
    videos = tmp_path / "videos"
    videos.mkdir()
    shutil.copyfile(BAD_SEEK, videos / "openfield.mp4")
    manifest = _write(videos / "events.csv", "\n".join([
        "video,start,end,video_id,note",
        "openfield.mp4,0.5,1.5,m3,a",
        "openfield.mp4,6.2,7.0,m3,after a bad seek",
        "openfield.mp4,12.5,14.0,m3,past the end",
    ]) + "\n")  # fmt: skip
    out = tmp_path / "out" / "pred.csv"
    sandbox = Sandbox(blocked=("toolkit", *COMP.unavailable_modules))
    result = sandbox.run(bundle / "predict.py", [str(manifest), str(out)])
    assert result.returncode == 0, result.stderr
    assert "wrote 2 events" in result.stdout and "(skipped 1)" in result.stdout
    assert f"{manifest} row 3 (openfield.mp4): event ends at frame 420" in result.stderr
    got = rows(out)
    assert [r["event_id"] for r in got] == ["1", "2"]
    assert all(0.0 <= float(r["p_tail"]) <= 1.0 for r in got) and got[0]["label"] == ""
    blocked = sandbox.run(bundle / "predict.py", [str(tmp_path / "none.csv"), str(out)])
    assert blocked.returncode == 2 and "manifest not found" in blocked.last_error
