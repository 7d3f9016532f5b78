"""Synthetic MABe data in the REAL layout and dtypes, with planted, learnable behaviours.

Three labs differ in mice (2, 3, 4), body parts (7, 4, 18), frame rate (30; 25 with labels on
the 30 fps grid, like AdaptableSnail), pixels per cm, whitelists (some only for some mice) and
tracking quality (missing rows and NaN). Mice wander; episodes plant four behaviours:

- chase (pair): the agent runs fast at the target, which runs away;
- sniff (pair): the agent's nose goes to the target's body and stays there;
- mount (pair): the agent's body centre moves onto the target's, same heading;
- rear (self): the agent stops and its body elongates by half.

Every behaviour happens in every lab, but only whitelisted (agent, target, action) triples are
labelled, as in the real data. Writes train.csv, train_tracking/, train_annotation/, test.csv,
test_tracking/, test_annotation/ and solution.csv (the test labels as Kaggle's solution file).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from toolkit.fileio import atomic_path

SYNTH_VERSION = 2  # bump when the generator changes (cached synthetic data is keyed by it)
FPS = 30.0
OFFSETS: dict[str, tuple[float, float]] = {  # (along the body, to the left), in body lengths
    "nose": (0.5, 0.0), "head": (0.4, 0.0), "ear_left": (0.3, 0.1), "ear_right": (0.3, -0.1),
    "neck": (0.25, 0.0), "body_center": (0.0, 0.0), "lateral_left": (0.0, 0.15),
    "lateral_right": (0.0, -0.15), "hip_left": (-0.25, 0.12), "hip_right": (-0.25, -0.12),
    "spine_1": (0.12, 0.0), "spine_2": (-0.12, 0.0), "tail_base": (-0.5, 0.0),
    "tail_midpoint": (-0.9, 0.0), "tail_tip": (-1.3, 0.0), "forepaw_left": (0.3, 0.15),
    "forepaw_right": (0.3, -0.15), "hindpaw_left": (-0.3, 0.15), "hindpaw_right": (-0.3, -0.15),
}  # fmt: skip
ACTIONS = ("chase", "sniff", "mount", "rear")


@dataclass(frozen=True)
class Lab:
    """One synthetic lab: its camera, mice, tracking and what it annotates."""

    name: str
    mice: int
    parts: tuple[str, ...]
    fps: float
    pix_per_cm: float
    method: str
    whitelist: tuple[str, ...]
    missing_rows: float = 0.0
    nan_rate: float = 0.0
    stray_quotes: bool = False


LABS = (
    Lab("SynthMARS", 2, ("ear_left", "ear_right", "hip_left", "hip_right", "neck", "nose",
        "tail_base"), 30.0, 12.0, "MARS",
        ("mouse1,mouse2,sniff", "mouse2,mouse1,sniff", "mouse1,mouse2,chase",
         "mouse1,self,rear", "mouse2,self,rear"), stray_quotes=True),
    Lab("SynthSnail", 3, ("ear_left", "ear_right", "head", "tail_base"), 25.0, 8.0, "DeepLabCut",
        ("mouse1,mouse2,sniff", "mouse1,mouse3,sniff", "mouse1,mouse2,mount",
         "mouse1,mouse3,mount")),
    Lab("SynthHRnet", 4, tuple(p for p in OFFSETS if p != "hindpaw_right"), 30.0, 15.0,
        "custom HRnet",
        tuple(f"mouse{a},mouse{b},{act}" for act in ("chase", "mount") for a in range(1, 3)
              for b in range(1, 5) if a != b)
        + tuple(f"mouse{a},self,rear" for a in range(1, 5)),
        missing_rows=0.05, nan_rate=0.03),
)  # fmt: skip
LABEL_FPS = {"SynthSnail": 30.0}  # its labels live on the 30 fps grid (tracking is 25 fps)
ARENA_CM = (50.0, 40.0)


def _wander(state: dict[str, np.ndarray], m: int, rng: np.random.Generator) -> None:
    state["heading"][m] += rng.normal(0, 0.15)
    state["speed"][m] = np.clip(state["speed"][m] + rng.normal(0, 0.8), 0.0, 8.0)


def _towards(state: dict[str, np.ndarray], m: int, point: np.ndarray, speed: float) -> None:
    delta = point - state["pos"][m]
    dist = float(np.linalg.norm(delta))
    if dist > 1e-6:
        state["heading"][m] = np.arctan2(delta[1], delta[0])
    state["speed"][m] = min(speed, dist * FPS)


def _direction(angle: float) -> np.ndarray:
    return np.array([np.cos(angle), np.sin(angle)])


def simulate(lab: Lab, frames: int, rng: np.random.Generator):
    """(pose (F, mice, parts, 2) cm, episodes [(action, agent, target, start, stop, labelled
    start)]) at 30 fps."""
    n = lab.mice
    state = {
        "pos": rng.uniform([8, 8], [ARENA_CM[0] - 8, ARENA_CM[1] - 8], size=(n, 2)),
        "heading": rng.uniform(-np.pi, np.pi, n),
        "speed": rng.uniform(0, 5, n),
        "elong": np.ones(n),
    }
    length = rng.uniform(9.0, 11.0, n)
    schedule: list[tuple[str, int, int, int, int]] = []
    whitelisted = [e.split(",") for e in lab.whitelist]
    t = int(rng.integers(5, 20))
    while t < frames - 30:
        if rng.random() < 0.85:  # mostly behaviours the lab annotates, some it does not
            agent_name, target_name, action = whitelisted[int(rng.integers(len(whitelisted)))]
            agent = int(agent_name[5:]) - 1
            target = agent if target_name == "self" else int(target_name[5:]) - 1
        else:
            action = str(rng.choice(ACTIONS if n > 1 else ("rear",)))
            agent = int(rng.integers(n))
            others = [m for m in range(n) if m != agent]
            target = agent if action == "rear" else int(rng.choice(others))
        duration = int(rng.integers(40, 90))
        schedule.append((action, agent, target, t, min(frames, t + duration)))
        t += duration + int(rng.integers(5, 20))
    active: dict[int, int] = {}
    for i, ep in enumerate(schedule):
        for f in range(ep[3], ep[4]):
            active[f] = i
    hits: dict[int, int] = {}
    track = np.zeros((frames, n, 4))  # x, y, heading, elongation
    for f in range(frames):
        key = active.get(f)
        ep = schedule[key] if key is not None else None
        busy = {ep[1], ep[2]} if ep else set()
        for m in range(n):
            if m not in busy:
                _wander(state, m, rng)
        state["elong"] += (1.0 - state["elong"]) * 0.3
        if ep is not None:
            action, a, b, _start, _ = ep
            pos = state["pos"]
            if action == "chase":
                away = pos[b] - pos[a]
                state["heading"][b] = np.arctan2(away[1], away[0]) + rng.normal(0, 0.2)
                state["speed"][b] = 28.0
                _towards(state, a, pos[b], 32.0)
                close = np.linalg.norm(pos[a] - pos[b]) < 20
            elif action == "sniff":
                nose = pos[a] + 0.5 * length[a] * _direction(state["heading"][a])
                _towards(state, a, pos[a] + (pos[b] - nose), 40.0)
                state["heading"][a] = np.arctan2(*(pos[b] - pos[a])[::-1])
                state["speed"][b] = 0.5
                close = np.linalg.norm(nose - pos[b]) < 3.0
            elif action == "mount":
                _towards(state, a, pos[b], 35.0)
                state["speed"][b] = 0.3
                if np.linalg.norm(pos[a] - pos[b]) < 4:  # on top: settle, same heading
                    pos[a] += 0.5 * (pos[b] - pos[a])
                    state["heading"][a] = state["heading"][b]
                    state["speed"][a] = 0.0
                close = np.linalg.norm(pos[a] - pos[b]) < 2.5
            else:  # rear
                state["speed"][a] = 0.0
                state["elong"][a] = min(1.5, state["elong"][a] + 0.15)
                close = state["elong"][a] > 1.2
            if close and key not in hits:
                hits[key] = f
        step = state["speed"][:, None] * np.stack([np.cos(state["heading"]),
                                                   np.sin(state["heading"])], axis=1) / FPS
        state["pos"] = state["pos"] + step
        for d, size in enumerate(ARENA_CM):  # walls: reflect
            low, high = state["pos"][:, d] < 3, state["pos"][:, d] > size - 3
            if (low | high).any():
                state["pos"][:, d] = np.clip(state["pos"][:, d], 3, size - 3)
                flip = low | high
                vec = np.stack([np.cos(state["heading"]), np.sin(state["heading"])], axis=1)
                vec[flip, d] *= -1
                state["heading"] = np.arctan2(vec[:, 1], vec[:, 0])
        track[f, :, :2] = state["pos"]
        track[f, :, 2] = state["heading"]
        track[f, :, 3] = state["elong"]
    u = np.stack([np.cos(track[..., 2]), np.sin(track[..., 2])], axis=-1)  # (F, n, 2)
    v = np.stack([-u[..., 1], u[..., 0]], axis=-1)
    along = np.array([o[0] for o in OFFSETS.values()])
    left = np.array([o[1] for o in OFFSETS.values()])
    scale = np.where(along[None, None] > 0, track[..., 3:4], 1.0) * length[None, :, None]
    pose = (
        track[:, :, None, :2]
        + (along * scale)[..., None] * u[:, :, None]
        + (left[None, None] * length[None, :, None])[..., None] * v[:, :, None]
    )
    episodes = [(*ep, hits[i]) for i, ep in enumerate(schedule) if i in hits]
    return pose, episodes


def _behaviors_string(lab: Lab, whitelist: list[str]) -> str:
    if not lab.stray_quotes:
        return json.dumps(whitelist)
    quoted = ["'" + "','".join(e.split(",")) + "'" for e in whitelist]
    return json.dumps(quoted + quoted[:1])  # stray quotes and a duplicate, as real rows have


def tracking_frame(lab: Lab, pose_cm: np.ndarray, rng: np.random.Generator) -> pd.DataFrame:
    """Long-format tracking at the lab's frame rate (pixels), with its gaps."""
    frames_30 = len(pose_cm)
    n_out = round(frames_30 * lab.fps / FPS)
    pos = np.arange(n_out) * FPS / lab.fps
    lo = np.clip(np.floor(pos).astype(int), 0, frames_30 - 1)
    hi = np.clip(lo + 1, 0, frames_30 - 1)
    w = (pos - lo)[:, None, None, None]
    pose = pose_cm[lo] * (1 - w) + pose_cm[hi] * w
    parts = [list(OFFSETS).index(p) for p in lab.parts]
    pose = pose[:, :, parts]
    pix = (pose + rng.normal(0, 0.08, pose.shape)) * lab.pix_per_cm + 20.0
    f, m, p = np.meshgrid(np.arange(n_out), np.arange(lab.mice), np.arange(len(parts)),
                          indexing="ij")  # fmt: skip
    table = pd.DataFrame({
        "video_frame": f.ravel().astype(np.int64),
        "mouse_id": (m.ravel() + 1).astype(np.int64),
        "bodypart": np.array(lab.parts)[p.ravel()],
        "x": pix[..., 0].ravel().astype(np.float32),
        "y": pix[..., 1].ravel().astype(np.float32),
    })  # fmt: skip
    if lab.nan_rate:
        nan = rng.random(len(table)) < lab.nan_rate
        table.loc[nan, ["x", "y"]] = np.nan
    if lab.missing_rows:
        table = table[rng.random(len(table)) >= lab.missing_rows]
    return table.reset_index(drop=True)


