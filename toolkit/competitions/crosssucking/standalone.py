"""The crosssucking bundle's predict.py (numpy + av + onnxruntime; never torch or the toolkit).

The toolkit imports the same functions (manifest reading, PyAV decoding with bad-seek
detection, clip sampling and TTA aggregation), so training-time evaluation and the bundle score
events the same way.

    python predict.py MANIFEST.csv OUT.csv [--root DATA_ROOT] [--device cpu|cuda]

MANIFEST.csv: one row per event with `video` (path relative to --root, default the manifest's
folder), `start`, `end` (frames, end exclusive, or seconds: see model.json's `time_unit`),
`video_id`, optionally `label` (ear|tail) and `event_id` (default: the 1-based data row).
OUT.csv: event_id, video_id, video, start, end, label, p_tail, prediction. Bad rows are skipped
with one warning line each (naming the row and file) and counted.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np

LABELS = ("ear", "tail")  # class index 0, 1: P(tail) is the positive-class probability
REQUIRED = ("video", "start", "end", "video_id")
OUTPUT_COLUMNS = ("event_id", "video_id", "video", "start", "end", "label", "p_tail", "prediction")
Forward = Callable[[np.ndarray], np.ndarray]  # (B, 3, T, H, W) float32 in [0, 1] -> (B, 2)


class ManifestError(ValueError):
    """The manifest as a whole is unusable (missing file or columns)."""


class VideoError(ValueError):
    """One video (or one event in it) cannot be decoded."""


@dataclass(frozen=True)
class Event:
    """One manifest row: where the event is and (when known) what it is."""

    event_id: str
    row: int  # 1-based data row of the manifest (the header is row 0)
    video: str
    video_id: str
    start: float
    end: float
    label: int | None  # index into LABELS; None when the manifest has no label
    extra: dict[str, str] = field(default_factory=dict)


def read_manifest(path: Path, require_label: bool) -> tuple[list[Event], list[str]]:
    """The manifest's valid events and one problem line per bad row (row and file named)."""
    path = Path(path)
    if not path.is_file():
        raise ManifestError(f"{path}: manifest not found")
    with path.open(newline="") as fh:
        reader = csv.DictReader(fh)
        columns = [c.strip() for c in reader.fieldnames or []]
        needed = REQUIRED + (("label",) if require_label else ())
        missing = [c for c in needed if c not in columns]
        if missing:
            raise ManifestError(
                f"{path}: manifest lacks column(s) {', '.join(missing)} "
                f"(has: {', '.join(columns) or 'none'}; needs {', '.join(needed)})"
            )
        events, problems = [], []
        for row, raw in enumerate(reader, start=1):
            values = {k.strip(): (v or "").strip() for k, v in raw.items() if k is not None}
            event, problem = _parse_row(values, row, path)
            if problem:
                problems.append(problem)
            else:
                events.append(event)
    return events, problems


def _parse_row(values: dict[str, str], row: int, path: Path) -> tuple[Any, str]:
    where = f"{path} row {row}"
    try:
        start, end = float(values["start"]), float(values["end"])
    except ValueError:
        return (
            None,
            f"{where}: start/end must be numbers (got {values['start']!r}, {values['end']!r})",
        )
    if not (math.isfinite(start) and math.isfinite(end)) or start < 0:
        return None, f"{where}: start must be >= 0 and both finite (got {start}, {end})"
    if end <= start:
        return None, f"{where}: end {end:g} is not after start {start:g}"
    if not values["video"]:
        return None, f"{where}: empty video path"
    label = None
    text = values.get("label", "")
    if text or "label" in values:
        if text.lower() not in LABELS:
            return None, f"{where}: unknown label {text!r} (expected one of {', '.join(LABELS)})"
        label = LABELS.index(text.lower())
    extra = {k: v for k, v in values.items() if k not in (*REQUIRED, "label", "event_id")}
    event_id = values.get("event_id") or str(row)
    return Event(
        event_id,
        row,
        values["video"],
        values["video_id"] or values["video"],
        start,
        end,
        label,
        extra,
    ), ""


