"""Manifests -> events with frame ranges, checked against their videos; bad rows are skipped
with one warning line each and counted; an unusable manifest is one DataError line."""

from __future__ import annotations

import hashlib
import logging
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path

from toolkit.competitions.crosssucking.standalone import (
    Event,
    ManifestError,
    PyAVReader,
    VideoError,
    VideoInfo,
    frame_range,
    read_manifest,
)
from toolkit.errors import DataError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ClipEvent:
    """An event whose frames [start_frame, stop_frame) exist in `path`."""

    event: Event
    path: Path
    manifest: str
    start_frame: int
    stop_frame: int
    fingerprint: str

    @property
    def label(self) -> int:
        assert self.event.label is not None
        return self.event.label

    @property
    def video_id(self) -> str:
        return self.event.video_id

    @property
    def key(self) -> str:
        """Unique across manifests (a boosted copy gets a suffix)."""
        return f"{self.manifest}:{self.event.event_id}"

    @property
    def frames_key(self) -> str:
        """Same for an event and its boosted copies: where its decoded frames are kept."""
        return f"{self.fingerprint}:{self.start_frame}:{self.stop_frame}"

    def copy(self, n: int) -> ClipEvent:
        """The n-th duplicate (boosting): same frames, its own id."""
        return replace(self, event=replace(self.event, event_id=f"{self.event.event_id}#{n}"))


def fingerprint(path: Path, chunk: int = 1 << 16) -> str:
    """Size + sha256 of the first and last 64 KiB: changes when the file does, cheap to take."""
    size = path.stat().st_size
    digest = hashlib.sha256(str(size).encode())
    with path.open("rb") as fh:
        digest.update(fh.read(chunk))
        if size > chunk:
            fh.seek(max(size - chunk, chunk))
            digest.update(fh.read(chunk))
    return digest.hexdigest()[:16]


@dataclass
class LoadReport:
    """What was read and what was skipped, by reason."""

    rows: int = 0
    kept: int = 0
    skipped: Counter | None = None

    def as_dict(self) -> dict:
        return {"rows": self.rows, "kept": self.kept, "skipped": dict(self.skipped or {})}


def load_events(
    manifest: Path, root: Path, time_unit: str, reader: PyAVReader, report: LoadReport
) -> list[ClipEvent]:
    """The labelled events of one manifest whose videos hold their frame ranges."""
    try:
        events, problems = read_manifest(manifest, require_label=True)
    except ManifestError as exc:
        raise DataError(str(exc)) from None
    report.skipped = report.skipped or Counter()
    report.rows += len(events) + len(problems)
    for problem in problems:
        log.warning("%s; skipped", problem)
        report.skipped["bad row"] += 1
    infos: dict[str, VideoInfo | str] = {}
    prints: dict[str, str] = {}
    kept = []
    for event in events:
        path = (root / event.video).resolve()
        where = f"{manifest} row {event.row} ({event.video})"
        if event.video not in infos:
            try:
                if not path.is_file():
                    raise VideoError(f"{path}: video not found")
                infos[event.video] = reader.probe(path)
                prints[event.video] = fingerprint(path)
            except VideoError as exc:
                infos[event.video] = str(exc)
        info = infos[event.video]
        if isinstance(info, str):
            log.warning("%s: %s; skipped", where, info)
            report.skipped["video missing or unreadable"] += 1
            continue
        start, stop = frame_range(event, info, time_unit)
        if stop > info.frames:
            log.warning(
                "%s: event ends at frame %d, past the end of %s (%d frames); skipped",
                where,
                stop,
                path,
                info.frames,
            )
            report.skipped["past the end of its video"] += 1
            continue
        kept.append(ClipEvent(event, path, manifest.name, start, stop, prints[event.video]))
    report.kept += len(kept)
    return kept


def manifest_path(root: Path, name: str) -> Path:
    """A manifest relative to the data root (or absolute); DataError naming it if absent."""
    path = Path(name).expanduser()
    path = path if path.is_absolute() else root / path
    if not path.is_file():
        raise DataError(f"manifest {name}: not found ({path})")
    return path


def label_counts(events: list[ClipEvent]) -> dict[str, int]:
    from toolkit.competitions.crosssucking.standalone import LABELS

    counts = Counter(e.label for e in events)
    return {name: counts.get(i, 0) for i, name in enumerate(LABELS)}
