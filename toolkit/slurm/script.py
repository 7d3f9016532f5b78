"""Render a SLURM batch script: every `#SBATCH` line explained, one `srun` line that runs the
toolkit (directly or in an Apptainer image), and a requeue from the host where the image has no
`scontrol`. Rendering is a pure function of `JobScript`, so scripts can be compared as files."""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path

from toolkit.slurm.resources import WARNING_SECONDS, Resources


@dataclass(frozen=True)
class Task:
    """What one task trains (a recipe or an ensemble member), its run folder and the toolkit
    arguments after the global options (`run RECIPE --run-dir FOLDER ...`)."""

    label: str
    run_dir: Path
    args: tuple[str, ...]


@dataclass(frozen=True)
class Container:
    """An Apptainer image and the host folders bound into it at the same paths."""

    image: Path
    binds: tuple[Path, ...]
    gpus: bool


@dataclass(frozen=True)
class JobScript:
    """One batch script: a single task, or an array with one task per entry of `tasks`."""

    name: str
    title: str
    path: Path
    workdir: Path
    resources: Resources
    tasks: tuple[Task, ...]
    toolkit: tuple[str, ...]  # the executable (with global options: folders, device, seed)
    container: Container | None = None
    array_of: str = ""  # what each array task is ("ensemble member", "recipe"); "" = no array
    after: str = ""  # what the job waits for (the dependency is given to sbatch)

    @property
    def is_array(self) -> bool:
        return bool(self.array_of)

    @property
    def log(self) -> Path:
        """sbatch's output file (a pattern): the run folder's, or the array folder's."""
        if self.is_array:
            return self.path.parent / "slurm-%A_%a.log"
        return self.tasks[0].run_dir / "slurm-%j.log"


def _directive(why: str, option: str) -> list[str]:
    return [f"# {line}" for line in why.splitlines()] + [f"#SBATCH {option}"]


def _directives(job: JobScript) -> list[str]:
    res = job.resources
    out: list[str] = []
    out += _directive("Name in squeue and `toolkit slurm status`.", f"--job-name={job.name}")
    out += _directive("Working folder: where `toolkit slurm submit` ran.", f"--chdir={job.workdir}")
    out += _directive(
        "Output (stdout and stderr) beside the run's files; a requeued job appends to it.",
        f"--output={job.log}",
    )
    out.append("#SBATCH --open-mode=append")
    out += _directive("Machines (train.num_nodes).", f"--nodes={res.nodes}")
    out += _directive(
        "One task per device on each machine (train.devices): srun starts them and Lightning\n"
        "reads its DDP layout (world size, ranks, master address) from SLURM.",
        f"--ntasks-per-node={res.tasks_per_node}",
    )
    if res.gpus_per_node:
        out += _directive(
            "GPUs on each machine, one per task.", f"--gpus-per-node={res.gpus_per_node}"
        )
    if res.cpus_per_task is not None:
        out += _directive(
            "CPU cores for each task (data loading, CPU training).",
            f"--cpus-per-task={res.cpus_per_task}",
        )
    if res.mem is not None:
        out += _directive("Memory on each machine.", f"--mem={res.mem}")
    if res.time is not None:
        out += _directive(
            f"Time limit; {WARNING_SECONDS} s before it the tasks get SIGUSR1 (below).",
            f"--time={res.time}",
        )
    if res.partition is not None:
        out += _directive("Partition (queue).", f"--partition={res.partition}")
    if res.account is not None:
        out += _directive("Account the job is charged to.", f"--account={res.account}")
    out += _directive(
        f"{WARNING_SECONDS} s before the time limit (or a preemption with a grace time) every\n"
        "task gets SIGUSR1: training saves last.ckpt at the next batch and requeues the job.",
        f"--signal=SIGUSR1@{WARNING_SECONDS}",
    )
    out += _directive(
        "The job may be requeued (preemption, node failure, the warning above): it starts\n"
        "again from the top and `--run-dir` resumes the run folder's checkpoint.",
        "--requeue",
    )
    if job.is_array:
        out += _directive(
            f"One array task per {job.array_of}: task i runs case i below "
            "(SLURM_ARRAY_TASK_ID).",
            f"--array=0-{len(job.tasks) - 1}",
        )
    return out


