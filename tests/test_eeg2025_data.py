"""eeg2025 data: targets from the real events file, the synthetic tree matches the real layout,
500 Hz preprocessing, both challenges' windows, the window cache, subject selection, and bad
recordings skipped and counted."""

from __future__ import annotations

from pathlib import Path

import mne
import numpy as np
import pandas as pd
import pytest

from tests.conftest import REAL_METADATA
from toolkit.competitions.eeg2025 import windows as windows_module
from toolkit.competitions.eeg2025.bids import (
    read_participants,
    read_raw,
    subject_recordings,
    task_available,
)
from toolkit.competitions.eeg2025.config import CHANNEL_NAMES, EEG2025Data
from toolkit.competitions.eeg2025.datamodule import EEG2025DataModule, split_subjects
from toolkit.competitions.eeg2025.synth import write_synthetic_bids
from toolkit.competitions.eeg2025.targets import c1_trials, read_events
from toolkit.competitions.eeg2025.windows import recording_windows
from toolkit.config.settings import get_settings
from toolkit.data.array_cache import ArrayCache
from toolkit.data.remote import LocalSource
from toolkit.errors import DataError

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


def _windows(root: Path, cache: Path, challenge: int = 1):
    """(X, y or None, skipped reasons) of every recording under `root`."""
    source, cfg = LocalSource(root), EEG2025Data(challenge=challenge)
    store = ArrayCache(cache)
    xs, ys, skipped = [], [], []
    for subject in read_participants(source).index:
        for rec in subject_recordings(source, subject, cfg.task):
            entry = recording_windows(source, rec, cfg, store)
            if entry.skipped:
                skipped.append((rec.eeg, entry.skipped))
                continue
            xs.append(np.asarray(entry.arrays["X"]))
            ys.append(np.asarray(entry.arrays["y"]) if challenge == 1 else None)
    y = np.concatenate(ys) if challenge == 1 else None
    return np.concatenate(xs), y, skipped, store


def test_planted_signal_follows_the_press(bids: Path, tmp_path: Path):
    """Averaged over trials, the motor channels peak at the press: the target is learnable."""
    X, y, skipped, _ = _windows(bids, tmp_path)
    assert X.shape[1:] == (129, 200) and not skipped
    peaks = X[:, 30:70].mean(axis=1).argmax(axis=1) / 100 + 0.5
    assert np.corrcoef(peaks, y)[0, 1] > 0.9


def test_corrupt_recording_is_skipped_counted_and_remembered(bids: Path, tmp_path: Path):
    import shutil

    copy = tmp_path / "bids"
    shutil.copytree(bids, copy)
    victim = sorted(copy.glob("sub-*/eeg/*_eeg.set"))[0]
    victim.write_bytes(victim.read_bytes()[:1000])
    _, _, skipped, store = _windows(copy, tmp_path / "cache")
    assert [(Path(f).name, reason.split(" ")[0]) for f, reason in skipped] == [
        (victim.name, "unreadable")
    ]
    assert store.misses == 4
    _, _, again, store = _windows(copy, tmp_path / "cache")
    assert again == skipped and store.misses == 0  # not parsed again: remembered as skipped


def test_window_cache_means_no_eeg_file_is_read_again(bids, tmp_path, monkeypatch):
    X1, y1, _, first = _windows(bids, tmp_path)
    assert first.misses == 4 and first.hits == 0

    def no_reading(path):
        raise AssertionError(f"{path} parsed again")

    monkeypatch.setattr(windows_module, "read_raw", no_reading)
    X2, y2, _, second = _windows(bids, tmp_path)
    assert second.hits == 4 and second.misses == 0
    assert np.array_equal(X1, X2) and np.array_equal(y1, y2)
    entry = next(tmp_path.iterdir())
    assert isinstance(np.load(entry / "X.npy", mmap_mode="r"), np.memmap)


def test_challenge2_windows_are_4s_at_2s_stride(bids: Path, tmp_path: Path):
    X, _, _, _ = _windows(bids, tmp_path, challenge=2)
    assert X.shape[1:] == (129, 400)
    # consecutive windows of one recording overlap by 2 s
    assert np.array_equal(X[0, :, 200:], X[1, :, :200])


