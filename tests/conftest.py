"""Shared fixtures: isolated toolkit folders, the real CLI, and one smoke run per recipe."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from toolkit.cli.main import app

DATA = Path(__file__).parent / "data"
REAL_METADATA = DATA / "hbn-r1-metadata"

if os.environ.get("PYTEST_XDIST_WORKER"):
    # Parallel workers (pytest -n): one compute thread each, in this process and the toolkit
    # processes the tests start, so the workers share the cores instead of fighting over them.
    import torch

    os.environ["OMP_NUM_THREADS"] = "1"
    torch.set_num_threads(1)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests that use the memoised smoke runs go to one worker (`--dist loadgroup`), so each
    recipe is smoke-run once per session, not once per worker."""
    for item in items:
        if "smoke_runs" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.xdist_group("smoke-runs"))


class Toolkit:
    """Runs `toolkit ...` through Typer's runner with TOOLKIT_* folders under one root."""

    def __init__(self, root: Path, cache: Path):
        self.root = root
        self.env = {
            "TOOLKIT_DATA_DIR": str(root / "data"),
            "TOOLKIT_CACHE_DIR": str(cache),
            "TOOLKIT_RUNS_DIR": str(root / "runs"),
            "TOOLKIT_SUBMISSIONS_DIR": str(root / "submissions"),
            "TOOLKIT_DEVICE": "cpu",
            "TOOLKIT_SEED": "7",
        }
        self.runner = CliRunner()

    def __call__(self, *args: str) -> Result:
        old = Path.cwd()
        os.chdir(self.root)
        try:
            return self.runner.invoke(app, list(args), env=self.env, catch_exceptions=False)
        finally:
            os.chdir(old)


@pytest.fixture(scope="session")
def shared_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One cache for the session, so synthetic data is written once."""
    return tmp_path_factory.mktemp("cache")


@pytest.fixture
def toolkit(tmp_path: Path, shared_cache: Path) -> Toolkit:
    return Toolkit(tmp_path, shared_cache)


@pytest.fixture(scope="session")
def smoke_runs(tmp_path_factory: pytest.TempPathFactory, shared_cache: Path):
    """`toolkit run NAME --smoke` once per recipe, memoised: name -> (result, root).

    All smoke runs share one root, as a user's runs do: a recipe's bundle partners (the other
    challenge of the same stage) are trained once and then reused."""
    done: dict[str, tuple[Result, Path]] = {}
    root = tmp_path_factory.mktemp("smoke")

    def run(name: str) -> tuple[Result, Path]:
        if name not in done:
            done[name] = (Toolkit(root, shared_cache)("run", name, "--smoke"), root)
        return done[name]

    return run


def only_run(root: Path, recipe: str) -> Path:
    """The single run folder of `recipe` under `root` (fails if there are several)."""
    (run,) = (root / "runs" / recipe).iterdir()
    return run


def bundle_path(output: str) -> Path:
    """The bundle folder `toolkit run` printed at the end."""
    line = next(ln for ln in output.splitlines() if ln.startswith("bundle  "))
    return Path(line.split(None, 1)[1].strip()).parent


@pytest.fixture(scope="session")
def c1_bundle(smoke_runs) -> Path:
    """The verified smoke bundle of eeg2025/c1-baseline."""
    result, _ = smoke_runs("eeg2025/c1-baseline")
    assert result.exit_code == 0, result.output
    return bundle_path(result.output)
