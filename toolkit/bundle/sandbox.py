"""Run a script the way a competition runs a submission: a fresh interpreter in an empty working
folder, the toolkit (and any other named package) unimportable, and no network.

The network is cut at two levels:
- the operating system: where the kernel lets us (root, or unprivileged user namespaces), the
  process starts in a new network namespace via `unshare` that has only its own loopback, so no
  route leads anywhere, for raw sockets and child processes alike;
- the interpreter: an audit hook (PEP 578, which sees `_socket` too) refuses every internet
  socket connect and name lookup and records it, in the script and in any Python child process
  (the hook rides along as `sitecustomize` on PYTHONPATH). Recorded attempts fail verify.

Every run has a time limit; on timeout, or when the caller is interrupted, the whole process
group is killed and the temporary folder removed.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from toolkit.processes import pid_alive

GUARD = r'''
"""Installed by the toolkit's sandbox: no network, no blocked packages (toolkit/bundle)."""
import importlib.abc, os, socket, sys

_BLOCKED = {blocked!r}
_LOG = os.environ.get("TOOLKIT_SANDBOX_NETLOG")
_LOCAL_NAMES = (None, "", "localhost", "127.0.0.1", "::1")


def _record(what):
    if _LOG:
        with open(_LOG, "a", encoding="utf-8") as fh:
            fh.write(f"{{os.getpid()}}\t{{what}}\n")
    raise OSError(f"network access refused: the competition runs offline (tried {{what}})")


def _audit(event, args):
    if event == "socket.connect" or event == "socket.sendto":
        sock, address = args[0], args[-1]
        if getattr(sock, "family", None) in (socket.AF_INET, socket.AF_INET6):
            _record(f"{{event.split('.')[1]}} {{address!r}}")
    elif event in ("socket.getaddrinfo", "socket.gethostbyname", "socket.gethostbyname_ex"):
        if args and args[0] not in _LOCAL_NAMES:
            _record(f"{{event.split('.')[1]}} {{args[0]!r}}")


sys.addaudithook(_audit)


