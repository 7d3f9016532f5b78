"""Synthetic MABe data in the real layout, metadata parsing, tracking -> pose -> features."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from toolkit.competitions.mabe import standalone as S
from toolkit.competitions.mabe.synth import LABS, write_synthetic

COLUMNS_38 = (
    ["lab_id", "video_id"]
    + [f"mouse{m}_{f}" for m in range(1, 5)
       for f in ("strain", "color", "sex", "id", "age", "condition")]
    + ["frames_per_second", "video_duration_sec", "pix_per_cm_approx", "video_width_pix",
       "video_height_pix", "arena_width_cm", "arena_height_cm", "arena_shape", "arena_type",
       "body_parts_tracked", "behaviors_labeled", "tracking_method"]
)  # fmt: skip


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    return write_synthetic(tmp_path_factory.mktemp("mabe"), videos=3, frames=300, seed=3)


def test_synthetic_data_has_the_real_layout_and_dtypes(root: Path):
    train = pd.read_csv(root / "train.csv")
    assert list(train.columns) == COLUMNS_38
    assert sorted(train["lab_id"]) == sorted(lab.name for lab in LABS)
    assert set(train["frames_per_second"]) == {25.0, 30.0}
    for row in train.to_dict("records"):
        name = f"{row['lab_id']}/{row['video_id']}.parquet"
        track = pd.read_parquet(root / "train_tracking" / name)
        assert list(track.columns) == list(S.TRACKING_COLUMNS)
        assert track["video_frame"].dtype == np.int64 and track["mouse_id"].dtype == np.int64
        assert track["x"].dtype == np.float32
        assert set(track["bodypart"]) == set(json.loads(row["body_parts_tracked"]))
        ann = pd.read_parquet(root / "train_annotation" / name)
        assert list(ann.columns) == ["agent_id", "target_id", "action", "start_frame", "stop_frame"]
        assert (ann["stop_frame"] > ann["start_frame"]).all()
        whitelist = S.parse_behaviors(row["behaviors_labeled"], "train.csv")
        triples = ann[["agent_id", "target_id", "action"]].itertuples(index=False)
        assert all(f"mouse{a},{'self' if a == t else f'mouse{t}'},{x}" in whitelist
                   for a, t, x in triples)  # fmt: skip
    hrnet = train[train["lab_id"] == "SynthHRnet"].iloc[0]
    track = pd.read_parquet(root / "train_tracking" / "SynthHRnet" / f"{hrnet['video_id']}.parquet")
    assert track["x"].isna().mean() > 0.01  # NaN coordinates
    assert len(track) < 300 * 4 * 18 * 0.97  # and missing rows
    solution = pd.read_csv(root / "solution.csv")
    assert {"lab_id", "behaviors_labeled", "video_id", "agent_id"} <= set(solution.columns)
    assert set(solution["target_id"]) <= {"self", "mouse1", "mouse2", "mouse3", "mouse4"}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ('["mouse1,mouse2,sniff", "mouse2,self,rear"]',
         ["mouse1,mouse2,sniff", "mouse2,self,rear"]),
        ("[\"'mouse1','mouse2','sniff'\", \"'mouse1','mouse2','sniff'\"]", ["mouse1,mouse2,sniff"]),
        (float("nan"), []),
        (None, []),
        ("", []),
    ],
)
def test_behaviors_labeled_parses_stray_quotes_duplicates_and_missing(value, expected):
    assert S.parse_behaviors(value, "train.csv") == expected


@pytest.mark.parametrize("value", ['"mouse1,mouse2,sniff"', "{oops", '["mouse1,sniff"]'])
def test_behaviors_labeled_that_is_not_a_list_is_one_clear_error(value):
    with pytest.raises(S.InputError, match="video 7: behaviors_labeled"):
        S.parse_behaviors(value, "video 7")


def test_missing_rows_and_nan_are_interpolated_and_resampled():
    frame = pd.DataFrame({
        "video_frame": [0, 2, 3, 0, 3], "mouse_id": [1, 1, 1, 2, 2],
        "bodypart": ["nose"] * 5, "x": [0.0, 2.0, np.nan, 5.0, 5.0], "y": [0.0] * 5,
    })  # fmt: skip
    pose = S.pose_array(frame, ["nose"])
    assert pose.shape == (4, 4, 1, 2) and np.isnan(pose[1, 0, 0, 0])
    filled = S.fill_gaps(pose)
    assert filled[:, 0, 0, 0].tolist() == [0.0, 1.0, 2.0, 2.0]
    assert np.isnan(filled[:, 2]).all()  # an absent mouse stays NaN
    assert len(S.resample(filled, 25.0, 30.0)) == 5  # 4 frames at 25 fps -> 30 fps


def _track(root: Path, lab: str) -> tuple[dict, pd.DataFrame]:
    row = pd.read_csv(root / "train.csv").set_index("lab_id").loc[lab]
    path = root / "train_tracking" / lab / f"{row['video_id']}.parquet"
    return row, S.read_tracking(path)


def test_pair_and_motion_features_are_finite_and_agent_centric(root: Path):
    row, track = _track(root, "SynthSnail")  # 4 body parts, 25 fps
    streams = [(0, 1), (0, 0)]
    kwargs = {"fps_in": 25.0, "fps": 30.0, "ppc": row["pix_per_cm_approx"], "streams": streams,
              "warn": lambda m: None, "where": "v"}  # fmt: skip
    pair = S.video_features(track, kind="pair", **kwargs)
    motion = S.video_features(track, kind="motion", **kwargs)
    assert len(track["video_frame"].unique()) == 250  # 10 s at 25 fps
    assert pair.shape == (2, 300, S.PAIR_FEATURES) and motion.shape == (2, 300, 288)
    assert np.isfinite(pair).all() and np.isfinite(motion).all()
    assert (pair[1, :, 16:44] == 0).all() and (pair[1, :, 10] == 1).all()  # self: no target
    # agent-centric: the ears' midpoint is the origin, the body axis the x axis
    ears = (pair[0, :, 2:4] + pair[0, :, 4:6]) / 2
    assert np.abs(ears).max() < 1e-4
    assert np.abs(pair[0, :, 9]).max() < 1e-4  # tail base on the axis (y = 0)


def test_a_body_part_nan_in_every_frame_warns_and_falls_back(root: Path):
    _, track = _track(root, "SynthMARS")
    track.loc[track["bodypart"] == "hip_left", ["x", "y"]] = np.nan
    track.loc[track["bodypart"] == "nose", ["x", "y"]] = np.nan
    warnings: list[str] = []
    feats = S.video_features(track, kind="pair", fps_in=30.0, fps=30.0, ppc=12.0,
                             streams=[(0, 1)], warn=warnings.append, where="video 5")  # fmt: skip
    assert np.isfinite(feats).all()
    assert any("video 5: body part nose is NaN in every frame" in w for w in warnings)


def test_missing_or_renamed_tracking_columns_name_the_file(tmp_path: Path):
    path = tmp_path / "1.parquet"
    pd.DataFrame({"video_frame": [0], "mouse_id": [1], "bodypart": ["nose"], "x_pos": [1.0],
                  "y": [1.0]}).to_parquet(path)  # fmt: skip
    with pytest.raises(S.InputError, match=r"1\.parquet: missing column\(s\) x"):
        S.read_tracking(path)
    with pytest.raises(S.InputError, match="tracking file not found"):
        S.read_tracking(tmp_path / "2.parquet")


def test_data_synth_cli_writes_the_layout(toolkit, tmp_path: Path):
    result = toolkit("data", "synth", "mabe", str(tmp_path / "d"), "--subjects", "3")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "d" / "train.csv").is_file() and (tmp_path / "d" / "solution.csv").is_file()
    assert len(list((tmp_path / "d" / "test_tracking").rglob("*.parquet"))) == 3
