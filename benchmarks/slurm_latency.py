"""Submit-to-start latency of a SLURM job on the local single-node test cluster.

Starts the cluster of the tests (tests/slurm_cluster.py, needs root and Debian's slurm-wlm),
then measures, `--repeats` times each:

- peer: `sbatch --wrap` of a one-line job, from the sbatch call until the job's first line runs
  (the scheduler's own latency);
- `toolkit slurm submit RECIPE --smoke` as a subprocess: from its start until the job's first
  line runs (often before the CLI has returned), the CLI's own time (resolve the recipe, make
  the run folder, write the script, sbatch), and until the toolkit in the job has its run in
  status `training` (Python, torch and Lightning imported, data prepared); the job is
  cancelled there.

    python benchmarks/slurm_latency.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.slurm_cluster import Cluster, missing_binaries, start_cluster  # noqa: E402

RECIPE = "eeg2025/c1-baseline"


def _wait_for(ready, timeout: float = 600.0, poll: float = 0.05) -> float:
    """Seconds until `ready()` holds."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if ready():
            return time.monotonic() - start
        time.sleep(poll)
    raise TimeoutError("benchmark: gave up waiting")


def _empty_queue(cluster: Cluster) -> None:
    _wait_for(lambda: not cluster.run("squeue", "-h", check=False).stdout.strip(), 120, 0.2)


def sbatch_latency(cluster: Cluster, folder: Path) -> float:
    """sbatch call -> the job's first line (a file it writes)."""
    marker = folder / f"started-{time.monotonic_ns()}"
    start = time.monotonic()
    cluster.run("sbatch", "--parsable", f"--output={folder}/wrap-%j.log",
                f"--wrap=touch {marker}")  # fmt: skip
    _wait_for(marker.exists)
    elapsed = time.monotonic() - start
    _empty_queue(cluster)
    return elapsed


def toolkit_latency(cluster: Cluster, folder: Path) -> tuple[float, float, float]:
    """(CLI seconds, submit -> batch script start, submit -> run `training`)."""
    root = folder / f"tk-{time.monotonic_ns()}"
    root.mkdir()
    env = {
        **os.environ, **cluster.env, "TOOLKIT_RUNS_DIR": str(root / "runs"),
        "TOOLKIT_CACHE_DIR": str(folder / "cache"), "TOOLKIT_DATA_DIR": str(root / "data"),
        "TOOLKIT_SUBMISSIONS_DIR": str(root / "submissions"), "TOOLKIT_DEVICE": "cpu",
    }  # fmt: skip
    toolkit = Path(sys.executable).parent / "toolkit"
    start = time.monotonic()
    cli = subprocess.Popen([str(toolkit), "slurm", "submit", RECIPE, "--smoke"], env=env,
                           cwd=root, stdout=subprocess.PIPE, text=True)  # fmt: skip
    base = root / "runs" / RECIPE

    def batch_started() -> bool:  # (often before the CLI has even returned)
        return any("start 0" in log.read_text() for log in base.glob("*/slurm-*.log"))

    started = _wait_for(batch_started)
    out, _ = cli.communicate(timeout=600)
    cli_seconds = time.monotonic() - start
    if cli.returncode != 0:
        raise RuntimeError(f"toolkit slurm submit failed: {out}")
    job_id = out.split("submitted job ", 1)[1].split(":", 1)[0]
    (run,) = base.iterdir()

    def training() -> bool:
        status = run / "status.json"
        return status.is_file() and json.loads(status.read_text()).get("state") == "training"

    _wait_for(training)
    trains = time.monotonic() - start
    cluster.run("scancel", job_id, check=False)
    _empty_queue(cluster)
    return cli_seconds, started, trains


def _row(name: str, values: list[float]) -> str:
    return (f"| {name} | {statistics.median(values):.2f} | {min(values):.2f} | "
            f"{max(values):.2f} |")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    reason = missing_binaries()
    if reason:
        sys.exit(reason)
    with tempfile.TemporaryDirectory(prefix="slurm-bench-") as tmp:
        folder = Path(tmp)
        cluster = start_cluster(folder / "cluster")
        try:
            sbatch = [sbatch_latency(cluster, folder) for _ in range(args.repeats)]
            runs = [toolkit_latency(cluster, folder) for _ in range(args.repeats)]
        finally:
            cluster.stop()
    print(f"SLURM submit-to-start latency, local single-node cluster, {args.repeats} repeats, "
          f"{os.cpu_count()} cores (seconds)\n")  # fmt: skip
    print("| what | median | min | max |\n|---|---|---|---|")
    print(_row("peer: sbatch --wrap -> job's first line", sbatch))
    print(_row("toolkit slurm submit (CLI, incl. sbatch)", [r[0] for r in runs]))
    print(_row("toolkit slurm submit -> job's first line", [r[1] for r in runs]))
    print(_row("toolkit slurm submit -> run is training", [r[2] for r in runs]))


if __name__ == "__main__":
    main()
