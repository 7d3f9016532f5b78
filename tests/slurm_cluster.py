"""A real single-node SLURM cluster on 127.0.0.1 for the tests (and the latency benchmark).

Debian's `slurm-wlm` (slurmctld, slurmd, the client tools) and `munge`, with the configuration
checked in SCALE.md; every state, spool, log, pid and socket file lives in one temporary folder,
the ports are free ones picked at start, and the clients find it through SLURM_CONF. Nothing is
installed or started outside that folder, so a crashed test leaves no service behind that the
next one would meet.

    python -m tests.slurm_cluster DIR      # start one by hand (Ctrl-C stops it)
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

DAEMONS = ("munged", "slurmctld", "slurmd")
CLIENTS = ("sbatch", "srun", "squeue", "scontrol", "sinfo")
PACKAGE = "slurm-wlm"  # Debian: pulls in munge and the client tools


def missing_binaries() -> str | None:
    """A one-line reason to skip when the cluster's programs are absent, naming the package."""
    absent = [b for b in DAEMONS + CLIENTS if _which(b) is None]
    if not absent:
        return None
    return f"SLURM not installed ({', '.join(absent)} missing): apt-get install -y {PACKAGE}"


def _which(name: str) -> str | None:
    return shutil.which(name, path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _node_memory_mb(default: int = 1000) -> int:
    """RealMemory: at most what `slurmd -C` reports (a larger value drains the node)."""
    out = subprocess.run([_which("slurmd") or "slurmd", "-C"], capture_output=True, text=True)
    for word in out.stdout.split():
        if word.startswith("RealMemory="):
            return min(default, int(word.split("=", 1)[1]))
    return default


SLURM_CONF = """\
ClusterName=ci
SlurmctldHost=localhost(127.0.0.1)
SlurmctldPort={ctld_port}
SlurmdPort={slurmd_port}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={root}/munge/munge.socket
StateSaveLocation={root}/state
SlurmdSpoolDir={root}/spool
SlurmctldPidFile={root}/slurmctld.pid
SlurmdPidFile={root}/slurmd.pid
SlurmctldLogFile={root}/log/slurmctld.log
SlurmdLogFile={root}/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
MpiDefault=none
SwitchType=switch/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=1
MessageTimeout=20
NodeName=localhost NodeAddr=127.0.0.1 CPUs={cpus} RealMemory={memory} State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
"""


@dataclass
class Cluster:
    """A running cluster: its folder, configuration file and the daemons this process started."""

    root: Path
    conf: Path
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)

    @property
    def env(self) -> dict[str, str]:
        """What a client needs to reach this cluster (SLURM_CONF), on top of os.environ."""
        return {"SLURM_CONF": str(self.conf)}

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        """A client command (`squeue ...`) against this cluster."""
        env = {**os.environ, **self.env}
        return subprocess.run(args, capture_output=True, text=True, env=env, check=check)

    def log(self, name: str = "slurmctld") -> str:
        path = self.root / "log" / f"{name}.log"
        return path.read_text(errors="replace") if path.is_file() else ""

    def stop(self) -> None:
        """`scontrol shutdown`, then end what is left of the daemons this process started."""
        self.run("scontrol", "shutdown", check=False)  # slurmctld and slurmd; munged stays
        for name in reversed(DAEMONS):
            proc = self.processes.get(name)
            if proc is None:
                continue
            try:
                proc.wait(timeout=0.1 if name == "munged" else 15)
            except subprocess.TimeoutExpired:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


def start_cluster(root: Path, cpus: int = 2, timeout: float = 60.0) -> Cluster:
    """Start munged, slurmctld and slurmd in `root`; return once the node is `idle`."""
    root = Path(root).resolve()
    for sub in ("munge", "state", "spool", "log"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    os.chmod(root / "munge", 0o700)
    key = root / "munge" / "munge.key"
    key.write_bytes(os.urandom(128))
    os.chmod(key, 0o600)
    conf = root / "slurm.conf"
    conf.write_text(SLURM_CONF.format(
        root=root, ctld_port=_free_port(), slurmd_port=_free_port(), cpus=cpus,
        memory=_node_memory_mb(),
    ))  # fmt: skip
    cluster = Cluster(root, conf)
    env = {**os.environ, **cluster.env}
    logs = (root / "log" / "daemons.out").open("ab")
    commands = {
        "munged": [_which("munged"), "-F", "-f", f"--key-file={key}",
                   f"--socket={root}/munge/munge.socket", f"--pid-file={root}/munge/munged.pid",
                   f"--log-file={root}/log/munged.log", f"--seed-file={root}/munge/seed"],
        "slurmctld": [_which("slurmctld"), "-D", "-c", "-i", "-f", str(conf)],
        "slurmd": [_which("slurmd"), "-D", "-N", "localhost", "-f", str(conf)],
    }  # fmt: skip
    try:
        for name, command in commands.items():
            cluster.processes[name] = subprocess.Popen(
                command, env=env, stdout=logs, stderr=subprocess.STDOUT, start_new_session=True
            )
            if name == "munged":
                _wait_for(lambda: (root / "munge" / "munge.socket").exists(), 10, "munged")
        _wait_for(lambda: _node_state(cluster) == "idle", timeout, "node idle")
    except BaseException:
        cluster.stop()
        raise
    return cluster


def _node_state(cluster: Cluster) -> str:
    out = cluster.run("sinfo", "-h", "-o", "%t", check=False)
    return out.stdout.strip()


def _wait_for(ready, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ready():
            return
        time.sleep(0.3)
    raise RuntimeError(f"SLURM test cluster: timed out waiting for {what}")


if __name__ == "__main__":
    where = Path(sys.argv[1] if len(sys.argv) > 1 else "slurm-cluster")
    running = start_cluster(where)
    print(f"cluster up: export SLURM_CONF={running.conf}  (Ctrl-C stops it)")
    try:
        signal.pause()
    except KeyboardInterrupt:
        pass
    finally:
        running.stop()
