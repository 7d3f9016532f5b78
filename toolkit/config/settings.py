"""Toolkit settings: defaults < .env < TOOLKIT_* environment < CLI flags."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class S3Settings(BaseModel):
    """Access to S3 and S3-compatible servers (TOOLKIT_S3__ANON, TOOLKIT_S3__ENDPOINT_URL, ...).

    A request that meets a transient failure (5xx, throttling, a dropped connection) is tried at
    most `max_attempts` times with exponential backoff; the timeouts (seconds) bound how long an
    unreachable endpoint can stall a run."""

    anon: bool = True
    endpoint_url: str | None = None
    region: str | None = "us-east-2"  # HBN-EEG's public buckets
    connect_timeout: float = Field(3.0, gt=0)
    read_timeout: float = Field(20.0, gt=0)
    max_attempts: int = Field(4, ge=1)


class Settings(BaseSettings):
    """Paths, device and S3 access. Relative paths resolve against the current directory."""

    model_config = SettingsConfigDict(
        env_prefix="TOOLKIT_",
        env_nested_delimiter="__",
        env_file=".env",
        extra="ignore",
    )

    data_dir: Path = Path("data")
    cache_dir: Path = Path("cache")
    runs_dir: Path = Path("runs")
    submissions_dir: Path = Path("submissions")
    recipes_dir: Path | None = None
    seed: int = 42
    device: str = "auto"
    num_workers: int = 0
    s3: S3Settings = S3Settings()

    def resolved(self) -> Settings:
        """A copy with every path made absolute (so later chdirs cannot move outputs)."""
        updates = {
            name: getattr(self, name).expanduser().resolve()
            for name in ("data_dir", "cache_dir", "runs_dir", "submissions_dir")
        }
        if self.recipes_dir is not None:
            updates["recipes_dir"] = self.recipes_dir.expanduser().resolve()
        return self.model_copy(update=updates)


def get_settings(**overrides: object) -> Settings:
    """Load settings from the environment and .env, apply CLI overrides, resolve paths."""
    clean = {k: v for k, v in overrides.items() if v is not None}
    return Settings(**clean).resolved()