def _words(words: tuple[str, ...], indent: str = "    ") -> list[str]:
    """The executable on its own line, then each `--option value` pair on one."""
    head = [w for w in words if not w.startswith("--")][:1] if words else []
    rest = list(words[len(head):])
    lines = [indent + " ".join(shlex.quote(w) for w in head)] if head else []
    while rest:
        pair = rest[:2] if len(rest) > 1 and not rest[1].startswith("--") else rest[:1]
        lines.append(indent + " ".join(shlex.quote(w) for w in pair))
        rest = rest[len(pair):]
    return lines


def _toolkit_lines(job: JobScript) -> list[str]:
    if job.container is None:
        return [
            "# The toolkit, with its folders and settings as they were at submit time.",
            "TOOLKIT=(",
            *_words(job.toolkit),
            ")",
        ]
    image = job.container
    binds = ",".join(str(p) for p in image.binds)
    nv = "--nv " if image.gpus else ""
    return [
        "# The Apptainer image, with the toolkit's folders bound at the same paths. The host's",
        "# environment (SLURM_*, CUDA_VISIBLE_DEVICES) passes into it"
        + ("; --nv binds the host's NVIDIA driver." if image.gpus else "."),
        "# The global options (folders, device, seed) win over the image's TOOLKIT_* variables.",
        f"IMAGE={shlex.quote(str(image.image))}",
        f"BINDS={shlex.quote(binds)}",
        "TOOLKIT=(",
        f"    apptainer exec {nv}--bind \"$BINDS\" "
        f"--pwd {shlex.quote(str(job.workdir))} \"$IMAGE\"",
        *_words(job.toolkit),
        ")",
    ]


def _task_lines(task: Task, indent: str = "") -> list[str]:
    here = str(task.run_dir)
    args = " ".join('"$RUN_DIR"' if a == here else shlex.quote(a) for a in task.args)
    return [
        f"{indent}RUN_DIR={shlex.quote(str(task.run_dir))}",
        f"{indent}TASK=({args})",
    ]


def _select_lines(job: JobScript) -> list[str]:
    if not job.is_array:
        return ["# The run folder made by `toolkit slurm submit`, and what runs in it.",
                *_task_lines(job.tasks[0])]  # fmt: skip
    last = len(job.tasks) - 1
    out = [f"# Each array task's {job.array_of}, run folder and command.",
           'case "${SLURM_ARRAY_TASK_ID:-}" in']  # fmt: skip
    for i, task in enumerate(job.tasks):
        out += [f"    {i})  # {task.label}", *_task_lines(task, " " * 8), "        ;;"]
    out += [
        "    *)",
        f'        echo "toolkit: this script is an array job of tasks 0-{last}; submit it '
        'with sbatch" >&2',
        "        exit 2",
        "        ;;",
        "esac",
    ]
    return out


def render(job: JobScript) -> str:
    """The batch script's text."""
    header = [
        "#!/bin/bash",
        f"# {job.title}",
        "# Written by `toolkit slurm submit`. Submitting it again (`sbatch "
        f"{job.path.name}`) or a",
        "# requeue resumes what the run folder holds: the folder is fixed here.",
    ]
    if job.after:
        header.append(f"# Starts after {job.after} (sbatch --dependency=afterok:ARRAY_JOB).")
    srun = ["srun", "--kill-on-bad-exit=1"]
    if job.is_array:
        srun += ['--output="$RUN_DIR/slurm-%A_%a.log"', "--open-mode=append"]
    srun_why = (
        "# One process per task (rank = SLURM_PROCID); the task's output goes to its run folder."
        if job.is_array
        else "# One process per task (rank = SLURM_PROCID); rank 0 writes the run's files."
    )
    body = [
        "",
        "set -uo pipefail",
        "",
        *_toolkit_lines(job),
        "",
        *_select_lines(job),
        "",
        'echo "toolkit: job ${SLURM_JOB_ID} start ${SLURM_RESTART_COUNT:-0} on $(hostname): '
        '${RUN_DIR}"',
        srun_why,
        " ".join(srun) + ' "${TOOLKIT[@]}" "${TASK[@]}"',
        "code=$?",
        "# After SIGUSR1 the run saved last.ckpt and requeued the job itself; where it could not",
        '# (no scontrol inside a container image) its status says "requeued": null: requeue here.',
        "if [[ $code -ne 0 ]] && grep -qs '\"signal\": \"SIGUSR1\"' \"$RUN_DIR/status.json\" \\",
        "        && grep -qs '\"requeued\": null' \"$RUN_DIR/status.json\"; then",
        '    scontrol requeue "$SLURM_JOB_ID" && exit 0',
        "fi",
        'exit "$code"',
    ]
    return "\n".join([*header, "#", *_directives(job), *body]) + "\n"
