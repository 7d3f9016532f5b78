"""`toolkit slurm submit` on a real single-node SLURM cluster started by these tests
(tests/slurm_cluster.py: Debian's slurm-wlm + munge on 127.0.0.1, state in a temporary folder):

- a smoke recipe runs as a job and leaves a bundle that verifies, in the run folder it named;
- the same job requeued mid-training twice, once by `scontrol requeue` (SIGTERM, as a
  preemption) and once by the time-limit warning (SIGUSR1: the run saves and requeues itself),
  ends at the same step, epoch count and score as the uninterrupted one;
- a 2-member ensemble runs as an array (one task per member) and a dependent job bundles it;
- a 2-task `srun` DDP job on the CPU (gloo) trains and bundles;
- a partition the cluster does not have is sbatch's message in one line, nothing left behind.

Skipped, with the package to install, where SLURM's programs are absent.
"""

from __future__ import annotations

import csv
import json
import os
import re
import time
from pathlib import Path

import pytest

from tests.conftest import Toolkit
from tests.slurm_cluster import Cluster, missing_binaries, start_cluster

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(missing_binaries() is not None, reason=missing_binaries() or ""),
]
RECIPE = "eeg2025/c1-baseline"
ENSEMBLE = "eeg2025/c1-stage3-per-release-ensemble"
EPOCHS = ("--set", "train.epochs=3")  # 9 optimiser steps per epoch in the smoke block
FINAL = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "OUT_OF_MEMORY", "NODE_FAIL",
         "BOOT_FAIL", "DEADLINE", "PREEMPTED"}  # fmt: skip
WAIT = 900.0  # seconds a job may take on a busy 2-core machine


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory):
    if os.geteuid() != 0:
        pytest.skip("the test cluster runs slurmctld/slurmd as root (SlurmUser=root)")
    running = start_cluster(tmp_path_factory.mktemp("slurm"))
    old = os.environ.get("SLURM_CONF")
    os.environ["SLURM_CONF"] = str(running.conf)  # sbatch/squeue, and the jobs' own scontrol
    yield running
    if old is None:
        os.environ.pop("SLURM_CONF", None)
    else:
        os.environ["SLURM_CONF"] = old
    running.stop()


def _toolkit(root: Path) -> Toolkit:
    root.mkdir(parents=True, exist_ok=True)
    return Toolkit(root, root / "cache")  # own cache: jobs running at once share nothing


def _submit(tk: Toolkit, *args: str) -> list[str]:
    result = tk("slurm", "submit", *args)
    assert result.exit_code == 0, result.output
    return re.findall(r"^submitted job (\d+)", result.output, flags=re.M)


def _states(cluster: Cluster, job_id: str) -> list[str]:
    out = cluster.run("squeue", "-h", "-r", "-t", "all", "-j", job_id, "-o", "%T", check=False)
    return out.stdout.split()


