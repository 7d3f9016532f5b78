"""Windows of one recording, made with braindecode and kept in the on-disk window cache.

Challenge 1: one window per trial, stimulus + 0.5 s to + 2.5 s, target the response time.
Challenge 2: fixed-length windows (4 s every 2 s), cropped to 2 s at training time; the target
is the subject's score, so the cache holds only the signal.
"""

from __future__ import annotations

import io
import logging
from typing import TYPE_CHECKING, Any

import mne
import numpy as np
import pandas as pd
from braindecode.datasets import BaseConcatDataset, RawDataset
from braindecode.preprocessing import create_fixed_length_windows, create_windows_from_events

from toolkit.competitions.eeg2025.bids import BAND, REFERENCE, Recording, read_raw
from toolkit.competitions.eeg2025.config import SFREQ, C2WindowConfig, EEG2025Data, WindowConfig
from toolkit.competitions.eeg2025.targets import c1_trials, read_events
from toolkit.data.array_cache import ArrayCache, Entry
from toolkit.errors import DataError

if TYPE_CHECKING:
    from toolkit.data.remote import Source

log = logging.getLogger(__name__)
ANCHOR = "stimulus_anchor"
WINDOWS_VERSION = 1  # bump when what a cache entry holds changes


def _stack(windows: BaseConcatDataset) -> np.ndarray:
    (win_ds,) = windows.datasets
    return np.stack([win_ds[i][0] for i in range(len(win_ds))]).astype(np.float32)


def c1_windows(
    raw: mne.io.BaseRaw, events: pd.DataFrame, window: WindowConfig
) -> tuple[np.ndarray, np.ndarray]:
    """(X (n, 129, 200) volts, y (n,) seconds): one window per usable trial."""
    trials = c1_trials(events)
    start = round(window.shift_after_stimulus * SFREQ)
    size = round(window.length * SFREQ)
    stim = np.round(trials["stimulus_onset"].to_numpy(float) * SFREQ).astype(int)
    inside = (stim + start >= 0) & (stim + start + size <= raw.n_times)
    trials, stim = trials[inside], stim[inside]
    if len(trials) == 0:
        return np.empty((0, raw.info["nchan"], size), np.float32), np.empty(0, np.float32)
    raw.set_annotations(mne.Annotations(stim / SFREQ, 0.0, [ANCHOR] * len(stim)))
    windows = create_windows_from_events(
        BaseConcatDataset([RawDataset(raw, description={})]),
        trial_start_offset_samples=start,
        trial_stop_offset_samples=start + size,
        window_size_samples=size,
        window_stride_samples=size,
        mapping={ANCHOR: 0},
        preload=True,
        drop_last_window=False,
    )
    rt_by_start = dict(zip(stim + start, trials["rt_from_stimulus"].to_numpy(float), strict=True))
    starts = windows.datasets[0].metadata["i_start_in_trial"].to_numpy()
    y = np.array([rt_by_start[s] for s in starts], dtype=np.float32)
    return _stack(windows), y


def c2_windows(raw: mne.io.BaseRaw, window: C2WindowConfig) -> np.ndarray:
    """X (n, 129, length * 100) volts: fixed-length windows over the whole recording."""
    size, stride = round(window.length * SFREQ), round(window.stride * SFREQ)
    if raw.n_times < size:
        return np.empty((0, raw.info["nchan"], size), np.float32)
    windows = create_fixed_length_windows(
        BaseConcatDataset([RawDataset(raw, description={})]),
        window_size_samples=size,
        window_stride_samples=stride,
        drop_last_window=True,
        preload=True,
    )
    return _stack(windows)


def _key(source: Source, rec: Recording, cfg: EEG2025Data, events_id: str | None) -> dict:
    windows = cfg.window if cfg.challenge == 1 else cfg.c2_window
    return {
        "competition": "eeg2025",
        "challenge": cfg.challenge,
        "source": source.url,
        "file": rec.eeg,
        "fingerprint": source.fingerprint(rec.eeg),
        "events": events_id,
        "windows": windows.model_dump(),
        "spec": {"sfreq": SFREQ, "band": BAND, "reference": REFERENCE},
        "version": WINDOWS_VERSION,
    }


def recording_windows(source: Source, rec: Recording, cfg: EEG2025Data, cache: ArrayCache) -> Entry:
    """The recording's windows from the cache, or fetched, read, windowed and cached.

    A file that cannot be read, or has no usable trial, becomes a cached `skipped` entry with
    the reason, so it is neither fetched nor parsed again; transient source errors propagate."""
    events_id = None
    if cfg.challenge == 1:
        if not source.glob(rec.events):
            return Entry(meta={"skipped": "no events file"})
        events_id = source.fingerprint(rec.events)

    def build() -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        path = source.fetch(rec.eeg)
        try:
            raw = read_raw(path)
            if cfg.challenge == 1:
                events = read_events(io.StringIO(source.read_text(rec.events)))
                X, y = c1_windows(raw, events, cfg.window)
                arrays = {"X": X, "y": y}
            else:
                X = c2_windows(raw, cfg.c2_window)
                arrays = {"X": X}
        except DataError:
            raise
        except Exception as exc:  # a corrupt file must not end the run: skip, count, warn
            log.warning("skipping %s: %s: %s", rec.eeg, type(exc).__name__, exc)
            return {}, {"skipped": f"unreadable ({type(exc).__name__})", "error": str(exc)}
        if len(X) == 0:
            reason = "no usable trial" if cfg.challenge == 1 else "shorter than one window"
            return {}, {"skipped": reason}
        return arrays, {"subject": rec.subject, "windows": len(X)}

    return cache.get_or_build(_key(source, rec, cfg, events_id), build)
