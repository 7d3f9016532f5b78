"""The image tested from the outside, the way competitions run code (opt-in: `pytest -m docker`).

Needs a running Docker engine. Uses the image $TOOLKIT_DOCKER_IMAGE (default toolkit:test);
if it does not exist, builds it with docker/build-local.sh (about 10 minutes on 2 cores, most of
it copying the ~6 GB CUDA venv between stages). Then, each as its own test:

- `recipes list` with --network none,
- eeg2025/c1-baseline --smoke end to end as uid 1234 (not in the image's /etc/passwd), with a
  work folder mounted at /work, --network none,
- `verify` of that bundle with --network none --read-only --tmpfs /tmp, bundle mounted :ro,
- bad input: a read-only submissions folder, a folder the uid may not write, a bundle that is
  not mounted, TOOLKIT_DEVICE=cuda without a GPU: one line and a non-zero exit each,
- the slim inference image ($TOOLKIT_INFERENCE_IMAGE, default toolkit-inference:test, built with
  `DOCKERFILE=docker/inference.Dockerfile docker/build-local.sh` if missing; about 1 minute):
  an arc bundle made by the main image (`arc/seed-7h --smoke`), its `predict.py CHALLENGES.json
  OUT/submission.json` run offline and read-only with numpy + onnxruntime only. Skipped if the
  image has no arc recipe.

Measured on the 2-core development machine with both images built: about 2 minutes in all.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.docker

ROOT = Path(__file__).resolve().parent.parent
IMAGE = os.environ.get("TOOLKIT_DOCKER_IMAGE", "toolkit:test")
INFERENCE_IMAGE = os.environ.get("TOOLKIT_INFERENCE_IMAGE", "toolkit-inference:test")
RECIPE = "eeg2025/c1-baseline"
ARC_RECIPE = "arc/seed-7h"
ARC_TASKS = ROOT / "tests" / "data" / "arc" / "evaluation"
UID = "1234"


def docker(*args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def image() -> str:
    """The image under test: reused if present, else built with docker/build-local.sh."""
    return built(IMAGE, "Dockerfile")


@pytest.fixture(scope="module")
def inference_image() -> str:
    return built(INFERENCE_IMAGE, "docker/inference.Dockerfile")


def built(tag: str, dockerfile: str) -> str:
    """`tag`, built with docker/build-local.sh if it is not there yet."""
    if shutil.which("docker") is None or docker("info", timeout=60).returncode != 0:
        pytest.fail("no Docker engine: apt-get install docker.io, then `dockerd &` (as root)")
    if docker("image", "inspect", tag).returncode != 0:
        build = subprocess.run(
            [str(ROOT / "docker" / "build-local.sh"), tag],
            capture_output=True, text=True, timeout=3600,
            env={**os.environ, "DOCKERFILE": dockerfile},
        )  # fmt: skip
        assert build.returncode == 0, build.stderr[-4000:]
    return tag


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The folder mounted at /work; writable by the container's (other) uid."""
    path = tmp_path_factory.mktemp("docker-work")
    path.chmod(0o777)
    return path


@pytest.fixture(scope="module")
def smoke_run(image: str, work: Path) -> subprocess.CompletedProcess[str]:
    return docker(
        "run", "--rm", "--network", "none", "--user", f"{UID}:{UID}",
        "-v", f"{work}:/work", image, "run", RECIPE, "--smoke",
    )  # fmt: skip


def printed_path(output: str, pattern: str) -> str:
    """A path from the run's own output (the files are the container uid's and owner-only,
    so a non-root test process may not be able to look inside)."""
    found = re.findall(pattern, output, flags=re.MULTILINE)
    assert found, f"no line matching {pattern!r} in:\n{output[-3000:]}"
    return found[-1]


@pytest.fixture(scope="module")
def bundle(smoke_run, work: Path) -> Path:
    assert smoke_run.returncode == 0, smoke_run.stdout[-3000:] + smoke_run.stderr[-3000:]
    rel = printed_path(smoke_run.stdout, r"^bundle +/work/(submissions/\S+)/submission\.zip$")
    return work / rel


@pytest.fixture(scope="module")
def run_dir(smoke_run, work: Path) -> Path:
    # `trained /work/runs/NAME in N epochs: val ...` (or `ensemble /work/runs/NAME of N ...`)
    return work / printed_path(smoke_run.stdout, r"^(?:trained|ensemble) /work/(runs/[^\s:]+)")


def one_line_error(result: subprocess.CompletedProcess[str], words: str) -> None:
    out = result.stdout + result.stderr
    assert result.returncode != 0, out
    assert words.lower() in out.lower(), out[-2000:]
    assert "Traceback" not in out, out[-2000:]


def test_recipes_list_offline(image):
    result = docker("run", "--rm", "--network", "none", image, "recipes", "list")
    assert result.returncode == 0, result.stderr
    assert RECIPE in result.stdout


def test_image_labels_and_user(image):
    result = docker("image", "inspect", "--format", "{{json .Config}}", image)
    assert result.returncode == 0
    config = result.stdout
    for label in ("version", "revision", "created"):
        assert f"org.opencontainers.image.{label}" in config
    assert '"Entrypoint":["toolkit"]' in config
    user = docker("image", "inspect", "--format", "{{.Config.User}}", image).stdout.strip()
    assert user and not user.startswith(("0", "root"))


