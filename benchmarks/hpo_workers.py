"""Trials per hour of the smoke search (eeg2025/c1-s4-hpo --smoke, 1 epoch a trial) with one
worker against two, each worker one thread, on a PostgreSQL server started here (the tests'
tests/postgres_server.py) or on SQLite when PostgreSQL is absent. Runs alternate (1, 2, 1, 2,
...) so the machine's load hits both alike.

Two figures per run: end to end (the CLI's wall time, process start and data loading included)
and steady (finished trials over the span from the first trial's start to the last's end).

    .venv/bin/python benchmarks/hpo_workers.py [--trials 6] [--repeats 2]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import optuna

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.postgres_server import postgres_server  # noqa: E402
from toolkit.hpo.workers import ONE_THREAD  # noqa: E402

RECIPE = "eeg2025/c1-s4-hpo"
TOOLKIT = str(Path(sys.executable).with_name("toolkit"))


def start_postgres():
    """(server generator, server) or (None, None) when PostgreSQL cannot start here."""
    gen = postgres_server()
    try:
        return gen, next(gen)
    except BaseException as exc:  # pytest.skip's exception, or a start failure
        print(f"PostgreSQL unavailable ({str(exc).splitlines()[0]}): using SQLite")
        return None, None


def search(
    workers: int, url: str, study: str, trials: int, env: dict
) -> tuple[float, float, float]:
    """One search from scratch; (end-to-end, steady, median trial) seconds."""
    args = [TOOLKIT, "hpo", "search", RECIPE, "--smoke", "--storage", url, "--study", study,
            "--trials", str(trials)]  # fmt: skip
    args += ["--workers", str(workers)] if workers > 1 else ["--worker", "0"]
    start = time.perf_counter()
    done = subprocess.run(args, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    complete = [t for t in optuna.load_study(study_name=study, storage=url).trials
                if t.state.name == "COMPLETE"]  # fmt: skip
    assert len(complete) == trials, f"{len(complete)} trials, not {trials}"
    first = min(t.datetime_start for t in complete)
    last = max(t.datetime_complete for t in complete)
    each = statistics.median((t.datetime_complete - t.datetime_start).total_seconds()
                             for t in complete)  # fmt: skip
    return wall, (last - first).total_seconds(), each


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=6)
    parser.add_argument("--repeats", type=int, default=2)
    opts = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    work = Path(tempfile.mkdtemp(prefix="hpo-workers-"))
    env = {**os.environ, **ONE_THREAD, "TOOLKIT_DEVICE": "cpu",
           "TOOLKIT_DATA_DIR": str(work / "data"), "TOOLKIT_CACHE_DIR": str(work / "cache"),
           "TOOLKIT_RUNS_DIR": str(work / "runs")}  # fmt: skip
    gen, server = start_postgres()
    try:

        def fresh_url() -> str:
            if server is None:
                return f"sqlite:///{work / uuid.uuid4().hex[:8]}.db"
            return server.create_database(f"bench_{uuid.uuid4().hex[:8]}")

        kind = "PostgreSQL" if server else "SQLite"
        search(1, fresh_url(), "warmup", 1, env)  # builds the synthetic data cache once
        times: dict[int, list[tuple[float, float, float]]] = {1: [], 2: []}
        for repeat in range(opts.repeats):
            for workers in (1, 2):
                got = search(workers, fresh_url(), f"w{workers}-{repeat}", opts.trials, env)
                times[workers].append(got)
                print(f"  {workers} worker(s), run {repeat + 1}: {got[0]:.1f} s end to end, "
                      f"{got[1]:.1f} s steady, {got[2]:.2f} s a trial")  # fmt: skip
    finally:
        if gen is not None:
            gen.close()

    def rate(workers: int, which: int) -> float:
        return 3600 * opts.trials / statistics.median(t[which] for t in times[workers])

    print(f"\n{RECIPE} --smoke, {opts.trials} trials of 1 epoch, {kind}, "
          f"one thread per worker, {os.cpu_count()} cores, median of {opts.repeats}\n")  # fmt: skip
    print("| workers | trials/hour end to end | trials/hour steady | seconds a trial |")
    print("|---:|---:|---:|---:|")
    for workers in (1, 2):
        each = statistics.median(t[2] for t in times[workers])
        print(f"| {workers} | {rate(workers, 0):.0f} | {rate(workers, 1):.0f} | {each:.2f} |")
    print(f"| ratio 2 : 1 | {rate(2, 0) / rate(1, 0):.2f}x | {rate(2, 1) / rate(1, 1):.2f}x | |")
    print("target: >= 1.6x")


if __name__ == "__main__":
    main()