@dataclass(frozen=True)
class VideoInfo:
    """What a video holds: frame count, frame rate and size."""

    frames: int
    fps: float
    width: int
    height: int


def frame_range(event: Event, info: VideoInfo, time_unit: str) -> tuple[int, int]:
    """[start, stop) frame indices of an event (seconds are rounded to the nearest frame)."""
    if time_unit == "seconds":
        start, stop = round(event.start * info.fps), round(event.end * info.fps)
        return start, max(stop, start + 1)
    return int(event.start), math.ceil(event.end)


def resized(width: int, height: int, short_side: int) -> tuple[int, int]:
    """(width, height) scaled so the shorter side is `short_side`."""
    scale = short_side / min(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


class PyAVReader:
    """Reads frame ranges with PyAV: seek to the range, and when the seek lands badly (a corrupt
    first frame, or past the target) decode again from the start of the file."""

    name = "pyav"

    def __init__(self) -> None:
        import av

        av.logging.set_level(av.logging.PANIC)  # corrupt frames are detected, not printed
        self.av = av
        self.reseeks = 0  # ranges decoded again from the start after a bad seek

    def probe(self, path: Path) -> VideoInfo:
        """Frame count, rate and size; VideoError if unreadable or without frames."""
        try:
            with self.av.open(str(path)) as container:
                if not container.streams.video:
                    raise VideoError(f"{path}: video has no frames (no video stream)")
                stream = container.streams.video[0]
                fps = float(stream.average_rate or stream.guessed_rate or 0)
                frames = stream.frames or sum(1 for p in container.demux(stream) if p.size)
                width, height = stream.codec_context.width, stream.codec_context.height
        except VideoError:
            raise
        except Exception as exc:  # av.error.* and OSError
            raise VideoError(f"{path}: unreadable video ({type(exc).__name__}: {exc})") from None
        if frames <= 0 or fps <= 0:
            raise VideoError(f"{path}: video has no frames")
        return VideoInfo(int(frames), fps, width, height)

    def read(self, path: Path, start: int, stop: int, short_side: int) -> np.ndarray:
        """Frames [start, stop) as uint8 (T, H, W, 3), the short side resized to `short_side`."""
        try:
            frames = self._after_seek(path, start, stop, short_side) if start > 0 else None
            if frames is None:
                if start > 0:
                    self.reseeks += 1
                frames = self._from_start(path, start, stop, short_side)
        except VideoError:
            raise
        except Exception as exc:
            raise VideoError(f"{path}: decoding failed ({type(exc).__name__}: {exc})") from None
        if not len(frames):
            raise VideoError(f"{path}: no frame in [{start}, {stop})")
        return np.stack(frames)

    def _frames(self, container, short_side: int) -> Iterator[tuple[Any, Any, tuple[int, int]]]:
        stream = container.streams.video[0]
        size = resized(stream.codec_context.width, stream.codec_context.height, short_side)
        for frame in container.decode(stream):
            yield stream, frame, size

    def _after_seek(self, path: Path, start: int, stop: int, short_side: int) -> list | None:
        with self.av.open(str(path)) as container:
            stream = container.streams.video[0]
            fps, base = float(stream.average_rate), float(stream.time_base)
            offset = stream.start_time or 0
            container.seek(offset + int(start / fps / base), stream=stream, backward=True)
            out, first = [], True
            for _, frame, (w, h) in self._frames(container, short_side):
                index = round((frame.pts - offset) * base * fps) if frame.pts is not None else -1
                if first and (frame.is_corrupt or index < 0 or index > start):
                    return None  # a bad seek: landed on garbage or past the target
                first = False
                if frame.is_corrupt:
                    return None
                if index >= start:
                    out.append(frame.to_ndarray(format="rgb24", width=w, height=h))
                if index >= stop - 1:
                    break
            return out

    def _from_start(self, path: Path, start: int, stop: int, short_side: int) -> list:
        out = []
        with self.av.open(str(path)) as container:
            for index, (_, frame, (w, h)) in enumerate(self._frames(container, short_side)):
                if index >= start:
                    if frame.is_corrupt:
                        raise VideoError(f"{path}: corrupt frame {index} (decoded from the start)")
                    out.append(frame.to_ndarray(format="rgb24", width=w, height=h))
                if index >= stop - 1:
                    break
        return out


def clip_starts(n_frames: int, span: int, n_clips: int) -> list[int]:
    """First frames of `n_clips` clips of `span` frames at evenly spaced offsets (the centre
    for one clip; all at 0 when the event is shorter than a clip)."""
    room = max(n_frames - span, 0)
    if n_clips == 1:
        return [room // 2]
    return [round(i * room / (n_clips - 1)) for i in range(n_clips)]


def clip_indices(first: int, frames: int, stride: int, n_frames: int) -> np.ndarray:
    """Frame indices of one clip; past the end, the last frame repeats."""
    return np.minimum(first + np.arange(frames) * stride, n_frames - 1)


def centre_crop(video: np.ndarray, size: int) -> np.ndarray:
    """(T, H, W, C) -> (T, size, size, C) from the centre (edge-padded when smaller)."""
    _, h, w, _ = video.shape
    if h < size or w < size:
        pad_h, pad_w = max(size - h, 0), max(size - w, 0)
        pads = ((0, 0), (pad_h // 2, pad_h - pad_h // 2), (pad_w // 2, pad_w - pad_w // 2), (0, 0))
        video = np.pad(video, pads, mode="edge")
        _, h, w, _ = video.shape
    top, left = (h - size) // 2, (w - size) // 2
    return video[:, top : top + size, left : left + size]


def as_input(clip: np.ndarray) -> np.ndarray:
    """uint8 (T, H, W, 3) -> float32 (3, T, H, W) in [0, 1] (normalisation is in the model)."""
    return np.ascontiguousarray(clip.transpose(3, 0, 1, 2), dtype=np.float32) / 255.0


def event_clips(frames: np.ndarray, settings: dict[str, Any], n_clips: int) -> np.ndarray:
    """The event's test-time clips: (n_clips, 3, T, crop, crop) float32."""
    length, stride = settings["frames"], settings["stride"]
    span = (length - 1) * stride + 1
    clips = [
        as_input(
            centre_crop(frames[clip_indices(s, length, stride, len(frames))], settings["crop"])
        )
        for s in clip_starts(len(frames), span, n_clips)
    ]
    return np.stack(clips)


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def aggregate(logits: np.ndarray, how: str) -> float:
    """P(tail) of one event from its clips' logits (n_clips, 2): the mean of the clips'
    probabilities (`mean_probs`) or the softmax of the mean logits (`mean_logits`)."""
    if how == "mean_logits":
        return float(softmax(logits.mean(axis=0))[1])
    if how == "mean_probs":
        return float(softmax(logits)[:, 1].mean())
    raise ValueError(f"unknown aggregation {how!r} (mean_probs or mean_logits)")


def tail_probabilities(
    forward: Forward, clip_sets: Iterable[np.ndarray], how: str, batch_size: int
) -> list[float]:
    """P(tail) per event, running its clips through `forward` in batches of `batch_size` clips."""
    sets = list(clip_sets)
    if not sets:
        return []
    flat = np.concatenate(sets)
    logits = np.concatenate(
        [forward(flat[i : i + batch_size]) for i in range(0, len(flat), batch_size)]
    )
    bounds = np.cumsum([0, *(len(s) for s in sets)])
    return [aggregate(logits[a:b], how) for a, b in pairwise(bounds)]


def decode_events(
    events: list[Event],
    root: Path,
    settings: dict[str, Any],
    reader: PyAVReader,
    warn: Callable[[str], None],
    manifest: Path,
) -> Iterator[tuple[Event, np.ndarray]]:
    """(event, frames) for every event that decodes; the others are warned about and skipped."""
    infos: dict[str, VideoInfo | str] = {}
    for event in events:
        where = f"{manifest} row {event.row} ({event.video})"
        path = root / event.video
        if event.video not in infos:
            try:
                infos[event.video] = reader.probe(path) if path.is_file() else "video not found"
            except VideoError as exc:
                infos[event.video] = str(exc).removeprefix(f"{path}: ")
        info = infos[event.video]
        if isinstance(info, str):
            warn(f"{where}: {info} ({path}); skipped")
            continue
        start, stop = frame_range(event, info, settings["time_unit"])
        if stop > info.frames:
            warn(f"{where}: event ends at frame {stop}, past the video's {info.frames}; skipped")
            continue
        try:
            yield event, reader.read(path, start, stop, settings["short_side"])
        except VideoError as exc:
            warn(f"{where}: {exc}; skipped")


def onnx_forward(model: Path, device: str) -> Forward:
    """model.onnx as a Forward (CUDA when asked for and available)."""
    import onnxruntime as ort

    providers = ["CPUExecutionProvider"]
    if device != "cpu" and "CUDAExecutionProvider" in ort.get_available_providers():
        providers.insert(0, "CUDAExecutionProvider")
    session = ort.InferenceSession(str(model), providers=providers)
    name = session.get_inputs()[0].name
    return lambda x: session.run(None, {name: np.ascontiguousarray(x, dtype=np.float32)})[0]


def predict_manifest(
    manifest: Path,
    root: Path,
    forward: Forward,
    settings: dict[str, Any],
    warn: Callable[[str], None],
) -> tuple[list[dict[str, Any]], int]:
    """One output row per event that decodes, and how many rows were skipped."""
    events, problems = read_manifest(manifest, require_label=False)
    for problem in problems:
        warn(f"{problem}; skipped")
    reader = PyAVReader()
    rows = []
    for event, frames in decode_events(events, root, settings, reader, warn, manifest):
        clips = event_clips(frames, settings, settings["clips_per_event"])
        (p_tail,) = tail_probabilities(
            forward, [clips], settings["aggregation"], settings["batch_size"]
        )
        rows.append(
            {
                "event_id": event.event_id,
                "video_id": event.video_id,
                "video": event.video,
                "start": f"{event.start:g}",
                "end": f"{event.end:g}",
                "label": "" if event.label is None else LABELS[event.label],
                "p_tail": f"{p_tail:.6f}",
                "prediction": LABELS[int(p_tail >= 0.5)],
            }
        )
    return rows, len(events) + len(problems) - len(rows)


def write_predictions(path: Path, rows: list[dict[str, Any]]) -> None:
    """The predictions CSV, written to a temporary name and renamed (never half-written)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=OUTPUT_COLUMNS)
            writer.writeheader()
            writer.writerows(rows)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def main(argv: list[str] | None = None) -> int:
    here = Path(__file__).resolve().parent
    parser = argparse.ArgumentParser(description="Per-event P(tail) for a manifest of events.")
    parser.add_argument("manifest", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument(
        "--root", type=Path, default=None, help="videos' root (default: the manifest's folder)"
    )
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    settings = json.loads((here / "model.json").read_text())

    def warn(message: str) -> None:
        print(f"warning: {message}", file=sys.stderr)

    root = (args.root or args.manifest.resolve().parent).resolve()
    try:
        forward = onnx_forward(here / "model.onnx", args.device)
        rows, skipped = predict_manifest(args.manifest, root, forward, settings, warn)
    except ManifestError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not rows:
        print(
            f"error: {args.manifest}: no event could be predicted ({skipped} skipped)",
            file=sys.stderr,
        )
        return 2
    write_predictions(args.out, rows)
    print(f"wrote {len(rows)} events to {args.out} (skipped {skipped})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
