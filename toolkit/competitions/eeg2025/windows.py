"""Challenge 1 windows with braindecode: one window per trial, stimulus + 0.5 s to + 2.5 s."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import mne
import numpy as np
from braindecode.datasets import BaseConcatDataset, RawDataset
from braindecode.preprocessing import create_windows_from_events

from toolkit.competitions.eeg2025.bids import Recording, read_raw
from toolkit.competitions.eeg2025.config import SFREQ, WindowConfig
from toolkit.competitions.eeg2025.targets import c1_trials, read_events

log = logging.getLogger(__name__)
ANCHOR = "stimulus_anchor"


@dataclass
class Windows:
    """Stacked windows: X (n, 129, n_times) float32 volts, y (n,) seconds, subject per window."""

    X: np.ndarray
    y: np.ndarray
    subjects: np.ndarray
    skipped: dict[str, list[str]] = field(default_factory=dict)


def _recording_windows(rec: Recording, window: WindowConfig) -> tuple[np.ndarray, np.ndarray]:
    raw = read_raw(rec.eeg)
    trials = c1_trials(read_events(rec.events))
    start = round(window.shift_after_stimulus * SFREQ)
    size = round(window.length * SFREQ)
    stim = np.round(trials["stimulus_onset"].to_numpy(float) * SFREQ).astype(int)
    inside = (stim + start >= 0) & (stim + start + size <= raw.n_times)
    trials, stim = trials[inside], stim[inside]
    if len(trials) == 0:
        return np.empty((0, raw.info["nchan"], size), np.float32), np.empty(0, np.float32)
    raw.set_annotations(mne.Annotations(stim / SFREQ, 0.0, [ANCHOR] * len(stim)))
    dataset = BaseConcatDataset([RawDataset(raw, description={"subject": rec.subject})])
    windows = create_windows_from_events(
        dataset,
        trial_start_offset_samples=start,
        trial_stop_offset_samples=start + size,
        window_size_samples=size,
        window_stride_samples=size,
        mapping={ANCHOR: 0},
        preload=True,
        drop_last_window=False,
    )
    (win_ds,) = windows.datasets
    rt_by_start = dict(zip(stim + start, trials["rt_from_stimulus"].to_numpy(float), strict=True))
    starts = win_ds.metadata["i_start_in_trial"].to_numpy()
    X = np.stack([win_ds[i][0] for i in range(len(win_ds))]).astype(np.float32)
    y = np.array([rt_by_start[s] for s in starts], dtype=np.float32)
    return X, y


def build_windows(recordings: list[Recording], window: WindowConfig) -> Windows:
    """Windows of every readable recording; unreadable or trial-less ones are skipped and named
    in `skipped` (reason -> files)."""
    xs, ys, subs = [], [], []
    skipped: dict[str, list[str]] = {}
    for rec in recordings:
        if not rec.events.is_file():
            skipped.setdefault("no events file", []).append(str(rec.eeg))
            continue
        try:
            X, y = _recording_windows(rec, window)
        except Exception as exc:  # a corrupt file must not end the run: skip, count, warn
            reason = f"unreadable ({type(exc).__name__})"
            skipped.setdefault(reason, []).append(str(rec.eeg))
            log.warning("skipping %s: %s", rec.eeg, exc)
            continue
        if len(y) == 0:
            skipped.setdefault("no usable trial", []).append(str(rec.eeg))
            continue
        xs.append(X)
        ys.append(y)
        subs.append(np.full(len(y), rec.subject))
    if not xs:
        return Windows(np.empty((0, 129, 1), np.float32), np.empty(0, np.float32),
                       np.empty(0, str), skipped)  # fmt: skip
    return Windows(np.concatenate(xs), np.concatenate(ys), np.concatenate(subs), skipped)
