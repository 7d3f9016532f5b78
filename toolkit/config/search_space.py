"""The recipe's `hpo:` block: the search space (dotted recipe keys -> ranges) and the search's
defaults (trials, metric, direction, pruning, storage), each overridable on the command line."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_serializer, model_validator

from toolkit.config.durations import Duration

KINDS = ("uniform", "log_uniform", "int", "log_int", "choice")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class SearchRange(_Strict):
    """One searched key: exactly one of `uniform: [lo, hi]`, `log_uniform: [lo, hi]`,
    `int: [lo, hi]`, `log_int: [lo, hi]` or `choice: [a, b, ...]`; `step` for int/uniform."""

    uniform: tuple[float, float] | None = None
    log_uniform: tuple[float, float] | None = None
    int_: tuple[int, int] | None = Field(None, alias="int")
    log_int: tuple[int, int] | None = None
    choice: list[Any] | None = None
    step: float | None = Field(None, gt=0)

    @model_serializer(mode="wrap")
    def _as_written(self, handler) -> dict[str, Any]:
        # Saved recipes read back: the kind under its own name (`int`), no unset kinds.
        data = handler(self)
        if "int_" in data:
            data["int"] = data.pop("int_")
        return {k: v for k, v in data.items() if v is not None}

    @model_validator(mode="after")
    def _one_non_empty_range(self) -> SearchRange:
        given = [k for k in KINDS if self.bounds(k) is not None]
        if len(given) != 1:
            raise ValueError(f"give exactly one of {', '.join(KINDS)} (got {len(given)})")
        kind = given[0]
        value = self.bounds(kind)
        if kind == "choice":
            if not value:
                raise ValueError("empty range: `choice` lists no value")
            return self
        lo, hi = value
        if not lo < hi:
            raise ValueError(f"empty range {kind}: [{lo}, {hi}]: low must be below high")
        if kind.startswith("log") and lo <= 0:
            raise ValueError(f"{kind}: [{lo}, {hi}]: a log range must start above 0")
        if self.step is not None and kind.startswith("log"):
            raise ValueError(f"{kind}: `step` does not apply to log ranges")
        return self

    def bounds(self, kind: str) -> Any:
        return self.int_ if kind == "int" else getattr(self, kind)

    @property
    def kind(self) -> str:
        return next(k for k in KINDS if self.bounds(k) is not None)

    def values(self) -> list[Any]:
        """Representative values (the ends, or every choice): used to check keys up front."""
        return list(self.bounds(self.kind))


class HpoConfig(_Strict):
    """`toolkit hpo` settings; the CLI's flags override them."""

    space: dict[str, SearchRange] = Field(
        min_length=1, description="dotted recipe keys (as --set) -> the range searched"
    )
    trials: int = Field(20, ge=1, description="finished (complete or pruned) trials to reach")
    metric: str | None = Field(None, description="logged metric to optimise (default val_score)")
    direction: Literal["minimize", "maximize"] | None = Field(
        None, description="default: the competition metric's direction"
    )
    epochs: int | None = Field(None, ge=1, description="train.epochs of each trial")
    timeout: Duration | None = None
    pruning: bool = False
    pruning_startup_trials: int = Field(3, ge=0, description="trials before any is pruned")
    pruning_warmup_epochs: int = Field(1, ge=0, description="epochs before a trial is pruned")
    study: str | None = Field(None, description="study name (default: the recipe's, -smoke)")
    storage: str | None = Field(None, description="Optuna storage URL (default: SQLite file)")
    heartbeat_interval: int = Field(30, ge=1, description="seconds between trial heartbeats")
    grace_period: int = Field(
        90, ge=2, description="seconds without a heartbeat before a trial counts as killed"
    )
    max_retry: int = Field(2, ge=0, description="retries of a killed trial, same parameters")
