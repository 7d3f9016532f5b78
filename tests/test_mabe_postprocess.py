"""Post-processing: one action per (agent, target) frame, whatever the probabilities; gap
filling, minimum duration, thresholds, whitelist filtering, coarse groups mapped back."""

from __future__ import annotations

import json

import numpy as np

from toolkit.competitions.mabe.evaluate import best_thresholds, most_frequent_baseline
from toolkit.competitions.mabe.metric import mouse_fbeta, overlapping_pair
from toolkit.competitions.mabe.standalone import (
    clean_labels,
    runs_of,
    submission_frame,
    video_rows,
)

BEHAVIORS = ["mouse1,mouse2,sniff", "mouse1,mouse2,chase", "mouse1,mouse2,mount",
             "mouse2,mouse1,sniff", "mouse1,self,rear"]  # fmt: skip
STREAMS = [("mouse1", "mouse2"), ("mouse2", "mouse1"), ("mouse1", "self")]
SPEC = {"outputs": ["chase", "mount", "rear", "sniff"], "groups": None}


def test_random_probabilities_never_break_the_overlap_rule():
    rng = np.random.default_rng(0)
    for trial in range(40):
        probs = rng.random((3, 200, 4)).astype(np.float32)
        probs = np.repeat(probs[:, ::4], 4, axis=1)  # runs of several frames
        post = {"threshold": float(rng.uniform(0.1, 0.9)), "smooth": int(rng.integers(1, 6)),
                "max_gap": int(rng.integers(0, 8)),
                "min_duration": int(rng.integers(1, 6))}  # fmt: skip
        ratio = (1.0, 1.2, 0.8)[trial % 3]  # label grids other than the model's
        rows = video_rows(1, "L", probs, STREAMS, BEHAVIORS, SPEC, post, ratio)
        sub = submission_frame(rows)
        assert len(sub) > 0
        assert overlapping_pair(sub) is None
        allowed = {tuple(b.split(",")) for b in BEHAVIORS}
        assert set(zip(sub.agent_id, sub.target_id, sub.action, strict=True)) <= allowed
        solution = sub.assign(lab_id="L", behaviors_labeled=json.dumps(BEHAVIORS))
        assert mouse_fbeta(solution, sub)["score"] == 1.0  # the metric accepts it


def test_the_best_margin_wins_each_frame_and_only_whitelisted_outputs_count():
    probs = np.zeros((1, 6, 4), np.float32)
    probs[0, :, 0] = [0.9, 0.6, 0.6, 0.2, 0.2, 0.2]  # chase, margins .4 .1 .1
    probs[0, :, 3] = [0.8, 0.95, 0.65, 0.7, 0.1, 0.1]  # sniff, margins .2 .35 .05 .1
    probs[0, :, 2] = 0.99  # rear: not whitelisted for mouse1 -> mouse2
    post = {"thresholds": {"L": {"chase": 0.5, "sniff": 0.6}}, "min_duration": 1}
    rows = video_rows(1, "L", probs, STREAMS[:1], BEHAVIORS, SPEC, post, 1.0)
    assert [r[3:] for r in rows] == [("chase", 0, 1), ("sniff", 1, 2), ("chase", 2, 3),
                                     ("sniff", 3, 4)]  # fmt: skip


def test_gap_filling_then_minimum_duration():
    labels = np.array([0, 0, -1, -1, 0, -1, 1, -1, -1, -1, -1, 2, 2, 2])
    cleaned = clean_labels(labels, max_gap=2, min_duration=2)
    assert cleaned.tolist() == [0, 0, 0, 0, 0, -1, -1, -1, -1, -1, -1, 2, 2, 2]
    assert runs_of(cleaned) == [(0, 0, 5), (-1, 5, 11), (2, 11, 14)]


def test_coarse_groups_map_back_to_the_pairs_most_frequent_whitelisted_action():
    spec = {"outputs": ["background", "aggressive", "social", "mating"],
            "groups": {"background": [], "aggressive": ["chase", "attack"],
                       "social": ["sniff", "rear"], "mating": ["mount"]},
            "action_priority": ["rear", "mount", "sniff", "chase"]}  # fmt: skip
    probs = np.zeros((3, 4, 4), np.float32)
    probs[:, :, 2] = 0.9  # social everywhere
    rows = video_rows(1, "L", probs, STREAMS, BEHAVIORS, spec, {"threshold": 0.5}, 1.0)
    assert sorted(rows) == [(1, "mouse1", "mouse2", "sniff", 0, 4),
                            (1, "mouse1", "self", "rear", 0, 4),
                            (1, "mouse2", "mouse1", "sniff", 0, 4)]  # fmt: skip


def test_threshold_search_finds_the_separating_threshold():
    probs = np.array([0.1, 0.2, 0.3, 0.72, 0.8, 0.9, 0.5])
    targets = np.array([0, 0, 0, 1, 1, 1, -1])
    assert 0.3 <= best_thresholds(probs, targets) < 0.72


def test_most_frequent_baseline_predicts_one_action_per_pair_everywhere():
    sub = most_frequent_baseline([(1, BEHAVIORS, 90)], ["mount", "sniff", "chase", "rear"])
    cols = ["agent_id", "target_id", "action", "start_frame", "stop_frame"]
    assert sub[cols].values.tolist() == [["mouse1", "mouse2", "mount", 0, 90]]
