"""eeg2025 data: targets from the real events file, the synthetic tree matches the real layout,
bad recordings are skipped and counted."""

from __future__ import annotations

from pathlib import Path

import mne
import numpy as np
import pandas as pd
import pytest

from tests.conftest import REAL_METADATA
from toolkit.competitions.eeg2025.bids import find_recordings, read_participants
from toolkit.competitions.eeg2025.config import CHANNEL_NAMES, WindowConfig
from toolkit.competitions.eeg2025.datamodule import split_subjects
from toolkit.competitions.eeg2025.synth import write_synthetic_bids
from toolkit.competitions.eeg2025.targets import c1_trials, read_events
from toolkit.competitions.eeg2025.windows import build_windows

REAL_EVENTS = next(REAL_METADATA.glob("sub-*/eeg/*contrastChangeDetection_run-1_events.tsv"))


@pytest.fixture(scope="module")
def bids(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("bids")
    return write_synthetic_bids(root, subjects=4, trials_per_run=12, seed=3)


def test_c1_targets_on_the_real_events_file():
    trials = c1_trials(read_events(REAL_EVENTS))
    first = trials.iloc[0]
    assert first["stimulus_onset"] == pytest.approx(42.284)
    assert first["rt_from_stimulus"] == pytest.approx(2.13)
    # The press at 145.436 s follows the next trial's start (145.088 s): not a response.
    assert not np.isclose(trials["response_onset"], 145.436).any()
    # The stray press at 119.256 s has no target in its trial: no trial from it.
    assert not np.isclose(trials["response_onset"], 119.256).any()
    assert (trials["rt_from_stimulus"] > 0).all()
    assert len(trials) == 22  # 25 trials: 2 targets unanswered in-trial, 1 without target


def test_synthetic_tree_has_the_real_columns_and_files(bids: Path):
    real = pd.read_csv(REAL_METADATA / "participants.tsv", sep="\t")
    synth = pd.read_csv(bids / "participants.tsv", sep="\t")
    assert list(synth.columns) == list(real.columns)
    assert synth["participant_id"].str.match(r"^sub-NDAR[A-Z0-9]{8}$").all()
    real_events = pd.read_csv(REAL_EVENTS, sep="\t")
    events = next(bids.glob("sub-*/eeg/*_events.tsv"))
    assert list(pd.read_csv(events, sep="\t").columns) == list(real_events.columns)
    stem = events.name.removesuffix("_events.tsv")
    for suffix in ("_eeg.set", "_eeg.json", "_channels.tsv"):
        assert (events.parent / f"{stem}{suffix}").is_file()
    channels = pd.read_csv(events.parent / f"{stem}_channels.tsv", sep="\t")
    real_channels = pd.read_csv(next(REAL_METADATA.glob("sub-*/eeg/*_channels.tsv")), sep="\t")
    assert channels.equals(real_channels)


def test_synthetic_set_reads_with_mne_at_the_challenge_spec(bids: Path):
    path = next(bids.glob("sub-*/eeg/*_eeg.set"))
    raw = mne.io.read_raw_eeglab(path, preload=True, verbose="error")
    assert raw.ch_names == CHANNEL_NAMES
    assert raw.info["sfreq"] == 100
    assert np.allclose(raw.get_data(picks=["Cz"]), 0)
    assert 1e-6 < raw.get_data().std() < 1e-4  # volts, EEG-sized


def test_planted_signal_follows_the_press(bids: Path):
    """Averaged over trials, the motor channels peak at the press: the target is learnable."""
    windows = build_windows(find_recordings(bids, "contrastChangeDetection"), WindowConfig())
    assert windows.X.shape[1:] == (129, 200)
    peaks = windows.X[:, 30:70].mean(axis=1).argmax(axis=1) / 100 + 0.5
    assert np.corrcoef(peaks, windows.y)[0, 1] > 0.9


def test_corrupt_recording_is_skipped_and_counted(bids: Path, tmp_path: Path):
    import shutil

    copy = tmp_path / "bids"
    shutil.copytree(bids, copy)
    victim = sorted(copy.glob("sub-*/eeg/*_eeg.set"))[0]
    victim.write_bytes(victim.read_bytes()[:1000])
    recordings = find_recordings(copy, "contrastChangeDetection")
    windows = build_windows(recordings, WindowConfig())
    assert sum(len(v) for v in windows.skipped.values()) == 1
    assert str(victim) in next(iter(windows.skipped.values()))
    assert len(set(windows.subjects)) == 3


def test_participants_ids_drop_the_sub_prefix():
    participants = read_participants(REAL_METADATA)
    assert "NDARAC904DMU" in participants.index
    assert len(participants) == 136


def test_subject_split_is_grouped_and_deterministic():
    subjects = [f"S{i}" for i in range(10)]
    train, val = split_subjects(subjects, 0.2, seed=1)
    assert not set(train) & set(val)
    assert len(val) == 2 and len(train) == 8
    assert split_subjects(subjects, 0.2, seed=1) == (train, val)
