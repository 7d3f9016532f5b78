"""Synthetic calf videos: real H.264 MP4 files (PyAV) of two moving blobs ("calves") with event
manifests in the real layout.

The planted signal: during a tail event a warm marker sways horizontally beside the right-hand
calf; during an ear event a cool marker bobs vertically above it. Per-video nuisance: lighting
gain, background tint, camera offset, sensor noise. The planted confound (`confound`): in every
other pool video the label follows the lighting (bright videos 80 % tail, dark ones all ear), so a
model can score on a video-grouped split by learning the lighting; test videos have none.

Layout: videos/<video_id>.mp4, events.csv (the training pool), test.csv (held-out videos).
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from toolkit.competitions.crosssucking.standalone import LABELS

FPS = 10
COLUMNS = ("event_id", "video", "start", "end", "label", "video_id", "lighting", "confounded")
WARM, COOL = np.array([230.0, 70.0, 40.0]), np.array([40.0, 140.0, 230.0])


def write_mp4(path: Path, frames: np.ndarray, fps: int = FPS) -> Path:
    """uint8 (T, H, W, 3) RGB frames -> an H.264 MP4 (yuv420p, a keyframe every 30 frames)."""
    import av

    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": "18", "g": "30", "preset": "ultrafast"}
        for array in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(array, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def _blob(h: int, w: int, cy: float, cx: float, ry: float, rx: float) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w]
    return (((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1.0).astype(np.float32)


def render_video(
    labels: list[int], gain: float, rng: np.random.Generator, height: int, width: int
) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """Frames of one video holding one event per label, and each event's [start, stop)."""
    tint = rng.uniform(60, 130, size=3)
    dy, dx = (
        rng.integers(-height // 10, height // 10 + 1),
        rng.integers(-width // 10, width // 10 + 1),
    )
    spans, t = [], int(rng.integers(3, 7))
    for _ in labels:
        length = int(rng.integers(10, 17))
        spans.append((t, t + length))
        t += length + int(rng.integers(4, 9))
    frames = np.empty((t, height, width, 3), dtype=np.uint8)
    calf = np.array([150.0, 110.0, 80.0])
    r = height / 7
    for i in range(t):
        img = np.broadcast_to(tint, (height, width, 3)).copy()
        sway = np.sin(i / 6.0) * width / 20
        for cx in (width * 0.3 + sway, width * 0.68 - sway / 2):
            mask = _blob(height, width, height * 0.55 + dy, cx + dx, r * 1.3, r * 1.9)[..., None]
            img = img * (1 - mask) + calf * mask
        for (start, stop), label in zip(spans, labels, strict=True):
            if start <= i < stop:
                phase = np.sin((i - start) * 1.3)
                target_x = width * 0.68 - sway / 2 + dx
                if LABELS[label] == "tail":
                    cy, cx, colour = height * 0.55 + dy, target_x + r * 2.2 + phase * r * 0.8, WARM
                else:
                    cy, cx, colour = height * 0.25 + dy + phase * r * 0.8, target_x, COOL
                mask = _blob(height, width, cy, cx, r * 0.7, r * 0.7)[..., None]
                img = img * (1 - mask) + colour * mask
        img = img * gain + rng.normal(0, 2, size=img.shape)
        frames[i] = np.clip(img, 0, 255).astype(np.uint8)
    return frames, spans


def _video_plan(index: int, pool: bool, confound: bool, rng: np.random.Generator):
    """(lighting gain, tail probability, confounded) of one video."""
    if pool and confound and index % 2 == 0:
        bright = index % 4 == 0
        return (
            (rng.uniform(1.25, 1.45), 0.8, True) if bright else (rng.uniform(0.4, 0.55), 0.0, True)
        )
    return rng.uniform(0.5, 1.35), 0.3, False


def write_synthetic(
    root: Path,
    *,
    videos: int = 12,
    test_videos: int = 4,
    events_per_video: int = 8,
    height: int = 48,
    width: int = 64,
    confound: bool = True,
    seed: int = 0,
) -> Path:
    """Write the videos and both manifests under `root`; return `root`."""
    root = Path(root)
    rng = np.random.default_rng(seed)
    manifests: dict[str, list[dict[str, str]]] = {"events.csv": [], "test.csv": []}
    plan = [("events.csv", i, True) for i in range(videos)]
    plan += [("test.csv", videos + i, False) for i in range(test_videos)]
    for manifest, index, pool in plan:
        gain, p_tail, confounded = _video_plan(index, pool, confound, rng)
        if confounded:  # a fixed share, so that even a few events show the confound
            labels = [0] * events_per_video
            for k in rng.permutation(events_per_video)[: round(p_tail * events_per_video)]:
                labels[k] = 1
        else:
            labels = [int(rng.random() < p_tail) for _ in range(events_per_video)]
        if not confounded and len(set(labels)) == 1:  # every plain video has both classes
            labels[int(rng.integers(events_per_video))] = 1 - labels[0]
        frames, spans = render_video(labels, gain, rng, height, width)
        video_id = f"{'v' if pool else 't'}{index:02d}"
        write_mp4(root / "videos" / f"{video_id}.mp4", frames)
        for k, ((start, stop), label) in enumerate(zip(spans, labels, strict=True)):
            manifests[manifest].append(
                {
                    "event_id": f"{video_id}-{k:02d}",
                    "video": f"videos/{video_id}.mp4",
                    "start": str(start),
                    "end": str(stop),
                    "label": LABELS[label],
                    "video_id": video_id,
                    "lighting": f"{gain:.3f}",
                    "confounded": str(confounded),
                }
            )
    for name, rows in manifests.items():
        with (root / name).open("w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=COLUMNS)
            writer.writeheader()
            writer.writerows(rows)
    return root
