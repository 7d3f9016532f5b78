"""Events per second: the decode-once array cache vs decoding the video every time.

Both serve the same events of the same synthetic H.264 videos, as training clips (the same
augmentation code path as training), in one run:

- decode each time: PyAV seeks to the event, decodes its frames at the short side (what a
  loader without a cache does every epoch);
- array cache: the memory maps written once by the event cache (after a first, timed build).

    .venv/bin/python benchmarks/crosssucking_cache.py [--videos 4] [--height 240] [--epochs 3]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from toolkit.competitions.crosssucking.augment import training_clip
from toolkit.competitions.crosssucking.cache import EventFrames
from toolkit.competitions.crosssucking.config import AugmentConfig, ClipConfig
from toolkit.competitions.crosssucking.events import LoadReport, load_events
from toolkit.competitions.crosssucking.standalone import PyAVReader
from toolkit.competitions.crosssucking.synth import write_synthetic


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=4)
    parser.add_argument("--events-per-video", type=int, default=8)
    parser.add_argument("--height", type=int, default=240)
    parser.add_argument("--short-side", type=int, default=128)
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args()
    clip = ClipConfig(frames=16, short_side=args.short_side, crop=112)
    aug = AugmentConfig()
    with tempfile.TemporaryDirectory() as tmp:
        root = write_synthetic(
            Path(tmp) / "data",
            videos=args.videos,
            test_videos=1,
            events_per_video=args.events_per_video,
            height=args.height,
            width=args.height * 4 // 3,
        )
        reader = PyAVReader()
        events = load_events(root / "events.csv", root, "frames", reader, LoadReport())
        n = len(events) * args.epochs

        def decode(e):
            return reader.read(e.path, e.start_frame, e.stop_frame, clip.short_side)

        cache = EventFrames(Path(tmp) / "cache", clip.short_side, reader)
        started = time.perf_counter()
        for e in events:
            cache.get(e)
        build = time.perf_counter() - started
        rates = {}
        for augment in (False, True):
            for name in ("decode", "cache"):
                started = time.perf_counter()
                for _ in range(args.epochs):  # the cache is opened afresh each epoch
                    epoch_cache = EventFrames(cache.cache.root, clip.short_side, reader)
                    for e in events:
                        frames = decode(e) if name == "decode" else np.array(epoch_cache.get(e))
                        if augment:
                            training_clip(frames, clip, aug)
                rates[name, augment] = n / (time.perf_counter() - started)

    print(
        f"{len(events)} events, {args.epochs} epochs, {args.height}p H.264 -> short side "
        f"{clip.short_side}, 16-frame clips cropped to 112"
    )
    print("| loader | events/s, frames | vs decode | events/s, augmented clips | vs decode |")
    print("|---|---:|---:|---:|---:|")
    for name, label in (
        ("decode", "decode the video every time (PyAV)"),
        ("cache", f"array cache (memory maps; built once in {build:.1f} s)"),
    ):
        raw, clips = rates[name, False], rates[name, True]
        print(
            f"| {label} | {raw:.1f} | {raw / rates['decode', False]:.1f}x | {clips:.1f} | "
            f"{clips / rates['decode', True]:.1f}x |"
        )


if __name__ == "__main__":
    main()
