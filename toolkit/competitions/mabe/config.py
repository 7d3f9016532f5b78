"""The `data:` section of mabe recipes."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from toolkit.config.schema import StrictModel
from toolkit.data.remote import CacheConfig

# The users' 4 coarse groups; self actions have no group of their own in their plan, so they
# join `social` (a choice: documented in the recipe).
COARSE_GROUPS: dict[str, list[str]] = {
    "background": [],
    "aggressive": [
        "attack", "chase", "chaseattack", "tussle", "dominance", "defend", "flinch", "escape",
        "avoid", "submit", "disengage", "shepherd",
    ],
    "social": [
        "sniff", "sniffbody", "sniffface", "sniffgenital", "reciprocalsniff", "approach",
        "follow", "allogroom", "dominancegroom", "huddle", "biteobject", "climb", "dig",
        "exploreobject", "freeze", "genitalgroom", "rear", "rest", "run", "selfgroom",
    ],
    "mating": ["mount", "attemptmount", "intromit", "ejaculate", "dominancemount"],
}  # fmt: skip


class SyntheticConfig(StrictModel):
    """Size of the synthetic data made when `source` is `synthetic` (three labs)."""

    videos: int = Field(9, ge=3, description="training videos, spread over the three labs")
    frames: int = Field(900, ge=120, description="frames per video on the 30 fps grid")
    seed: int = 0


class LossConfig(StrictModel):
    """Masked one-vs-rest BCE: only whitelisted (agent, target, action) frames count."""

    class_weights: list[float] | None = Field(
        None, description="weight of each output's positive frames (coarse: [1, 5, 8, 8])"
    )
    positive_weight: float = Field(1.0, gt=0, description="weight of every positive frame")


class PostprocessConfig(StrictModel):
    """Defaults of the post-processing; with `tune`, thresholds per (lab, action) and the
    smoothing / gap / duration settings are tuned on the validation videos after training."""

    threshold: float = Field(0.5, gt=0, lt=1)
    smooth: int = Field(1, ge=1, description="moving-average window (model frames)")
    max_gap: int = Field(0, ge=0, description="fill gaps up to this many frames")
    min_duration: int = Field(1, ge=1, description="drop shorter intervals (model frames)")
    tune: bool = True


class MABeData(StrictModel):
    """Which videos train the model, how they become windows, and the targets."""

    source: str = Field(
        "synthetic",
        description="data root with train.csv, train_tracking/, train_annotation/ (local, "
        "relative to TOOLKIT_DATA_DIR, or s3://...), or `synthetic`",
    )
    synthetic: SyntheticConfig = Field(default_factory=SyntheticConfig)
    cache: CacheConfig = Field(default_factory=CacheConfig)
    labs: list[str] | None = Field(None, description="only these labs (None: every annotated)")
    exclude_labs: list[str] = Field(
        default_factory=list, description="labs left out (e.g. those absent from the test set)"
    )
    max_videos: int | None = Field(None, ge=2, description="first N annotated videos only")
    features: Literal["pair", "motion"] = Field(
        "pair", description="pair: common skeleton, agent-centric, distances (45 per frame); "
        "motion: the users' 4 mice x 18 keypoints x (x, y, speed, acceleration) = 288",
    )  # fmt: skip
    targets: Literal["actions", "coarse"] = Field(
        "actions", description="one output per action, or the 4 coarse groups mapped back"
    )
    coarse_groups: dict[str, list[str]] = Field(default_factory=lambda: dict(COARSE_GROUPS))
    fps: float = Field(30.0, gt=0, description="the common frame rate of features and model")
    label_fps: dict[str, float] = Field(
        default_factory=lambda: {"AdaptableSnail": 30.0},
        description="labs whose labels live on another frame grid than their tracking",
    )
    window: int = Field(256, ge=8, description="frames per training / inference window")
    stride: int = Field(128, ge=1, description="training window stride")
    predict_stride: int = Field(128, ge=1, description="inference window stride")
    val_fraction: float = Field(0.2, gt=0, lt=1)
    n_folds: int | None = Field(
        None, ge=2, description="k folds grouped by video, stratified by lab (val = `fold`)"
    )
    fold: int = Field(0, ge=0)
    split_seed: int = 0
    loss: LossConfig = Field(default_factory=LossConfig)
    postprocess: PostprocessConfig = Field(default_factory=PostprocessConfig)
