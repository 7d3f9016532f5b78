"""The `data:` section of eeg2025 recipes."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from toolkit.config.schema import StrictModel
from toolkit.data.remote import CacheConfig

N_CHANS = 129
SFREQ = 100
CHANNEL_NAMES = [f"E{i}" for i in range(1, 129)] + ["Cz"]
C2_TARGETS = ("externalizing", "p_factor", "attention", "internalizing")


class SyntheticConfig(StrictModel):
    """Size of the synthetic BIDS tree made when `source: synthetic`."""

    subjects: int = Field(12, ge=2)
    runs: int = Field(1, ge=1, le=3)
    trials_per_run: int = Field(30, ge=4)
    seed: int = 0


class WindowConfig(StrictModel):
    """Challenge 1 windows: stimulus + shift to stimulus + shift + length (seconds)."""

    shift_after_stimulus: float = 0.5
    length: float = 2.0


class C2WindowConfig(StrictModel):
    """Challenge 2 windows: `length` s every `stride` s, randomly cropped to `crop` s in training
    (validation takes the centre crop, so its score is deterministic)."""

    length: float = Field(4.0, gt=0)
    stride: float = Field(2.0, gt=0)
    crop: float = Field(2.0, gt=0)


class LossConfig(StrictModel):
    """The training loss on the target's scale: MSE, or Huber (quadratic within `delta`)."""

    name: Literal["mse", "huber"] = "mse"
    delta: float = Field(1.0, gt=0, description="Huber's delta, in the target's unit (seconds)")


class EEG2025Data(StrictModel):
    """Where the HBN-EEG BIDS tree is and which subjects and windows to use."""

    source: str = Field(
        "synthetic",
        description="a BIDS root: local path (under TOOLKIT_DATA_DIR), s3://..., or synthetic",
    )
    challenge: Literal[1, 2] = Field(
        1, description="1: response time per trial; 2: a psychopathology score per subject"
    )
    task: str = "contrastChangeDetection"
    releases: list[str] = Field(default_factory=list)
    max_subjects: int | None = Field(None, ge=2)
    val_fraction: float = Field(0.2, gt=0, lt=1)
    split_seed: int | None = Field(
        None,
        description="seed of subject selection and the train/validation split (default: the "
        "training seed); fix it so ensemble members of different seeds share a validation set",
    )
    window: WindowConfig = Field(default_factory=WindowConfig)
    c2_window: C2WindowConfig = Field(default_factory=C2WindowConfig)
    c2_target: Literal["externalizing", "p_factor", "attention", "internalizing"] = "externalizing"
    synthetic: SyntheticConfig = Field(default_factory=SyntheticConfig)
    cache: CacheConfig = Field(default_factory=CacheConfig)
    loss: LossConfig = Field(default_factory=LossConfig)
    domain: Literal["subject", "release"] | None = Field(
        None,
        description="domain labels of training windows for a domain-adversarial head (S4, S4D): "
        "one domain per training subject, or per release",
    )
