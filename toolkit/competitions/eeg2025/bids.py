"""Reading an HBN-EEG BIDS tree from a source (local folder or s3://): participants,
recordings, and raw signals at the challenge's spec."""

from __future__ import annotations

import io
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import mne
import pandas as pd

from toolkit.competitions.eeg2025.config import CHANNEL_NAMES, SFREQ
from toolkit.errors import DataError

if TYPE_CHECKING:
    from toolkit.data.remote import Source

_RECORDING = re.compile(r"sub-(?P<subject>[^_]+)_task-(?P<task>[^_]+)(?:_run-(?P<run>\d+))?_eeg$")
BAND = (0.5, 50.0)  # the challenge's band-pass (Hz)
REFERENCE = "Cz"
AVAILABLE = ("available", "caution")  # participants.tsv availability values worth fetching


@dataclass(frozen=True)
class Recording:
    """One EEG file of one subject and its events sidecar, as keys relative to the source."""

    subject: str
    task: str
    run: int
    eeg: str
    events: str


def read_participants(source: Source) -> pd.DataFrame:
    """participants.tsv indexed by subject id without the `sub-` prefix; `n/a` is missing."""
    try:
        text = source.read_text("participants.tsv")
    except DataError as exc:
        raise DataError(f"{exc} (is data.source a BIDS root?)") from None
    frame = pd.read_csv(
        io.StringIO(text), sep="\t", na_values=["n/a"], dtype={"participant_id": str}
    )
    if "participant_id" not in frame.columns:
        raise DataError(f"{source.url}/participants.tsv: no participant_id column")
    frame["subject"] = frame["participant_id"].str.removeprefix("sub-")
    return frame.set_index("subject")


def task_available(participants: pd.DataFrame, task: str) -> pd.Series:
    """Per subject: does participants.tsv list any run of `task` as available (or caution)?

    Columns are `<task>` or `<task>_<run>`; a file without them says nothing, so all pass."""
    columns = [c for c in participants.columns if c == task or c.startswith(f"{task}_")]
    if not columns:
        return pd.Series(True, index=participants.index)
    return participants[columns].isin(AVAILABLE).any(axis=1)


def subject_recordings(source: Source, subject: str, task: str) -> list[Recording]:
    """The subject's `*_task-<task>[_run-N]_eeg.{set,bdf}` files with their `_events.tsv`."""
    found = []
    for ext in ("set", "bdf"):
        for key in source.glob(f"sub-{subject}/eeg/sub-{subject}_task-{task}*_eeg.{ext}"):
            match = _RECORDING.match(Path(key).name.rsplit(".", 1)[0])
            if match is None or match["task"] != task:
                continue
            events = key.rsplit("_eeg.", 1)[0] + "_events.tsv"
            found.append(Recording(subject, task, int(match["run"] or 1), key, events))
    return sorted(found, key=lambda r: (r.run, r.eeg))


def read_raw(path: Path) -> mne.io.BaseRaw:
    """Load a recording at the challenge's spec: 129 channels (E1..E128, Cz), 100 Hz.

    Original 500 Hz data is referenced to Cz, band-passed 0.5-50 Hz and resampled to 100 Hz
    (what the organisers did to the released copies); the competition's 100 Hz copies pass
    through unchanged. Raises on an unreadable file."""
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
        raw.set_eeg_reference([REFERENCE], verbose="error")
        raw.filter(*BAND, verbose="error")
        raw.resample(SFREQ, verbose="error")
    return raw