def test_smoke_run_as_another_uid(bundle: Path, run_dir: Path, smoke_run):
    assert re.search(r"^verify +passed", smoke_run.stdout, flags=re.MULTILINE), smoke_run.stdout
    for path in (bundle, run_dir):
        assert path.stat().st_uid == int(UID), path


def test_verify_offline_read_only(image, bundle: Path, work: Path):
    rel = bundle.relative_to(work / "submissions")
    result = docker(
        "run", "--rm", "--network", "none", "--read-only", "--tmpfs", "/tmp",
        "--user", f"{UID}:{UID}",  # the toolkit writes owner-only files (0600/0700)
        "-v", f"{work / 'submissions'}:/work/submissions:ro",
        image, "verify", f"/work/submissions/{rel}",
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "verified" in result.stdout


def test_read_only_submissions_folder(image, run_dir: Path, work: Path):
    result = docker(
        "run", "--rm", "--network", "none", "--read-only", "--tmpfs", "/tmp",
        "--user", f"{UID}:{UID}",
        "-v", f"{work / 'runs'}:/work/runs:ro",
        "-v", f"{work / 'submissions'}:/work/submissions:ro",
        image, "bundle", f"/work/{run_dir.relative_to(work)}",
    )  # fmt: skip
    one_line_error(result, "read-only file system")
    assert "/work/submissions" in result.stderr


def test_folder_the_uid_may_not_write(image, work: Path):
    locked = work / "locked"
    locked.mkdir(exist_ok=True)
    locked.chmod(0o755)  # owned by the test's user, not by uid 1235
    result = docker(
        "run", "--rm", "--network", "none", "--user", "1235:1235",
        "-v", f"{locked}:/work/locked", image,
        "data", "synth", "eeg2025", "/work/locked/bids", "--subjects", "2",
    )  # fmt: skip
    one_line_error(result, "permission denied for uid 1235")


def test_bundle_not_mounted(image):
    result = docker(
        "run", "--rm", "--network", "none", "--read-only", "--tmpfs", "/tmp",
        image, "verify", "/work/submissions/eeg2025/not-mounted",
    )  # fmt: skip
    one_line_error(result, "no such bundle folder")


def test_cuda_requested_without_gpu(image):
    result = docker(
        "run", "--rm", "--network", "none", "-e", "TOOLKIT_DEVICE=cuda",
        image, "train", RECIPE, "--smoke", "--set", "train.epochs=1",
    )  # fmt: skip
    one_line_error(result, "no CUDA device is visible")


@pytest.fixture(scope="module")
def arc_bundle(image: str, work: Path) -> Path:
    """An arc bundle (predict.py, model.onnx, decoder.onnx, model.json) made in the main image."""
    listed = docker("run", "--rm", "--network", "none", image, "recipes", "list")
    if ARC_RECIPE not in listed.stdout:
        pytest.skip(f"{image} has no {ARC_RECIPE} recipe")
    result = docker(
        "run", "--rm", "--network", "none", "--user", f"{UID}:{UID}",
        "-v", f"{work}:/work", image, "run", ARC_RECIPE, "--smoke",
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return work / printed_path(result.stdout, r"^bundle +/work/(submissions/\S+)/submission\.zip$")


def test_inference_image_runs_a_standalone_predictor_offline(inference_image, arc_bundle, work):
    """The competition's contract: `python predict.py CHALLENGES.json OUT/submission.json`
    with numpy + onnxruntime only, no network, read-only root, the bundle mounted read-only."""
    tasks = sorted(ARC_TASKS.glob("*.json"))[:3]
    assert tasks, ARC_TASKS
    challenges = {}
    for path in tasks:
        task = json.loads(path.read_text())
        task["test"] = [{"input": pair["input"]} for pair in task["test"]]
        challenges[path.stem] = task
    io = work / "io"
    io.mkdir(exist_ok=True)
    io.chmod(0o777)
    (io / "challenges.json").write_text(json.dumps(challenges))
    (io / "challenges.json").chmod(0o644)
    base = ["run", "--rm", "--network", "none", "--read-only", "--tmpfs", "/tmp",
            "--user", f"{UID}:{UID}", "-v", f"{io}:/io"]  # fmt: skip
    result = docker(
        *base, "-v", f"{arc_bundle}:/bundle:ro", inference_image,
        "/io/challenges.json", "/io/out/submission.json", "--task-seconds", "20",
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "wrote /io/out/submission.json" in result.stdout
    # The file is the container uid's (0600): read it back through a container of that uid.
    shown = docker(*base, "--entrypoint", "cat", inference_image, "/io/out/submission.json")
    submission = json.loads(shown.stdout)
    assert set(submission) == set(challenges)
    for task_id, task in challenges.items():
        assert len(submission[task_id]) == len(task["test"])
        for entry in submission[task_id]:
            assert set(entry) == {"attempt_1", "attempt_2"}
    # No torch and no toolkit in the slim image.
    probe = docker(
        "run", "--rm", "--network", "none", "--entrypoint", "python3", inference_image, "-c",
        "import importlib.util as u; print([m for m in ('torch', 'toolkit') if u.find_spec(m)])",
    )  # fmt: skip
    assert probe.stdout.strip() == "[]", probe.stdout + probe.stderr


def test_inference_image_without_a_bundle(inference_image):
    result = docker(
        "run", "--rm", "--network", "none", "--read-only", "--tmpfs", "/tmp",
        inference_image, "/io/challenges.json", "/io/submission.json",
    )  # fmt: skip
    one_line_error(result, "no bundle mounted")
    assert result.returncode == 2
