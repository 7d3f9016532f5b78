"""Distributed search: worker processes sharing one study on a real PostgreSQL server (started
here, tests/postgres_server.py), the trial cap across workers, a worker killed mid-trial whose
trial is failed by its stale heartbeat and retried, SQLite's multi-worker warning, and the
one-line errors of a server that cannot be reached or refuses the password."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import optuna
import pytest

from tests.postgres_server import postgres_server
from toolkit.hpo.search import SearchPlan
from toolkit.hpo.workers import worker_args

RECIPE = "eeg2025/c1-s4-hpo"
FAST_BEATS = ["--set", "hpo.heartbeat_interval=1", "--set", "hpo.grace_period=3"]


@pytest.fixture(scope="module")
def postgres():
    yield from postgres_server()


@pytest.fixture
def pg_url(postgres) -> str:
    return postgres.create_database(f"hpo_{uuid.uuid4().hex[:8]}")


def error_line(result) -> str:
    lines = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert result.exit_code == 2 and len(lines) == 1, result.output
    return lines[0]


def test_worker_command_spells_out_the_plan(tmp_path):
    plan = SearchPlan(
        recipe=RECIPE, recipe_name=RECIPE, recipe_file="x.yaml", smoke=True, sets=["a.b=1"],
        study="s", storage="postgresql+psycopg://u@h/db", folder=tmp_path, trials=5,
        metric="val_score", direction="minimize", pruning=False, epochs=1, timeout=90.0,
        hpo=None,  # type: ignore[arg-type]
    )  # fmt: skip
    args = worker_args(plan, 3)
    assert args[:3] == ["hpo", "search", RECIPE]

    def value(flag: str) -> str:
        return args[args.index(flag) + 1]

    assert value("--study") == "s" and value("--trials") == "5" and value("--epochs") == "1"
    assert value("--worker") == "3" and value("--timeout") == "90s" and value("--set") == "a.b=1"
    assert value("--storage") == plan.storage and "--no-pruning" in args and args[-1] == "--smoke"


def test_unreachable_server_is_one_line_naming_the_host(toolkit):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nothing listens there once closed
    url = f"postgresql+psycopg://toolkit:pw@127.0.0.1:{port}/hpo"
    line = error_line(toolkit("hpo", RECIPE, "--smoke", "--storage", url, "--workers", "2"))
    assert f"cannot connect to the database server at 127.0.0.1:{port}" in line
    assert "Connection refused" in line and "pw@" not in line and "toolkit:***@" in line
    assert not list((toolkit.root / "runs").rglob("worker-*.log"))


def test_a_server_that_never_answers_times_out_in_bounded_time(toolkit):
    with socket.socket() as sock:  # accepts TCP connections, never speaks PostgreSQL
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        url = f"postgresql+psycopg://toolkit@127.0.0.1:{sock.getsockname()[1]}/hpo"
        start = time.monotonic()
        line = error_line(
            toolkit("hpo", RECIPE, "--smoke", "--storage", url + "?connect_timeout=1")
        )
        assert time.monotonic() - start < 15
    assert "cannot connect to the database server at 127.0.0.1" in line and "timeout" in line


def test_a_wrong_password_is_one_line(toolkit, postgres, pg_url):
    url = pg_url.replace(":s3cret@", ":wrong@")
    line = error_line(toolkit("hpo", RECIPE, "--smoke", "--storage", url))
    assert f"at 127.0.0.1:{postgres.port}" in line
    assert 'password authentication failed for user "toolkit"' in line and "wrong" not in line


def test_sqlite_with_several_workers_warns_in_one_line(toolkit):
    # A complete study: the warning comes before anything starts, and no worker is needed.
    url = f"sqlite:///{toolkit.root / 'done.db'}"
    study = optuna.create_study(storage=url, study_name="done")
    study.add_trial(optuna.trial.create_trial(
        params={}, distributions={}, value=1.0, state=optuna.trial.TrialState.COMPLETE
    ))  # fmt: skip
    result = toolkit("hpo", RECIPE, "--smoke", "--storage", url, "--study", "done",
                     "--trials", "1", "--workers", "2")  # fmt: skip
    assert result.exit_code == 0, result.output
    warned = [line for line in result.output.splitlines() if line.startswith("warning:")]
    assert len(warned) == 1 and "--workers 2 with SQLite" in warned[0]
    assert "postgresql+psycopg" in warned[0]
    alone = toolkit("hpo", RECIPE, "--smoke", "--storage", url, "--study", "done", "--trials", "1")
    assert "warning:" not in alone.output


@pytest.mark.slow
def test_two_workers_share_one_study_and_stop_at_the_cap(toolkit, pg_url):
    result = toolkit("hpo", RECIPE, "--smoke", "--storage", pg_url, "--study", "shared",
                     "--trials", "3", "--workers", "2")  # fmt: skip
    assert result.exit_code == 0, result.output
    study = optuna.load_study(study_name="shared", storage=pg_url)
    assert [t.state.name for t in study.trials] == ["COMPLETE"] * 3  # exactly the cap
    workers = {t.user_attrs["worker"]["index"] for t in study.trials}
    assert workers == {0, 1}  # both took trials
    assert len({t.user_attrs["worker"]["pid"] for t in study.trials}) == 2
    assert len({tuple(sorted(t.params.items())) for t in study.trials}) == 3  # seeds differ
    folder = toolkit.root / "runs/eeg2025/c1-s4-hpo/hpo/shared"
    for trial in study.trials:
        assert (folder / f"trial-{trial.number}" / "metrics.json").is_file()
    for index in (0, 1):
        log = (folder / f"worker-{index}.log").read_text()
        assert f"worker {index}: study shared" in log
    assert "w0 " in result.output and "w1 " in result.output
    assert "3 finished trials; best trial" in result.output


def _running_trial(url: str, study: str, timeout: float) -> optuna.trial.FrozenTrial:
    storage = optuna.storages.RDBStorage(url)  # one connection pool for all the polls
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            trials = optuna.load_study(study_name=study, storage=storage).trials
        except KeyError:  # not created yet
            trials = []
        for trial in trials:
            if trial.state.name == "RUNNING" and "run" in trial.user_attrs:  # training
                return trial
        time.sleep(0.2)
    raise AssertionError(f"no running trial in {timeout}s")


@pytest.mark.slow
def test_a_killed_worker_trial_is_retried_and_the_study_completes(toolkit, pg_url):
    """SIGKILL one worker mid-trial: its trial's heartbeat stops, the other worker fails it after
    the grace period and runs its parameters again; the study ends with 3 COMPLETE trials."""
    env = {**os.environ, **toolkit.env}
    command = [str(Path(sys.executable).with_name("toolkit")), "hpo", "search", RECIPE, "--smoke",
               "--storage", pg_url, "--study", "killed", "--trials", "3", "--workers", "2",
               *FAST_BEATS]  # fmt: skip
    parent = subprocess.Popen(command, cwd=toolkit.root, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)  # fmt: skip
    try:
        victim = _running_trial(pg_url, "killed", timeout=120)
        os.kill(victim.user_attrs["worker"]["pid"], signal.SIGKILL)
        output, _ = parent.communicate(timeout=240)
    finally:
        if parent.poll() is None:
            parent.kill()
    assert parent.returncode == 0, output
    study = optuna.load_study(study_name="killed", storage=pg_url)
    by_number = {t.number: t for t in study.trials}
    assert by_number[victim.number].state.name == "FAIL"
    complete = [t for t in study.trials if t.state.name == "COMPLETE"]
    assert len(complete) == 3 and len(study.trials) == 4
    (retry,) = [t for t in complete if t.system_attrs.get("failed_trial") == victim.number]
    assert retry.params == pytest.approx(by_number[victim.number].params)
    assert len(retry.params) == 8 and retry.params == pytest.approx(victim.params)
    killed = victim.user_attrs["worker"]["index"]
    assert retry.user_attrs["worker"]["index"] == 1 - killed  # the survivor ran it
    assert f"worker {killed} was killed (SIGKILL)" in output
    folder = toolkit.root / "runs/eeg2025/c1-s4-hpo/hpo/killed"
    assert (folder / f"trial-{retry.number}" / "metrics.json").is_file()
    assert not (folder / f"trial-{victim.number}" / "metrics.json").exists()


def test_slurm_array_of_workers_runs_one_worker_per_task(tmp_path):
    from toolkit.config.settings import Settings
    from toolkit.hpo.slurm_workers import plan_worker_array
    from toolkit.slurm.resources import Resources

    plan = SearchPlan(
        recipe=RECIPE, recipe_name=RECIPE, recipe_file="x.yaml", smoke=True, sets=[],
        study="s", storage="postgresql+psycopg://u:pw@db.example:5432/hpo", folder=tmp_path,
        trials=4, metric="val_score", direction="minimize", pruning=False, epochs=1,
        timeout=None, hpo=None,  # type: ignore[arg-type]
    )  # fmt: skip
    settings = Settings(runs_dir=tmp_path / "runs", device="cpu")
    (job,) = plan_worker_array(plan, settings, 3, tmp_path, Resources(cpus_per_task=1)).jobs
    text = (tmp_path / "workers.sbatch").read_text()
    assert job.path == tmp_path / "workers.sbatch" and "#SBATCH --array=0-2" in text
    assert "#SBATCH --cpus-per-task=1" in text and text.count("--worker ") == 3
    for i in range(3):
        assert f"    {i})  # hpo worker {i}" in text and f"--worker {i}" in text
    assert "--trials 4" in text and "u:***@db.example" in text  # the title masks the password