def metadata_row(lab: Lab, video_id: int, frames: int, whitelist: list[str] | None) -> dict:
    """One train.csv / test.csv row: the 38 columns in the real order."""
    row: dict[str, object] = {"lab_id": lab.name, "video_id": video_id}
    for m in range(1, 5):
        here = m <= lab.mice
        row[f"mouse{m}_strain"] = "C57Bl/6J" if here else None
        row[f"mouse{m}_color"] = "black" if here else None
        row[f"mouse{m}_sex"] = ("male" if m % 2 else "female") if here else None
        row[f"mouse{m}_id"] = float(m) if here else np.nan
        row[f"mouse{m}_age"] = "8-12 weeks" if here else None
        row[f"mouse{m}_condition"] = "wild type" if here else None
    width, height = (int(s * lab.pix_per_cm + 40) for s in ARENA_CM)
    row.update({
        "frames_per_second": lab.fps,
        "video_duration_sec": frames / FPS,
        "pix_per_cm_approx": lab.pix_per_cm,
        "video_width_pix": width,
        "video_height_pix": height,
        "arena_width_cm": ARENA_CM[0],
        "arena_height_cm": ARENA_CM[1],
        "arena_shape": "rectangular",
        "arena_type": "familiar",
        "body_parts_tracked": json.dumps(list(lab.parts)),
        "behaviors_labeled": None if whitelist is None else _behaviors_string(lab, whitelist),
        "tracking_method": lab.method,
    })  # fmt: skip
    return row