def _wait(cluster: Cluster, job_id: str, until=None, timeout: float = WAIT) -> list[str]:
    """Poll until every task of the job is in a final state (or `until()` holds)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        states = _states(cluster, job_id)
        if until is not None and until():
            return states
        if until is None and states and all(s in FINAL for s in states):
            return states
        time.sleep(1)
    raise AssertionError(f"job {job_id}: still {_states(cluster, job_id)} after {timeout:.0f} s")


def _logs(folder: Path) -> str:
    return "\n".join(p.read_text(errors="replace") for p in sorted(folder.glob("slurm-*.log")))


def _history_rows(run: Path) -> int:
    path = run / "history.csv"
    return len(list(csv.DictReader(path.open()))) if path.is_file() else 0


def _only(folder: Path) -> Path:
    (found,) = [p for p in folder.iterdir() if p.is_dir()]
    return found


# The requeue test comes first: it must act while its job runs, and waits for the plain one.
@pytest.fixture(scope="module")
def jobs(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory):
    """The same smoke job twice, at once (one CPU each): `plain` runs undisturbed, `stopped`
    is requeued by the requeue test."""
    root = tmp_path_factory.mktemp("slurm-jobs")
    plain, stopped = _toolkit(root / "plain"), _toolkit(root / "stopped")
    return {
        "plain": (plain, _submit(plain, RECIPE, "--smoke", *EPOCHS)[0]),
        "stopped": (stopped, _submit(stopped, RECIPE, "--smoke", *EPOCHS)[0]),
    }


def _release(cluster: Cluster, job_id: str) -> None:
    """A requeued job is held ~2 minutes (BeginTime); start it now."""
    _wait(cluster, job_id, until=lambda: _states(cluster, job_id) == ["PENDING"], timeout=120)
    cluster.run("scontrol", "update", f"JobId={job_id}", "StartTime=now")


def test_requeued_job_resumes_exactly(cluster: Cluster, jobs):
    tk, job_id = jobs["stopped"]
    base = tk.root / "runs" / RECIPE
    run = _only(base)
    # 1. after epoch 0 (last.ckpt written), `scontrol requeue`: SIGTERM, as a preemption does
    _wait(cluster, job_id, until=lambda: _history_rows(run) >= 1)
    cluster.run("scontrol", "requeue", job_id)
    _release(cluster, job_id)
    # 2. in the requeued job, after one more epoch: the time-limit warning (SIGUSR1), on which
    #    the run saves and requeues its own job
    _wait(cluster, job_id, until=lambda: _history_rows(run) >= 2)
    cluster.run("scancel", "--signal=USR1", job_id)
    requeued = f'"requeued": "{job_id}"'  # the run's own `scontrol requeue` worked
    _wait(cluster, job_id, until=lambda: requeued in (run / "status.json").read_text(), timeout=120)
    _release(cluster, job_id)
    assert _wait(cluster, job_id) == ["COMPLETED"]
    log = _logs(run)
    assert f"job {job_id} start 2" in log and log.count("resuming") == 2, log[-4000:]
    assert "verify  passed" in log
    # the same end as the uninterrupted job: steps, epochs, score
    plain, plain_id = jobs["plain"]
    assert _wait(cluster, plain_id) == ["COMPLETED"]
    reference = json.loads((_only(plain.root / "runs" / RECIPE) / "metrics.json").read_text())
    metrics = json.loads((run / "metrics.json").read_text())
    for key in ("global_step", "epochs_completed", "val_nrmse"):
        assert metrics[key] == pytest.approx(reference[key], abs=1e-6), key


def test_smoke_job_trains_bundles_and_verifies(cluster: Cluster, jobs):
    tk, job_id = jobs["plain"]
    assert _wait(cluster, job_id) == ["COMPLETED"]
    run = _only(tk.root / "runs" / RECIPE)
    log = _logs(run)
    assert (run / "slurm.sbatch").is_file() and f"job {job_id} start 0" in log
    assert "verify  passed" in log, log[-3000:]
    metrics = json.loads((run / "metrics.json").read_text())
    assert (metrics["epochs_completed"], metrics["global_step"]) == (3, 27)
    zips = list((tk.root / "submissions").rglob("submission.zip"))
    assert len(zips) == 1 and zips[0].stat().st_size > 0
    status = tk("slurm", "status", job_id)
    assert status.exit_code == 0, status.output
    assert re.search(rf"^\s*{job_id}\s+{re.escape(RECIPE)}\s+COMPLETED", status.output, re.M)
    assert "exported" in status.output or "trained" in status.output


def test_ensemble_members_run_as_an_array(cluster: Cluster, tmp_path: Path):
    tk = _toolkit(tmp_path)
    members_job, bundle_job = _submit(tk, ENSEMBLE, "--smoke", "--set", "train.epochs=1",
                                      "--set", "bundle.partners=[]")  # fmt: skip
    assert _wait(cluster, members_job) == ["COMPLETED", "COMPLETED"]
    assert _wait(cluster, bundle_job) == ["COMPLETED"]
    base = tk.root / "runs" / ENSEMBLE
    for i, name in enumerate(("r1", "r2")):
        member = _only(base / "members" / name)
        metrics = json.loads((member / "metrics.json").read_text())
        assert metrics["epochs_completed"] == 1
        assert (member / f"slurm-{members_job}_{i}.log").is_file()
    log = _logs(_only_ensemble(base))
    assert log.count("reusing") == 2 and "verify  passed" in log, log[-3000:]
    status = tk("slurm", "status")
    assert re.search(rf"^\s*{members_job}_1\s+ensemble member r2\s+COMPLETED", status.output, re.M)


def _only_ensemble(base: Path) -> Path:
    """The ensemble's folder holding the scripts (its bundling job's log is there)."""
    (found,) = [p for p in base.iterdir() if (p / "members.sbatch").is_file()]
    return found


def test_two_task_ddp_job(cluster: Cluster, tmp_path: Path):
    tk = _toolkit(tmp_path)
    (job_id,) = _submit(tk, RECIPE, "--smoke", "--set", "train.epochs=1",
                        "--set", "train.devices=2")  # fmt: skip
    run = _only(tk.root / "runs" / RECIPE)
    assert "#SBATCH --ntasks-per-node=2\n" in (run / "slurm.sbatch").read_text()
    assert _wait(cluster, job_id) == ["COMPLETED"]
    log = _logs(run)
    assert "verify  passed" in log, log[-3000:]
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["processes"] == 2 and metrics["epochs_completed"] == 1
    assert metrics["global_step"] in (4, 5)  # the 9 batches of an epoch split over 2 ranks


def test_rejected_partition_is_one_line(cluster: Cluster, tmp_path: Path):
    tk = _toolkit(tmp_path)
    result = tk("slurm", "submit", RECIPE, "--smoke", "--partition", "nowhere")
    assert result.exit_code == 2
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and "invalid partition" in lines[0].lower(), result.output
    assert not any((tk.root / "runs" / RECIPE).iterdir())  # the run folder went again
