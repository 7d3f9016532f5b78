"""Decode each event ONCE into the on-disk array cache (keyed by the video's fingerprint, the
frame range, the short side and the reader), so epochs read memory maps and no video."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from toolkit.competitions.crosssucking.events import ClipEvent
from toolkit.competitions.crosssucking.standalone import PyAVReader, VideoError
from toolkit.data.array_cache import ArrayCache

log = logging.getLogger(__name__)
VERSION = 1  # bump when decoding or resizing changes


class EventFrames:
    """Frames of events at one short side, decoded on the first request and cached on disk."""

    def __init__(self, root: Path, short_side: int, reader: PyAVReader):
        self.cache = ArrayCache(root)
        self.short_side = short_side
        self.reader = reader
        self.failed = 0  # events that could not be decoded (remembered in the cache)

    def key(self, event: ClipEvent) -> dict:
        return {
            "kind": "crosssucking-event",
            "video": event.fingerprint,
            "start": event.start_frame,
            "stop": event.stop_frame,
            "short_side": self.short_side,
            "reader": self.reader.name,
            "version": VERSION,
        }

    def get(self, event: ClipEvent) -> np.ndarray | None:
        """uint8 (T, H, W, 3) memory map, or None (with a warning) if the event cannot decode."""

        def build():
            before = self.reader.reseeks
            try:
                frames = self.reader.read(
                    event.path, event.start_frame, event.stop_frame, self.short_side
                )
            except VideoError as exc:
                return {}, {"skipped": str(exc)}
            return {"frames": frames}, {"reseeked": self.reader.reseeks > before}

        entry = self.cache.get_or_build(self.key(event), build)
        if entry.skipped:
            self.failed += 1
            log.warning("%s row %d: %s; skipped", event.manifest, event.event.row, entry.skipped)
            return None
        return entry.arrays["frames"]