def annotation_frame(episodes: list[tuple], whitelist: list[str]) -> pd.DataFrame:
    """The labelled episodes whose (agent, target, action) is whitelisted (30 fps grid)."""
    rows = []
    for action, a, b, _, stop, start in episodes:
        target = "self" if a == b else f"mouse{b + 1}"
        if f"mouse{a + 1},{target},{action}" in whitelist and stop > start:
            rows.append((a + 1, b + 1, action, start, stop))
    frame = pd.DataFrame(rows, columns=["agent_id", "target_id", "action", "start_frame",
                                        "stop_frame"])  # fmt: skip
    return frame.astype({"agent_id": np.int64, "target_id": np.int64, "start_frame": np.int64,
                         "stop_frame": np.int64})  # fmt: skip


def _write_parquet(path: Path, frame: pd.DataFrame) -> None:
    with atomic_path(path) as tmp:
        frame.to_parquet(tmp, index=False)


def _write_csv(path: Path, frame: pd.DataFrame) -> None:
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False)


def write_split(
    root: Path, split: str, videos: int, frames: int, rng: np.random.Generator, first_id: int
) -> pd.DataFrame:
    """`videos` videos of `split`, round-robin over the labs; returns the solution rows."""
    rows, solution = [], []
    for i in range(videos):
        lab = LABS[i % len(LABS)]
        video_id = first_id + i
        pose, episodes = simulate(lab, frames, rng)
        whitelist = list(lab.whitelist)
        rows.append(metadata_row(lab, video_id, frames, whitelist))
        _write_parquet(root / f"{split}_tracking" / lab.name / f"{video_id}.parquet",
                       tracking_frame(lab, pose, rng))  # fmt: skip
        labels = annotation_frame(episodes, whitelist)
        _write_parquet(root / f"{split}_annotation" / lab.name / f"{video_id}.parquet", labels)
        solution.append(labels.assign(
            video_id=video_id, lab_id=lab.name, behaviors_labeled=json.dumps(whitelist)
        ))  # fmt: skip
    _write_csv(root / f"{split}.csv", pd.DataFrame(rows))
    return pd.concat(solution, ignore_index=True)


