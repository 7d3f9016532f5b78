"""The official MABe F-beta: the six test vectors of COMPETITIONS.md, properties, refusals,
and agreement with a frame-set transcription of the official algorithm on random cases."""

from __future__ import annotations

import json
from collections import defaultdict

import numpy as np
import pandas as pd
import pytest

from toolkit.competitions.mabe.metric import MetricError, mouse_fbeta

WL = '["mouse1,mouse2,attack"]'


def solution(rows, whitelist: str = WL) -> pd.DataFrame:
    """(video, action, start, stop, lab) label rows of mouse1 -> mouse2 (ids as integers)."""
    return pd.DataFrame([
        {"video_id": v, "agent_id": 1, "target_id": 2, "action": a, "start_frame": s,
         "stop_frame": e, "lab_id": lab, "behaviors_labeled": whitelist}
        for v, a, s, e, lab in rows
    ])  # fmt: skip


def submission(rows, agent: str = "mouse1", target: str = "mouse2") -> pd.DataFrame:
    return pd.DataFrame([
        {"row_id": i, "video_id": v, "agent_id": agent, "target_id": target, "action": a,
         "start_frame": s, "stop_frame": e}
        for i, (v, a, s, e) in enumerate(rows)
    ])  # fmt: skip


TWO_ACTIONS = [(1, "attack", 0, 9, "A"), (1, "mount", 15, 24, "A")]
VECTORS = {
    "same prediction": ([(1, "attack", 0, 10, "A")], [(1, "attack", 0, 10)], 1.0),
    "not whitelisted": ([(1, "attack", 0, 10, "A")], [(1, "mount", 0, 10)], 0.0),
    "unlabelled-for-prediction action": (TWO_ACTIONS, [(1, "attack", 0, 9)], 0.5),
    "second lab": (
        [*TWO_ACTIONS, (2, "attack", 0, 9, "B"), (2, "mount", 15, 24, "B")],
        [(1, "attack", 0, 9)],
        0.25,
    ),
    "adjacent labels, one prediction": (
        [(1, "attack", 0, 10, "A"), (1, "attack", 10, 20, "A")], [(1, "attack", 0, 20)], 1.0
    ),
    "gap between labels": (
        [(1, "attack", 0, 10, "A"), (1, "attack", 30, 40, "A")], [(1, "attack", 0, 40)], 2 / 3
    ),
}


@pytest.mark.parametrize("name", list(VECTORS))
def test_the_six_official_test_vectors(name: str):
    labels, predicted, expected = VECTORS[name]
    assert mouse_fbeta(solution(labels), submission(predicted))["score"] == pytest.approx(
        expected, abs=1e-12
    )


def test_perfect_submission_scores_one_and_row_order_does_not_matter():
    rng = np.random.default_rng(0)
    rows, preds = [], []
    wl = json.dumps([f"mouse1,mouse2,{a}" for a in ("attack", "sniff", "mount")])
    for video, lab in ((1, "A"), (2, "A"), (3, "B")):
        start = 0
        for _ in range(6):
            start += int(rng.integers(1, 20))
            stop = start + int(rng.integers(1, 30))
            action = str(rng.choice(["attack", "sniff", "mount"]))
            rows.append((video, action, start, stop, lab))
            preds.append((video, action, start, stop))
            start = stop
    truth = solution(rows, wl)
    perfect = submission(preds)
    assert mouse_fbeta(truth, perfect)["score"] == 1.0
    partial = submission(preds[::2])
    score = mouse_fbeta(truth, partial)["score"]
    assert 0.0 < score < 1.0
    for seed in range(3):
        shuffled = partial.sample(frac=1.0, random_state=seed).reset_index(drop=True)
        assert mouse_fbeta(truth, shuffled)["score"] == score
        assert mouse_fbeta(truth.sample(frac=1.0, random_state=seed), partial)["score"] == score


def test_overlapping_actions_of_one_pair_fail_the_submission():
    wl = '["mouse1,mouse2,attack", "mouse1,mouse2,mount"]'
    truth = solution([(1, "attack", 0, 10, "A")], wl)
    clash = submission([(1, "attack", 0, 10), (1, "mount", 9, 12)])
    with pytest.raises(MetricError, match=r"multiple predictions for the same frame.*video 1"):
        mouse_fbeta(truth, clash)
    # the same action overlapping itself merges; touching different actions do not overlap
    fine = submission([(1, "attack", 0, 6), (1, "attack", 3, 10), (1, "mount", 10, 12)])
    assert mouse_fbeta(truth, fine)["per_action"]["A/attack"] == 1.0


def test_a_predicted_action_without_labels_in_the_lab_joins_its_mean_with_zero():
    # The official code's defaultdict lookup adds predicted keys to the labelled ones.
    wl = '["mouse1,mouse2,attack", "mouse1,mouse2,mount"]'
    truth = solution([(1, "attack", 0, 10, "A")], wl)
    result = mouse_fbeta(truth, submission([(1, "attack", 0, 10), (1, "mount", 10, 12)]))
    assert result["per_action"] == {"A/attack": 1.0, "A/mount": 0.0}
    assert result["score"] == 0.5


