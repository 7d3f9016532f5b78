"""Synthetic HBN-EEG in the real BIDS layout, with a planted, learnable response-time signal.

Layout and columns follow Release 1 (participants.tsv, sub-*/eeg/*_eeg.set + _events.tsv +
_channels.tsv + _eeg.json). Each button press adds a response-locked deflection over a fixed
set of channels, so the press time (the Challenge 1 target) is readable from the EEG window; a
beta rhythm scaled by the subject's `externalizing` score makes the Challenge 2 target readable.
"""

from __future__ import annotations

import json
import string
from pathlib import Path

import mne
import numpy as np
import pandas as pd

from toolkit.competitions.eeg2025.config import C2_TARGETS, CHANNEL_NAMES, SFREQ

TASKS = (
    "RestingState", "DespicableMe", "FunwithFractals", "ThePresent", "DiaryOfAWimpyKid",
    "contrastChangeDetection_1", "contrastChangeDetection_2", "contrastChangeDetection_3",
    "surroundSupp_1", "surroundSupp_2", "seqLearning6target", "seqLearning8target", "symbolSearch",
)  # fmt: skip
PARTICIPANT_COLUMNS = (
    "participant_id", "release_number", "sex", "age", "ehq_total", "commercial_use",
    "full_pheno", "p_factor", "attention", "internalizing", "externalizing", *TASKS,
)  # fmt: skip
EVENT_CODES = {
    "contrastTrial_start": 5, "left_target": 8, "right_target": 9,
    "left_buttonPress": 12, "right_buttonPress": 13,
}  # fmt: skip
SYNTH_VERSION = 2  # bump when the files written change, so cached copies are remade
RESPONSE_AMPLITUDE_V = 25e-6
TRAIT_AMPLITUDE_V = 8e-6
TRAIT_CHANNELS = slice(80, 110)  # where the challenge 2 trait shows, in every subject
NOISE_V = 8e-6


def subject_ids(n: int, rng: np.random.Generator) -> list[str]:
    """HBN-style ids (NDAR + 8 upper-case letters/digits), unique and sorted."""
    alphabet = np.array(list(string.ascii_uppercase + string.digits))
    ids: set[str] = set()
    while len(ids) < n:
        ids.add("NDAR" + "".join(rng.choice(alphabet, 8)))
    return sorted(ids)


def _participants(ids: list[str], runs: int, release: str, rng: np.random.Generator):
    rows = []
    for sid in ids:
        row = {
            "participant_id": f"sub-{sid}",
            "release_number": release,
            "sex": rng.choice(["M", "F"]),
            "age": round(float(rng.uniform(5, 21)), 4),
            "ehq_total": round(float(rng.uniform(-100, 100)), 2),
            "commercial_use": "Yes",
            "full_pheno": "Yes",
        }
        for col in C2_TARGETS:
            row[col] = round(float(rng.normal(0, 1)), 3)
        for task in TASKS:
            row[task] = rng.choice(["available", "available", "unavailable", "caution"])
        for r in range(1, 4):
            row[f"contrastChangeDetection_{r}"] = "available" if r <= runs else "unavailable"
        rows.append(row)
    frame = pd.DataFrame(rows, columns=list(PARTICIPANT_COLUMNS))
    if len(frame) > 3:  # real files have gaps: one subject lacks its phenotype scores
        frame.loc[len(frame) - 1, list(C2_TARGETS)] = np.nan
    return frame


def _events(run: int, trials: int, rng: np.random.Generator) -> tuple[pd.DataFrame, float]:
    """A contrast-change run's events: trials with targets, presses, misses and stray presses."""
    rows = [("break cnt", 0.0, "n/a"), (f"contrastChangeB{run}_start", 3.0, "n/a")]
    t = 6.0
    for _ in range(trials):
        rows.append(("contrastTrial_start", t, "n/a"))
        wait = float(rng.choice([2.8, 4.4, 6.0], p=[0.6, 0.3, 0.1]))
        if rng.random() < 0.05:  # a press with no target before it
            rows.append(
                (f"{rng.choice(['left', 'right'])}_buttonPress", t + wait / 2, "non_target")
            )
        side = str(rng.choice(["left", "right"]))
        target = t + wait
        rows.append((f"{side}_target", target, "n/a"))
        if rng.random() >= 0.06:  # most targets get a press, some are missed
            rt = float(rng.uniform(0.6, 2.3))
            pressed = side if rng.random() > 0.05 else ("left" if side == "right" else "right")
            feedback = "smiley_face" if pressed == side else "sad_face"
            rows.append((f"{pressed}_buttonPress", round(target + rt, 3), feedback))
        t = target + 2.4
    rows.append(("break cnt", t + 1.0, "n/a"))
    duration = t + 4.0
    rows.append(("9999", duration - 0.01, "n/a"))
    frame = pd.DataFrame(rows, columns=["value", "onset", "feedback"])
    frame["onset"] = frame["onset"].round(3)
    frame["duration"] = "n/a"
    frame["sample"] = (frame["onset"] * SFREQ).round().astype(int)
    frame["event_code"] = [
        EVENT_CODES.get(v, 94 + run - 1 if v.endswith("_start") and "B" in v else v)
        for v in frame["value"]
    ]
    frame = frame[["onset", "duration", "sample", "value", "event_code", "feedback"]]
    return frame, duration


