"""The `data:` section of arc recipes."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from toolkit.config.schema import StrictModel


class SyntheticConfig(StrictModel):
    """Size of the synthetic task folders made when a source is `synthetic`."""

    train_tasks: int = Field(24, ge=2)
    eval_tasks: int = Field(6, ge=1)
    max_side: int = Field(5, ge=2, le=30)
    seed: int = 0


class AugmentConfig(StrictModel):
    """Training augmentation, drawn afresh for every sequence."""

    dihedral: bool = True
    colours: bool = Field(True, description="permute colours 1-9; 0 stays 0")
    shuffle_demos: bool = True


class DecodeConfig(StrictModel):
    """How candidates are decoded and ranked (evaluation during training, and predict.py)."""

    views: int = Field(8, ge=1, description="augmented views decoded per test input")
    rank: Literal["logprob", "votes"] = "logprob"
    task_seconds: float = Field(170.0, gt=0, description="time limit per task")
    max_tasks: int | None = Field(
        None, ge=1, description="evaluate on the first N evaluation tasks only (None: all)"
    )


class ARCData(StrictModel):
    """Which tasks train the model and which are scored during training."""

    train_sources: list[str] = Field(
        default_factory=lambda: ["synthetic"],
        description="task folders or *_challenges.json files (relative to TOOLKIT_DATA_DIR), "
        "or `synthetic`; every pair with a known output is a training target every epoch",
    )
    eval_source: str = Field("synthetic", description="evaluation tasks, with test outputs")
    train_on_eval_demos: bool = Field(
        False, description="test-time training: also train on the evaluation tasks' demos"
    )
    max_len: int = Field(2048, ge=64, description="longest token sequence (demos are dropped)")
    loss_on_demo_outputs: bool = True
    augment: AugmentConfig = Field(default_factory=AugmentConfig)
    evaluation: DecodeConfig = Field(
        default_factory=lambda: DecodeConfig(views=2, task_seconds=20.0)
    )
    predict: DecodeConfig = Field(default_factory=DecodeConfig)
    synthetic: SyntheticConfig = Field(default_factory=SyntheticConfig)