def test_one_agent_may_act_on_two_targets_at_once():
    wl = '["mouse1,mouse2,attack", "mouse1,mouse3,attack"]'
    truth = solution([(1, "attack", 0, 10, "A")], wl)
    both = pd.concat([submission([(1, "attack", 0, 10)]),
                      submission([(1, "attack", 0, 10)], target="mouse3")])  # fmt: skip
    result = mouse_fbeta(truth, both)
    assert result["score"] == pytest.approx(2 * 10 / (2 * 10 + 10))  # 10 FP on mouse3


def test_rows_of_unknown_videos_are_dropped():
    truth = solution([(1, "attack", 0, 10, "A")])
    assert mouse_fbeta(truth, submission([(1, "attack", 0, 10), (99, "attack", 0, 50)]))[
        "score"
    ] == 1.0


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda s: s.iloc[0:0], "submission is empty"),
        (lambda s: s.drop(columns="action"), "missing column.*action"),
        (lambda s: s.assign(start_frame=20), "start_frame > stop_frame"),
    ],
)
def test_the_metric_refuses_what_the_official_one_refuses(edit, message):
    truth = solution([(1, "attack", 0, 10, "A")])
    with pytest.raises(MetricError, match=message):
        mouse_fbeta(truth, edit(submission([(1, "attack", 0, 10)])))


def official_reference(sol: pd.DataFrame, sub: pd.DataFrame) -> float:
    """The official algorithm transcribed with Python frame sets (row by row, in order)."""
    key = lambda r: (r["video_id"], r["agent_id"], r["target_id"], r["action"])  # noqa: E731
    lab_scores = []
    for lab in sol["lab_id"].unique():
        lab_sol = sol[sol["lab_id"] == lab]
        labels: dict = defaultdict(set)
        for r in lab_sol.to_dict("records"):
            labels[key(r)].update(range(r["start_frame"], r["stop_frame"]))
        preds: dict = defaultdict(set)
        for video in lab_sol["video_id"].unique():
            first = lab_sol[lab_sol["video_id"] == video].iloc[0]
            active = set(json.loads(first["behaviors_labeled"]))
            pairs: dict = defaultdict(set)
            for r in sub[sub["video_id"] == video].to_dict("records"):
                if f"{r['agent_id']},{r['target_id']},{r['action']}" not in active:
                    continue
                new = set(range(r["start_frame"], r["stop_frame"])) - preds[key(r)]
                pair = (r["agent_id"], r["target_id"])
                if pairs[pair] & new:
                    raise MetricError("overlap")
                preds[key(r)] |= new
                pairs[pair] |= new
        tp, fp, fn = defaultdict(int), defaultdict(int), defaultdict(int)
        for k, frames in preds.items():
            tp[k[3]] += len(frames & labels[k])
            fn[k[3]] += len(labels[k] - frames)
            fp[k[3]] += len(frames - labels[k])
        actions = set()
        for k, frames in labels.items():
            actions.add(k[3])
            if k not in preds:
                fn[k[3]] += len(frames)
        f = [2 * tp[a] / (2 * tp[a] + fn[a] + fp[a]) if tp[a] + fn[a] + fp[a] else 0.0
             for a in actions]  # fmt: skip
        lab_scores.append(sum(f) / len(f))
    return sum(lab_scores) / len(lab_scores)


def test_agrees_with_the_official_frame_set_algorithm_on_random_cases():
    rng = np.random.default_rng(1)
    actions = ["attack", "sniff", "mount"]
    pairs = [("mouse1", "mouse2"), ("mouse2", "mouse1"), ("mouse1", "self")]
    compared = refused = 0
    for _ in range(60):
        wl = json.dumps([f"{a},{t},{x}" for a, t in pairs for x in actions[: rng.integers(1, 4)]])
        sol_rows, sub_rows = [], []
        for video in range(1, 4):
            lab = "AB"[video % 2]
            for _ in range(int(rng.integers(1, 5))):
                agent, target = pairs[int(rng.integers(3))]
                s = int(rng.integers(0, 60))
                a = int(agent[-1])
                sol_rows.append({"video_id": video, "agent_id": a,
                                 "target_id": a if target == "self" else int(target[-1]),
                                 "action": str(rng.choice(actions)), "start_frame": s,
                                 "stop_frame": s + int(rng.integers(0, 25)), "lab_id": lab,
                                 "behaviors_labeled": wl})  # fmt: skip
            for _ in range(int(rng.integers(1, 5))):
                agent, target = pairs[int(rng.integers(3))]
                s = int(rng.integers(0, 60))
                sub_rows.append({"video_id": video, "agent_id": agent, "target_id": target,
                                 "action": str(rng.choice(actions)), "start_frame": s,
                                 "stop_frame": s + int(rng.integers(0, 25))})  # fmt: skip
        sol, sub = pd.DataFrame(sol_rows), pd.DataFrame(sub_rows)
        sol_named = sol.copy()
        sol_named["agent_id"] = "mouse" + sol["agent_id"].astype(str)
        sol_named["target_id"] = np.where(sol["agent_id"] == sol["target_id"], "self",
                                          "mouse" + sol["target_id"].astype(str))  # fmt: skip
        try:
            expected = official_reference(sol_named, sub)
        except MetricError:
            refused += 1
            with pytest.raises(MetricError):
                mouse_fbeta(sol, sub)
            continue
        assert mouse_fbeta(sol, sub)["score"] == pytest.approx(expected, abs=1e-12)
        compared += 1
    assert compared > 20 and refused > 5
