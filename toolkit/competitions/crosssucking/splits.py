"""Train/validation splits of events: given, video-grouped, intra-video (time-ordered, with a
gap), and tail boosting; plus the split report the users check ("76 videos overlap")."""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from toolkit.competitions.crosssucking.config import BoostConfig, SplitConfig
from toolkit.competitions.crosssucking.events import ClipEvent, label_counts
from toolkit.errors import DataError


def video_split(events: list[ClipEvent], cfg: SplitConfig) -> tuple[list, list]:
    """No video on both sides: the first fold of StratifiedGroupKFold with tail events on both
    sides (tail often sits in a few videos, so a fold can miss it), else the first such draw of
    GroupShuffleSplit; the first fold when none has (split_events then says so)."""
    from sklearn.model_selection import GroupShuffleSplit, StratifiedGroupKFold

    y = np.array([e.label for e in events])
    groups = np.array([e.video_id for e in events])
    folds = max(2, round(1 / cfg.val_fraction))
    if len(set(groups)) < 2:
        raise DataError("split.kind=video: all events are in one video; use intravideo")
    candidates: list[tuple[np.ndarray, np.ndarray]] = []
    try:
        splitter = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=cfg.seed)
        candidates += list(splitter.split(np.zeros(len(y)), y, groups))
    except ValueError:
        pass  # too few videos per class to stratify
    shuffle = GroupShuffleSplit(20, test_size=cfg.val_fraction, random_state=cfg.seed)
    candidates += list(shuffle.split(np.zeros(len(y)), y, groups))
    train_idx, val_idx = next(
        ((t, v) for t, v in candidates if y[t].any() and y[v].any()), candidates[0]
    )
    return [events[i] for i in train_idx], [events[i] for i in val_idx]


def intravideo_split(events: list[ClipEvent], cfg: SplitConfig) -> tuple[list, list]:
    """Each video's events in time order: the last `val_fraction` (at least one, when a video has
    two or more) to validation; events starting within `gap` before the boundary are dropped."""
    by_video: dict[str, list[ClipEvent]] = defaultdict(list)
    for event in events:
        by_video[event.video_id].append(event)
    train, val = [], []
    for video_events in by_video.values():
        ordered = sorted(video_events, key=lambda e: (e.event.start, e.event.end))
        n_val = min(len(ordered) - 1, max(1, round(len(ordered) * cfg.val_fraction)))
        if n_val <= 0:
            train += ordered
            continue
        head, tail = ordered[:-n_val], ordered[-n_val:]
        boundary = tail[0].event.start
        train += [e for e in head if e.event.end + cfg.gap <= boundary]
        val += tail
    return train, val


def boosted(events: list[ClipEvent], cfg: BoostConfig) -> list[ClipEvent]:
    """Tail events repeated (whole copies, cycling) until they are `tail_fraction` of the side:
    658 ear + 112 tail at 30 % -> 658 ear + 282 tail."""
    tails = [e for e in events if e.label == 1]
    n_ear = len(events) - len(tails)
    target = round(cfg.tail_fraction * n_ear / (1 - cfg.tail_fraction))
    extra = [tails[i % len(tails)].copy(1 + i // len(tails)) for i in range(target - len(tails))]
    return events + extra if tails else events


def split_events(
    pool: list[ClipEvent], given_val: list[ClipEvent] | None, cfg: SplitConfig
) -> tuple[list[ClipEvent], list[ClipEvent]]:
    """(train, val) as the recipe asks; DataError when a side has no tail (or no) event."""
    if cfg.kind == "given":
        if not given_val:
            raise DataError("split.kind=given needs data.val_manifest with events in it")
        train, val = pool, given_val
    else:
        pool = pool + (given_val or [])
        train, val = (video_split if cfg.kind == "video" else intravideo_split)(pool, cfg)
    for side, events in (("train", train), ("validation", val)):
        counts = label_counts(events)
        if not events or not counts["tail"]:
            raise DataError(
                f"split.kind={cfg.kind}: the {side} side has {len(events)} events and "
                f"{counts['tail']} tail events; it needs at least one tail event "
                "(change split.seed or split.val_fraction, or label more tail events)"
            )
    if cfg.boost is not None:
        train = boosted(train, cfg.boost) if "train" in cfg.boost.sides else train
        val = boosted(val, cfg.boost) if "val" in cfg.boost.sides else val
    return train, val


def side_report(events: list[ClipEvent]) -> dict:
    counts = label_counts(events)
    copies = sum("#" in e.event.event_id for e in events)
    return {
        "events": len(events),
        **counts,
        "tail_fraction": round(counts["tail"] / max(len(events), 1), 4),
        "videos": len({e.video_id for e in events}),
        "boosted_copies": copies,
    }


def split_report(sides: dict[str, list[ClipEvent]], kind: str) -> dict:
    """Per side: events, ear/tail counts, tail fraction, videos; videos on two sides; label
    purity (videos whose events are all one label: a video id then predicts the label)."""
    report: dict = {"kind": kind, **{name: side_report(ev) for name, ev in sides.items()}}
    videos = {name: {e.video_id for e in ev} for name, ev in sides.items()}
    names = list(sides)
    report["videos_on_both_sides"] = {
        f"{a}-{b}": len(videos[a] & videos[b]) for i, a in enumerate(names) for b in names[i + 1 :]
    }
    labels_of: dict[str, set[int]] = defaultdict(set)
    for ev in sides.values():
        for e in ev:
            labels_of[e.video_id].add(e.label)
    report["single_label_videos"] = sum(len(s) == 1 for s in labels_of.values())
    return report


def format_report(report: dict) -> list[str]:
    """The report as printable lines."""
    lines = [f"split ({report['kind']}):"]
    for name, side in report.items():
        if isinstance(side, dict) and "events" in side:
            boosted_note = (
                f", {side['boosted_copies']} boosted copies" if side["boosted_copies"] else ""
            )
            lines.append(
                f"  {name:<5} {side['events']:>5} events ({side['ear']} ear, {side['tail']} tail, "
                f"{100 * side['tail_fraction']:.1f} % tail) from {side['videos']} videos"
                + boosted_note
            )
    both = ", ".join(f"{k}: {v}" for k, v in report["videos_on_both_sides"].items())
    lines.append(
        f"  videos on both sides: {both}; single-label videos: {report['single_label_videos']}"
    )
    return lines