def _signal(
    events: pd.DataFrame, duration: float, trait: float, rng: np.random.Generator
) -> np.ndarray:
    """EEG in volts (129 x samples): noise, alpha, a deflection at every button press, and a
    beta rhythm whose amplitude follows the subject's `externalizing` score (`trait`)."""
    n = round(duration * SFREQ)
    t = np.arange(n) / SFREQ
    data = rng.normal(0, NOISE_V, (len(CHANNEL_NAMES), n))
    alpha = np.sin(2 * np.pi * rng.uniform(8, 12) * t + rng.uniform(0, 6.28))
    data += 4e-6 * rng.uniform(0.5, 1.5, (len(CHANNEL_NAMES), 1)) * alpha
    beta = np.sin(2 * np.pi * 18.0 * t + rng.uniform(0, 6.28))
    data[TRAIT_CHANNELS] += TRAIT_AMPLITUDE_V * max(1.0 + 0.6 * trait, 0.0) * beta
    pattern = np.zeros(len(CHANNEL_NAMES))
    motor = np.arange(30, 70)  # a fixed "motor" cluster, the same in every subject
    pattern[motor] = np.linspace(1.0, 0.5, len(motor))
    presses = events.loc[events["value"].str.endswith("buttonPress"), "onset"].to_numpy(float)
    width = 0.08 * SFREQ
    for onset in presses:
        centre = onset * SFREQ
        lo, hi = int(max(centre - 4 * width, 0)), int(min(centre + 4 * width, n))
        idx = np.arange(lo, hi)
        bump = np.exp(-0.5 * ((idx - centre) / width) ** 2)
        data[:, lo:hi] += RESPONSE_AMPLITUDE_V * pattern[:, None] * bump[None, :]
    data[CHANNEL_NAMES.index("Cz")] = 0.0  # the reference channel is flat
    return data.astype(np.float32)


def _sidecars(eeg_dir: Path, stem: str, task: str, duration: float) -> None:
    channels = pd.DataFrame({"name": CHANNEL_NAMES, "type": "EEG", "units": "uV"})
    channels.to_csv(eeg_dir / f"{stem}_channels.tsv", sep="\t", index=False)
    sidecar = {
        "PowerLineFrequency": 60,
        "TaskName": task,
        "EEGChannelCount": len(CHANNEL_NAMES),
        "EEGReference": "Cz",
        "RecordingType": "continuous",
        "RecordingDuration": round(duration, 3),
        "SamplingFrequency": SFREQ,
        "SoftwareFilters": "n/a",
    }
    (eeg_dir / f"{stem}_eeg.json").write_text(json.dumps(sidecar, indent=2) + "\n")


def write_synthetic_bids(
    root: Path,
    *,
    subjects: int = 12,
    runs: int = 1,
    trials_per_run: int = 30,
    seed: int = 0,
    release: str = "R1",
    task: str = "contrastChangeDetection",
) -> Path:
    """Write a synthetic BIDS root (participants.tsv + sub-*/eeg/...) and return it."""
    rng = np.random.default_rng(seed)
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    ids = subject_ids(subjects, rng)
    participants = _participants(ids, runs, release, rng)
    participants.to_csv(root / "participants.tsv", sep="\t", index=False, na_rep="n/a")
    description = {
        "Name": f"Synthetic HBN-EEG {release} (toolkit)",
        "BIDSVersion": "1.8.0",
        "DatasetType": "raw",
        "GeneratedBy": [{"Name": "toolkit data synth eeg2025"}],
    }
    (root / "dataset_description.json").write_text(json.dumps(description, indent=2) + "\n")
    info = mne.create_info(CHANNEL_NAMES, SFREQ, ch_types="eeg")
    traits = participants.set_index("participant_id")["externalizing"].fillna(0.0)
    for sid in ids:
        eeg_dir = root / f"sub-{sid}" / "eeg"
        eeg_dir.mkdir(parents=True, exist_ok=True)
        for run in range(1, runs + 1):
            stem = f"sub-{sid}_task-{task}_run-{run}"
            events, duration = _events(run, trials_per_run, rng)
            events.to_csv(eeg_dir / f"{stem}_events.tsv", sep="\t", index=False, na_rep="n/a")
            signal = _signal(events, duration, float(traits[f"sub-{sid}"]), rng)
            raw = mne.io.RawArray(signal, info, verbose="error")
            raw.set_annotations(
                mne.Annotations(events["onset"].to_numpy(float), 0.0, events["value"].astype(str))
            )
            mne.export.export_raw(
                eeg_dir / f"{stem}_eeg.set", raw, fmt="eeglab", overwrite=True, verbose="error"
            )
            _sidecars(eeg_dir, stem, task, duration)
    return root