class _Blocked(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in _BLOCKED:
            raise ModuleNotFoundError(
                f"No module named {{name!r}} (not available to submissions)", name=name
            )
        return None


sys.meta_path.insert(0, _Blocked())
for _name in [m for m in sys.modules if m.split(".")[0] in _BLOCKED]:
    del sys.modules[_name]


def _loopback_up():
    # A new network namespace starts with `lo` down; bring it up so local IPC still works.
    try:
        import fcntl, struct
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            req = struct.pack("16sH", b"lo", 0)
            flags = struct.unpack("16sH", fcntl.ioctl(s, 0x8913, req))[1]  # SIOCGIFFLAGS
            fcntl.ioctl(s, 0x8914, struct.pack("16sH", b"lo", flags | 0x1))  # SIOCSIFFLAGS UP
    except OSError:
        pass


if os.environ.pop("TOOLKIT_SANDBOX_LOOPBACK", None) == "1":
    _loopback_up()
'''

TEMP_PREFIX = "toolkit-sandbox-"


@functools.cache
def isolation() -> tuple[str, list[str]]:
    """(description, command prefix) of the strongest network isolation this machine allows:
    a new network namespace (as root, or through a user namespace), else none (the in-process
    guard only)."""
    unshare = shutil.which("unshare")
    if unshare is not None:
        for prefix, name in (
            ([unshare, "--net", "--"], "network namespace (loopback only)"),
            (
                [unshare, "--user", "--map-root-user", "--net", "--"],
                "user + network namespace (loopback only)",
            ),
        ):
            try:
                probe = subprocess.run(
                    [*prefix, sys.executable, "-c", "pass"], capture_output=True, timeout=20
                )
            except (OSError, subprocess.SubprocessError):
                continue
            if probe.returncode == 0:
                return name, prefix
    return "none: no network namespace allowed here, only the in-process guard", []


def sweep_stale(prefix: str = TEMP_PREFIX) -> int:
    """Remove temporary folders left by sandboxes whose process was killed (SIGKILL leaves no
    chance to clean up); the folder names carry the owner's pid. Returns how many went."""
    removed = 0
    for path in Path(tempfile.gettempdir()).glob(f"{prefix}*"):
        match = re.match(rf"{re.escape(prefix)}(\d+)-", path.name)
        if match is None or pid_alive(int(match.group(1))):
            continue
        shutil.rmtree(path, ignore_errors=True)
        removed += 1
    return removed


@dataclass(frozen=True)
class SandboxResult:
    """Exit code and output of a sandboxed script, and the network accesses it attempted."""

    returncode: int
    stdout: str
    stderr: str
    network: tuple[str, ...] = ()

    @property
    def last_error(self) -> str:
        """The last line of stderr (usually the exception), or a note if there is none."""
        lines = [line for line in self.stderr.strip().splitlines() if line.strip()]
        return lines[-1] if lines else f"exit code {self.returncode}"


@dataclass(frozen=True)
class Sandbox:
    """Runs Python scripts offline, without the toolkit, in a fresh process, within `timeout`
    seconds. `attempts` collects every network access any run tried (verify fails on them)."""

    blocked: tuple[str, ...] = ("toolkit",)
    python: str = sys.executable
    timeout: float = 600.0
    attempts: list[str] = field(default_factory=list, compare=False)

    @property
    def isolation(self) -> str:
        return isolation()[0]

    def run(
        self, script: Path, args: list[str], env: dict[str, str] | None = None
    ) -> SandboxResult:
        """Run `script` with `args` in an empty temporary working folder."""
        sweep_stale()
        tmp = Path(tempfile.mkdtemp(prefix=f"{TEMP_PREFIX}{os.getpid()}-"))
        try:
            return self._run(tmp, script, args, env or {})
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def _run(self, tmp: Path, script: Path, args: list[str], env: dict[str, str]):
        guard = tmp / "guard"
        guard.mkdir()
        (guard / "sitecustomize.py").write_text(GUARD.format(blocked=set(self.blocked)))
        runner = tmp / "_sandbox_runner.py"
        runner.write_text(
            "import runpy, sys\n"
            f"sys.argv = [{str(script)!r}, *sys.argv[1:]]\n"
            f"runpy.run_path({str(script)!r}, run_name='__main__')\n"
        )
        workdir = tmp / "cwd"
        workdir.mkdir()
        netlog = tmp / "network.log"
        prefix = isolation()[1]
        clean_env = {
            k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "TOOLKIT_"))
        }
        clean_env.update(
            PYTHONNOUSERSITE="1",
            PYTHONDONTWRITEBYTECODE="1",
            PYTHONPATH=str(guard),
            TOOLKIT_SANDBOX_NETLOG=str(netlog),
            TOOLKIT_SANDBOX_LOOPBACK="1" if prefix else "0",
        )
        clean_env.update(env)
        proc = subprocess.Popen(
            [*prefix, self.python, "-s", str(runner), *args],
            cwd=workdir,
            env=clean_env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
            start_new_session=True,  # its own process group: killed whole on timeout
            preexec_fn=_die_with_parent,
        )
        try:
            stdout, stderr = proc.communicate(timeout=self.timeout)
            code = proc.returncode
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            stdout, stderr = proc.communicate()
            code = 124
            stderr += (
                f"\ntimed out after {self.timeout:g}s (the per-call limit; raise it with "
                "--timeout)"
            )
        finally:
            if proc.poll() is None:  # interrupted while waiting: take the children down too
                _kill_group(proc)
        _kill_group(proc)  # stray children of a finished script
        network = tuple(
            line.split("\t", 1)[-1]
            for line in (netlog.read_text().splitlines() if netlog.is_file() else [])
        )
        self.attempts.extend(network)
        return SandboxResult(code, stdout, stderr, network)


def _die_with_parent() -> None:
    """In the child, before exec (Linux): SIGKILL it if the toolkit dies (even by SIGKILL)."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _kill_group(proc: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    if proc.poll() is None:
        proc.wait()
