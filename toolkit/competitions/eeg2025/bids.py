"""Reading an HBN-EEG BIDS tree: participants, recordings, raw signals at the challenge's spec."""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import mne
import pandas as pd

from toolkit.competitions.eeg2025.config import CHANNEL_NAMES, SFREQ
from toolkit.errors import DataError

_RECORDING = re.compile(r"sub-(?P<subject>[^_]+)_task-(?P<task>[^_]+)(?:_run-(?P<run>\d+))?_eeg$")


@dataclass(frozen=True)
class Recording:
    """One EEG file of one subject and its events sidecar."""

    subject: str
    task: str
    run: int
    eeg: Path
    events: Path


def read_participants(root: Path) -> pd.DataFrame:
    """participants.tsv indexed by subject id without the `sub-` prefix; `n/a` is missing."""
    path = root / "participants.tsv"
    if not path.is_file():
        raise DataError(f"{root}: no participants.tsv (is data.source a BIDS root?)")
    frame = pd.read_csv(path, sep="\t", na_values=["n/a"], dtype={"participant_id": str})
    if "participant_id" not in frame.columns:
        raise DataError(f"{path}: no participant_id column")
    frame["subject"] = frame["participant_id"].str.removeprefix("sub-")
    return frame.set_index("subject")


def find_recordings(root: Path, task: str) -> list[Recording]:
    """Every `sub-*/eeg/*_task-<task>[_run-N]_eeg.{set,bdf}` with its `_events.tsv`."""
    found = []
    for eeg in sorted([*root.glob("sub-*/eeg/*_eeg.set"), *root.glob("sub-*/eeg/*_eeg.bdf")]):
        match = _RECORDING.match(eeg.stem)
        if match is None or match["task"] != task:
            continue
        events = eeg.with_name(eeg.stem.removesuffix("_eeg") + "_events.tsv")
        found.append(Recording(match["subject"], task, int(match["run"] or 1), eeg, events))
    return found


def read_raw(path: Path) -> mne.io.BaseRaw:
    """Load a recording at the challenge's spec: 129 channels (E1..E128, Cz), 100 Hz.

    Original 500 Hz data is band-passed 0.5-50 Hz and resampled to 100 Hz; the competition's
    100 Hz copies pass through unchanged. Raises on an unreadable file."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if path.suffix == ".bdf":
            raw = mne.io.read_raw_bdf(path, preload=True, verbose="error")
        else:
            raw = mne.io.read_raw_eeglab(path, preload=True, verbose="error")
    missing = [ch for ch in CHANNEL_NAMES if ch not in raw.ch_names]
    if missing:
        raise ValueError(f"missing channel(s) {missing[:3]}{'...' if len(missing) > 3 else ''}")
    raw.pick(CHANNEL_NAMES)
    if abs(raw.info["sfreq"] - SFREQ) > 1e-6:
        raw.filter(0.5, 50.0, verbose="error")
        raw.resample(SFREQ, verbose="error")
    return raw