def test_500hz_original_is_referenced_filtered_and_resampled(tmp_path: Path):
    """The fcp-indi originals (500 Hz) come out at the challenge's spec: 100 Hz, 0.5-50 Hz."""
    sfreq, seconds = 500, 20
    t = np.arange(sfreq * seconds) / sfreq
    data = np.zeros((len(CHANNEL_NAMES), len(t)))
    data[:128] = 20e-6 * np.sin(2 * np.pi * 10 * t) + 20e-6 * np.sin(2 * np.pi * 120 * t) + 50e-6
    info = mne.create_info(CHANNEL_NAMES, sfreq, ch_types="eeg")
    path = tmp_path / "sub-X_task-contrastChangeDetection_run-1_eeg.set"
    mne.export.export_raw(path, mne.io.RawArray(data, info, verbose="error"), fmt="eeglab",
                          verbose="error")  # fmt: skip
    raw = read_raw(path)
    assert raw.info["sfreq"] == 100 and raw.ch_names == CHANNEL_NAMES
    signal = raw.get_data(picks=["E1"])[0, 200:-200]
    spectrum = np.abs(np.fft.rfft(signal))
    freqs = np.fft.rfftfreq(len(signal), 1 / 100)
    assert abs(freqs[spectrum.argmax()] - 10) < 0.2  # the 10 Hz rhythm stays
    assert abs(signal.mean()) < 1e-6  # the 50 uV offset is gone (0.5 Hz high-pass)
    assert np.allclose(raw.get_data(picks=["Cz"]), 0)  # Cz reference


def _datamodule(tmp_path: Path, **data) -> EEG2025DataModule:
    settings = get_settings(cache_dir=tmp_path / "cache", data_dir=tmp_path)
    cfg = EEG2025Data(synthetic={"subjects": 8, "trials_per_run": 10, "seed": 4}, **data)
    module = EEG2025DataModule(cfg, batch_size=4, settings=settings, seed=0)
    module.setup("fit")
    return module


def test_challenge2_targets_are_per_subject_and_na_is_counted(tmp_path: Path):
    module = _datamodule(tmp_path, challenge=2, val_fraction=0.25)
    stats = module.stats
    assert stats["skipped"] == {"no externalizing (n/a)": 1}  # the synthetic tree has one
    assert len(stats["train_subjects"]) + len(stats["val_subjects"]) == 7
    assert len(stats["val_subjects"]) >= 2 and stats["n_times"] == 200
    x, y = module.train_set[0]
    assert x.shape == (129, 200) and y.shape == (1,)
    # training crops move, validation crops do not
    crops = {module.train_set.window(0).tobytes() for _ in range(8)}
    assert len(crops) > 1
    assert module.val_set.window(0).tobytes() == module.val_set.window(0).tobytes()
    participants = read_participants(LocalSource(Path(stats["sources"][0])))
    expected = sorted(participants.loc[stats["val_subjects"], "externalizing"])
    assert np.allclose(sorted(set(module.val_set.targets.tolist())), expected)


def test_max_subjects_is_deterministic_and_respects_availability(tmp_path: Path):
    first = _datamodule(tmp_path, max_subjects=5).stats
    again = _datamodule(tmp_path, max_subjects=5).stats
    assert first["train_subjects"] == again["train_subjects"]
    assert len(first["train_subjects"]) + len(first["val_subjects"]) == 5
    assert again["window_cache"]["built"] == 0  # second run: every window from the cache


def test_a_release_without_usable_subjects_is_one_clear_error(tmp_path: Path):
    with pytest.raises(DataError, match=r"no subject of release R9 has contrastChangeDetection"):
        _datamodule(tmp_path, source=str(_r1_tree(tmp_path)), releases=["R9"])


def _r1_tree(tmp_path: Path) -> Path:
    return write_synthetic_bids(tmp_path / "r1", subjects=3, trials_per_run=6, seed=1)


def test_task_availability_reads_the_run_columns():
    participants = read_participants(LocalSource(REAL_METADATA))
    available = task_available(participants, "contrastChangeDetection")
    assert available.dtype == bool and 0 < available.sum() < len(participants)
    assert task_available(participants, "noSuchTask").all()


def test_participants_ids_drop_the_sub_prefix():
    participants = read_participants(LocalSource(REAL_METADATA))
    assert "NDARAC904DMU" in participants.index
    assert len(participants) == 136


def test_subject_split_is_grouped_and_deterministic():
    subjects = [f"S{i}" for i in range(10)]
    train, val = split_subjects(subjects, 0.2, seed=1)
    assert not set(train) & set(val)
    assert len(val) == 2 and len(train) == 8
    assert split_subjects(subjects, 0.2, seed=1) == (train, val)