def solution_csv(labels: pd.DataFrame) -> pd.DataFrame:
    """Label rows as Kaggle's solution file (ids as written in behaviors_labeled)."""
    out = labels.copy()
    out["agent_id"] = "mouse" + out["agent_id"].astype(str)
    out["target_id"] = np.where(
        labels["agent_id"] == labels["target_id"], "self", "mouse" + labels["target_id"].astype(str)
    )
    out.insert(0, "row_id", np.arange(len(out)))
    return out[["row_id", "video_id", "agent_id", "target_id", "action", "start_frame",
                "stop_frame", "lab_id", "behaviors_labeled"]]  # fmt: skip


def write_synthetic(
    root: Path, *, videos: int = 9, frames: int = 900, seed: int = 0,
    test_videos: int | None = None, train: bool = True,
) -> Path:  # fmt: skip
    """Write a train split of `videos` videos (unless not `train`) and a test split (default:
    a third of `videos`, at least one per lab) with solution.csv; return `root`."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    if train:
        write_split(root, "train", videos, frames, rng, first_id=10_000 + 1000 * seed)
    n_test = test_videos or max(len(LABS), videos // 3)
    test = write_split(root, "test", n_test, frames, rng, first_id=90_000 + 1000 * seed)
    _write_csv(root / "solution.csv", solution_csv(test))
    return root


def add_bad_test_inputs(root: Path, frames: int, seed: int) -> list[tuple[int, str]]:
    """Append to test.csv the videos that must fail alone or degrade gracefully; returns
    (video_id, what) for each: a missing tracking file, renamed columns, one mouse, a body
    part NaN in every frame, a whitelist that is not a list. Their labels join
    test_annotation/ and solution.csv, as every test video's do on Kaggle."""
    rng = np.random.default_rng(seed)
    table = pd.read_csv(root / "test.csv")
    lab = LABS[0]
    base = 99_000 + 10 * seed
    cases = [(base + 1, "missing tracking"), (base + 2, "renamed columns"),
             (base + 3, "one mouse"), (base + 4, "nose NaN everywhere"),
             (base + 5, "behaviors_labeled not a list")]  # fmt: skip
    rows, labels = [], []
    for video_id, what in cases:
        pose, episodes = simulate(lab, frames, rng)
        track = tracking_frame(lab, pose, rng)
        whitelist = list(lab.whitelist)
        row = metadata_row(lab, video_id, frames, whitelist)
        path = root / "test_tracking" / lab.name / f"{video_id}.parquet"
        if what == "renamed columns":
            track = track.rename(columns={"x": "x_pos"})
        elif what == "one mouse":
            track = track[track["mouse_id"] == 1]
        elif what == "nose NaN everywhere":
            track.loc[track["bodypart"] == "nose", ["x", "y"]] = np.nan
        elif what == "behaviors_labeled not a list":
            row["behaviors_labeled"] = '"mouse1,mouse2,sniff"'
        if what != "missing tracking":
            _write_parquet(path, track)
        rows.append(row)
        truth = annotation_frame(episodes, whitelist)
        _write_parquet(root / "test_annotation" / lab.name / f"{video_id}.parquet", truth)
        labels.append(truth.assign(video_id=video_id, lab_id=lab.name,
                                   behaviors_labeled=json.dumps(whitelist)))  # fmt: skip
    _write_csv(root / "test.csv", pd.concat([table, pd.DataFrame(rows)], ignore_index=True))
    solution = pd.read_csv(root / "solution.csv")
    extra = solution_csv(pd.concat(labels, ignore_index=True))
    extra["row_id"] += len(solution)
    _write_csv(root / "solution.csv", pd.concat([solution, extra], ignore_index=True))
    return cases
