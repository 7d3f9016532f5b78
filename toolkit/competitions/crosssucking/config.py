"""The `data:` section of crosssucking recipes."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from toolkit.config.schema import StrictModel


class ClipConfig(StrictModel):
    """What one model input is: `frames` frames `stride` apart, decoded with the short side at
    `short_side` (the array cache's size) and cropped to `crop` x `crop`."""

    frames: int = Field(16, ge=1)
    stride: int = Field(1, ge=1)
    short_side: int = Field(128, ge=8)
    crop: int = Field(112, ge=8)


class TTAConfig(StrictModel):
    """Validation, test and predict.py: clips per event at evenly spaced offsets, aggregated."""

    clips_per_event: int = Field(5, ge=1)
    aggregation: Literal["mean_probs", "mean_logits"] = Field(
        "mean_probs", description="softmax then mean (MMAction2's default) or mean logits"
    )
    batch_size: int = Field(8, ge=1, description="clips per forward pass")


class AugmentConfig(StrictModel):
    """Training augmentation, drawn afresh for every clip."""

    resized_crop_scale: tuple[float, float] | None = Field(
        (0.5, 1.0), description="random resized crop area range; null: a random plain crop"
    )
    flip: bool = True
    colour_jitter: float = Field(0.4, ge=0, le=1, description="brightness/contrast/saturation")
    temporal_jitter: bool = Field(True, description="random clip start inside the event")


class BoostConfig(StrictModel):
    """Oversample tail events (whole copies) until they are `tail_fraction` of a side."""

    tail_fraction: float = Field(gt=0, lt=1)
    sides: list[Literal["train", "val"]] = Field(default_factory=lambda: ["train"])


class SplitConfig(StrictModel):
    """How train and validation events are chosen.

    given: train_manifest / val_manifest as they are. video: the pooled manifests split by video
    (StratifiedGroupKFold, no video on both sides). intravideo: every video's events in time
    order, the last `val_fraction` to validation, events within `gap` (the manifests' time unit)
    of the boundary dropped."""

    kind: Literal["given", "video", "intravideo"] = "given"
    val_fraction: float = Field(0.2, gt=0, lt=1)
    gap: float = Field(0.0, ge=0)
    seed: int = 0
    boost: BoostConfig | None = None


class SyntheticConfig(StrictModel):
    """Synthetic MP4s (moving shapes) made when `source` is `synthetic`."""

    videos: int = Field(12, ge=2, description="training-pool videos (events.csv)")
    test_videos: int = Field(4, ge=1, description="held-out videos (test.csv), no confound")
    events_per_video: int = Field(8, ge=2)
    height: int = Field(48, ge=16)
    width: int = Field(64, ge=16)
    confound: bool = Field(True, description="label follows lighting in half the pool's videos")
    seed: int = 0


class CrossSuckingData(StrictModel):
    """Event manifests (CSV) under a data root, decoded once into the array cache."""

    source: str = Field(
        "synthetic", description="data root (relative to TOOLKIT_DATA_DIR) or `synthetic`"
    )
    train_manifest: str = Field("events.csv", description="relative to the data root")
    val_manifest: str | None = Field(
        None, description="given split: the validation events; other splits pool it with train"
    )
    test_manifest: str | None = Field("test.csv", description="held-out events (after training)")
    time_unit: Literal["frames", "seconds"] = Field(
        "frames", description="of start/end: frames (end exclusive) or seconds"
    )
    clip: ClipConfig = Field(default_factory=ClipConfig)
    tta: TTAConfig = Field(default_factory=TTAConfig)
    augment: AugmentConfig = Field(default_factory=AugmentConfig)
    split: SplitConfig = Field(default_factory=SplitConfig)
    balanced_sampler: bool = Field(True, description="WeightedRandomSampler, 1 / class count")
    confound_flag: float = Field(
        0.3,
        gt=0,
        lt=1,
        description="flag when the video explains this share of P(tail)'s "
        "within-label variance (and the ANOVA's p < 0.01)",
    )
    synthetic: SyntheticConfig = Field(default_factory=SyntheticConfig)
