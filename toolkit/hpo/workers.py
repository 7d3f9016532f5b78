"""`toolkit hpo search ... --workers K`: K worker processes on one study.

Each worker is the same `toolkit hpo search` command with `--worker I` (its own sampler seed,
one thread), started here as a subprocess or by a SLURM array task; the study's storage is the
only thing they share. This process creates the storage's tables and the study first (so the
workers do not race to), streams each worker's output prefixed with `wI`, keeps it in
<study folder>/worker-I.log, and judges the outcome by the study, not by the exit codes: a
worker that was killed is reported, and its trial was retried by another."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
from pathlib import Path

from rich.console import Console
from rich.text import Text

from toolkit.config.settings import Settings
from toolkit.hpo.search import HpoError, SearchPlan, live_trials, prepare_study
from toolkit.hpo.storage import SQLITE_MANY_WORKERS, is_sqlite, shown_url

ONE_THREAD = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}


def host_toolkit_words(settings: Settings) -> list[str]:
    """The toolkit of this environment with the global options that fix folders, device, seed."""
    from toolkit.slurm.plan import toolkit_words

    return list(toolkit_words(settings, container=False))


def worker_args(plan: SearchPlan, index: int) -> list[str]:
    """`hpo search ...` for worker `index`: the plan spelled out, so every worker runs the same
    study whatever the recipe's defaults."""
    recipe = Path(plan.recipe).expanduser()
    words = [
        "hpo", "search", str(recipe.resolve()) if recipe.is_file() else plan.recipe,
        "--study", plan.study, "--storage", plan.storage, "--trials", str(plan.trials),
        "--metric", plan.metric, "--direction", plan.direction,
        "--pruning" if plan.pruning else "--no-pruning", "--worker", str(index),
    ]  # fmt: skip
    if plan.epochs is not None:
        words += ["--epochs", str(plan.epochs)]
    if plan.timeout is not None:
        words += ["--timeout", f"{plan.timeout:g}s"]
    for item in plan.sets:
        words += ["--set", item]
    return [*words, "--smoke"] if plan.smoke else words


def warn_sqlite(plan: SearchPlan, workers: int, console: Console) -> None:
    if workers > 1 and is_sqlite(plan.storage):
        console.print(Text(SQLITE_MANY_WORKERS.format(n=workers, url=plan.storage), "yellow"))


def _pump(index: int, proc: subprocess.Popen, log: Path, console: Console, last: list[str]):
    with log.open("w", encoding="utf-8") as out:
        for line in proc.stdout:  # type: ignore[union-attr]
            out.write(line)
            out.flush()
            line = line.rstrip("\n")
            if line.strip():
                last[index] = line
            console.print(Text(f"w{index} ", "dim") + Text(line))


def run_local_workers(
    plan: SearchPlan, settings: Settings, console: Console, workers: int
) -> list[int]:
    """Start `workers` worker processes on the plan's study, wait for all; their exit codes."""
    warn_sqlite(plan, workers, console)
    study = prepare_study(plan, settings)
    finished, _ = live_trials(study)
    if finished >= plan.trials:
        return []
    console.print(
        f"study [bold]{plan.study}[/] ({shown_url(plan.storage)}): {workers} workers, one thread "
        f"each, until {plan.trials} finished trials (logs: {plan.folder}/worker-*.log)"
    )
    env = {**os.environ, **ONE_THREAD, "PYTHONUNBUFFERED": "1"}
    base = host_toolkit_words(settings)
    procs: list[subprocess.Popen] = []
    pumps: list[threading.Thread] = []
    last = [""] * workers
    try:
        for index in range(workers):
            proc = subprocess.Popen(
                [*base, *worker_args(plan, index)], env=env, stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True, bufsize=1,
            )  # fmt: skip
            procs.append(proc)
            log = plan.folder / f"worker-{index}.log"
            pump = threading.Thread(target=_pump, args=(index, proc, log, console, last))
            pump.start()
            pumps.append(pump)
        codes = [proc.wait() for proc in procs]
    except BaseException:  # Ctrl-C: stop the workers; their running trials fail as stale
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in procs:
            proc.wait()
        raise
    finally:
        for pump in pumps:
            pump.join()
    _judge(plan, study, codes, last, console)
    return codes


def _judge(plan, study, codes: list[int], last: list[str], console: Console) -> None:
    """Report killed or failed workers; an error only if the study fell short of its trials."""
    bad = []
    for index, code in enumerate(codes):
        if code < 0:
            name = signal.Signals(-code).name if -code in signal.valid_signals() else -code
            bad.append(f"worker {index} was killed ({name})")
        elif code != 0:
            bad.append(f"worker {index} ended with exit code {code}: {last[index]}")
    finished, _ = live_trials(study)
    if finished < plan.trials and bad:
        raise HpoError(f"study {plan.study}: {finished} of {plan.trials} trials; " + "; ".join(bad))
    for line in bad:
        console.print(Text(f"warning: {line}; the others finished the study", "yellow"))
