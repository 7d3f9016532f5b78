"""Windows per second: the toolkit's on-disk window cache vs braindecode's windowed dataset.

Both serve the same Challenge 2 windows (4 s at a 2 s stride, 129 channels, 100 Hz) of the same
synthetic BIDS tree, epoch after epoch, in one run:

- braindecode, lazy: `create_fixed_length_windows(preload=False)` over the .set files, the way a
  dataset too big for memory is usually served; every epoch reads from the EEG files.
- braindecode, preloaded: the same with `preload=True` (all in RAM; not possible for 100 GB).
- toolkit cache: the memory-mapped arrays written once by the window cache, served by the
  training dataset with batched reads (the same code path as training).

Every method serves shuffled batches of `--batch-size` windows.

    .venv/bin/python benchmarks/eeg2025_window_cache.py [--subjects 12] [--epochs 3]
"""

from __future__ import annotations

import argparse
import tempfile
import time
import warnings
from pathlib import Path

import mne
import numpy as np
from braindecode.datasets import BaseConcatDataset, RawDataset
from braindecode.preprocessing import create_fixed_length_windows

from toolkit.competitions.eeg2025.bids import read_participants, subject_recordings
from toolkit.competitions.eeg2025.config import EEG2025Data
from toolkit.competitions.eeg2025.datamodule import WindowDataset
from toolkit.competitions.eeg2025.synth import write_synthetic_bids
from toolkit.competitions.eeg2025.windows import recording_windows
from toolkit.data.array_cache import ArrayCache
from toolkit.data.remote import LocalSource

SIZE, STRIDE = 400, 200


def braindecode_windows(files: list[Path], preload: bool):
    raws = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for path in files:
            raws.append(mne.io.read_raw_eeglab(path, preload=preload, verbose="error"))
    concat = BaseConcatDataset([RawDataset(raw, description={}) for raw in raws])
    return create_fixed_length_windows(
        concat,
        window_size_samples=SIZE,
        window_stride_samples=STRIDE,
        drop_last_window=True,
        preload=preload,
    )


def serve(dataset, epochs: int, batch_size: int) -> tuple[int, float]:
    """Shuffled batches, each stacked into one array; (windows read, seconds).

    braindecode's datasets are indexed window by window and stacked (its fastest path: through
    a DataLoader's default collate it measured about 13x slower here); the window cache's
    dataset gathers whole batches (`__getitems__`, which a DataLoader calls the same way)."""
    rng = np.random.default_rng(0)
    n, start = 0, time.perf_counter()
    for _ in range(epochs):
        order = rng.permutation(len(dataset))
        for lo in range(0, len(order), batch_size):
            batch = order[lo : lo + batch_size].tolist()
            if isinstance(dataset, WindowDataset):
                x = dataset.__getitems__(batch)[0].numpy()
            else:
                x = np.stack([dataset[i][0] for i in batch])
            n += len(x)
    assert x.shape[-1] in (SIZE, 200)
    return n, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subjects", type=int, default=12)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = write_synthetic_bids(Path(tmp) / "bids", subjects=args.subjects, trials_per_run=30)
        source = LocalSource(root)
        cfg = EEG2025Data(challenge=2)
        recordings = [
            rec
            for subject in read_participants(source).index
            for rec in subject_recordings(source, subject, cfg.task)
        ]
        files = [root / rec.eeg for rec in recordings]

        rows = []
        for label, preload in (("braindecode, lazy (reads the files)", False),
                               ("braindecode, preloaded in RAM", True)):  # fmt: skip
            start = time.perf_counter()
            windows = braindecode_windows(files, preload)
            setup = time.perf_counter() - start
            n, seconds = serve(windows, args.epochs, args.batch_size)
            rows.append((label, len(windows), setup, n / seconds))

        cache = ArrayCache(Path(tmp) / "windows")
        start = time.perf_counter()
        entries = [recording_windows(source, rec, cfg, cache) for rec in recordings]
        build = time.perf_counter() - start
        start = time.perf_counter()
        entries = [recording_windows(source, rec, cfg, cache) for rec in recordings]
        reopen = time.perf_counter() - start
        blocks = [e.arrays["X"] for e in entries]
        dataset = WindowDataset(blocks, [np.zeros(len(b)) for b in blocks], 200, True)
        n, seconds = serve(dataset, args.epochs, args.batch_size)
        rows.append(("toolkit window cache (memory-mapped)", len(dataset), reopen, n / seconds))

    peer = rows[0][3]
    print(f"{args.subjects} synthetic subjects, 129 x {SIZE} windows, {args.epochs} epochs, "
          f"batches of {args.batch_size}")  # fmt: skip
    print(f"window cache: built once in {build:.1f} s; later runs open it in {reopen:.2f} s\n")
    print(f"{'method':<40} {'windows':>8} {'setup s':>8} {'windows/s':>10} {'vs lazy':>8}")
    for label, count, setup, rate in rows:
        print(f"{label:<40} {count:>8} {setup:>8.2f} {rate:>10.0f} {rate / peer:>7.1f}x")


if __name__ == "__main__":
    main()
