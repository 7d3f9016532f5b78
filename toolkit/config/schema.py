"""The recipe schema shared by every competition; `data` is validated by the competition's model."""

from __future__ import annotations

from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from toolkit.config.durations import Duration
from toolkit.config.search_space import HpoConfig


class StrictModel(BaseModel):
    """A model that rejects unknown keys (typos in recipes are errors, not silent defaults)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class StageMeta(StrictModel):
    """Where the recipe sits in the competition's submission plan."""

    number: int | None = None
    description: str = ""
    expected_score: float | None = None


class ModelConfig(StrictModel):
    """A model chosen by name, with keyword arguments passed to its constructor."""

    name: str
    kwargs: dict[str, Any] = Field(default_factory=dict)


class TrainConfig(StrictModel):
    """Optimisation, stopping and checkpointing."""

    epochs: int = Field(10, ge=1)
    batch_size: int = Field(32, ge=1)
    lr: float = Field(1e-3, gt=0)
    weight_decay: float = Field(0.0, ge=0)
    optimizer: Literal["adamw", "adam", "sgd"] = "adamw"
    scheduler: Literal["none", "cosine"] = "cosine"
    precision: Literal["32-true", "16-mixed", "bf16-mixed", "64-true"] = "32-true"
    gradient_clip_val: float | None = Field(None, gt=0)
    accumulate_grad_batches: int = Field(1, ge=1)
    early_stopping_patience: int | None = Field(None, ge=1)
    val_every_n_epochs: int = Field(1, ge=1)
    eval_every_n_epochs: int = Field(
        1, ge=1, description="how often competitions with an `evaluate` hook score the model"
    )
    time_budget: Duration | None = None
    checkpoint_every: Duration | None = None
    checkpoint_every_n_epochs: int | None = Field(
        None, ge=1, description="also keep checkpoints/epoch-N.ckpt every N epochs"
    )
    seed: int | None = None
    deterministic: bool = True
    devices: int | None = Field(
        None, ge=1, description="devices per node (DDP when > 1; default: one, from the device "
        "setting)",
    )
    num_nodes: int = Field(1, ge=1, description="machines (DDP across nodes, e.g. under SLURM)")
    strategy: Literal["auto", "ddp", "ddp_spawn", "ddp_find_unused_parameters_true"] = "auto"
    loggers: list[Literal["csv", "tensorboard"]] = Field(
        default_factory=lambda: ["csv"],
        description="history.csv/json always; `tensorboard` adds event files under tensorboard/",
    )


class ExportConfig(StrictModel):
    """Which formats to write and how close they must stay to the eager model."""

    formats: list[Literal["onnx", "torchscript", "state_dict"]] = Field(
        default_factory=lambda: ["onnx", "torchscript"],
        description="state_dict: model.pth (weights) + model.json + a plain-torch load.py",
    )
    reference_batch: int = Field(8, ge=1)
    atol: float = Field(1e-4, gt=0)
    rtol: float = Field(1e-3, ge=0)


class BundleConfig(StrictModel):
    """Where the bundle lands (submissions/<competition>/<name>/) and what else goes in it."""

    name: str | None = None
    partners: list[str] = Field(
        default_factory=list,
        description="recipes (or run folders) bundled into the same submission, e.g. the "
        "challenge 2 recipe of the same stage: their newest exported run, trained if none",
    )


class EnsembleMember(StrictModel):
    """One member: this recipe with `set` overrides (dotted keys, as `--set`)."""

    name: str = Field(pattern=r"^[\w.-]+$")
    set: dict[str, Any] = Field(default_factory=dict)


class EnsembleConfig(StrictModel):
    """Train (or reuse) each member, then export ONE module that averages their outputs."""

    members: list[EnsembleMember] = Field(min_length=2)
    reuse: bool = Field(True, description="reuse a finished run of an identical member recipe")


DataT = TypeVar("DataT", bound=BaseModel)


class Recipe(StrictModel, Generic[DataT]):
    """One submission-stage strategy of one competition."""

    competition: str
    name: str = ""
    description: str = ""
    stage: StageMeta = Field(default_factory=StageMeta)
    data: DataT
    model: ModelConfig
    train: TrainConfig = Field(default_factory=TrainConfig)
    export: ExportConfig = Field(default_factory=ExportConfig)
    bundle: BundleConfig = Field(default_factory=BundleConfig)
    ensemble: EnsembleConfig | None = None
    hpo: HpoConfig | None = Field(None, description="search space and settings of `toolkit hpo`")
    smoke: dict[str, Any] = Field(default_factory=dict)
    smoke_applied: bool = False

    @property
    def slug(self) -> str:
        """The recipe's name as a single path component (eeg2025/c1-baseline -> c1-baseline)."""
        return self.name.split("/")[-1] if self.name else "recipe"
