"""Run a script the way a competition runs a submission: a fresh interpreter, network refused,
the toolkit (and any other named package) unimportable, an empty working folder."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

GUARD = """
import importlib.abc, socket, sys

BLOCKED = {blocked!r}
MESSAGE = "network access refused: the competition runs offline (tried %s)"

def _refuse(*args, **kwargs):
    raise OSError(MESSAGE % (args[1:2] or args[:1],))

socket.socket.connect = _refuse
socket.socket.connect_ex = _refuse
socket.create_connection = _refuse
socket.getaddrinfo = _refuse

class _Blocked(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(
                f"No module named {{name!r}} (not available to submissions)", name=name
            )
        return None

sys.meta_path.insert(0, _Blocked())
for _name in [m for m in sys.modules if m.split(".")[0] in BLOCKED]:
    del sys.modules[_name]
"""


@dataclass(frozen=True)
class SandboxResult:
    """Exit code and output of a sandboxed script."""

    returncode: int
    stdout: str
    stderr: str

    @property
    def last_error(self) -> str:
        """The last line of stderr (usually the exception), or a note if there is none."""
        lines = [line for line in self.stderr.strip().splitlines() if line.strip()]
        return lines[-1] if lines else f"exit code {self.returncode}"


@dataclass(frozen=True)
class Sandbox:
    """Runs Python scripts offline, without the toolkit, in a fresh process."""

    blocked: tuple[str, ...] = ("toolkit",)
    python: str = sys.executable
    timeout: float = 600.0

    def run(
        self, script: Path, args: list[str], env: dict[str, str] | None = None
    ) -> SandboxResult:
        """Run `script` with `args` in an empty temporary working folder."""
        with tempfile.TemporaryDirectory(prefix="toolkit-sandbox-") as tmp:
            runner = Path(tmp) / "_sandbox_runner.py"
            runner.write_text(
                GUARD.format(blocked=set(self.blocked))
                + "\nimport runpy, sys\n"
                + f"sys.argv = [{str(script)!r}, *sys.argv[1:]]\n"
                + f"runpy.run_path({str(script)!r}, run_name='__main__')\n"
            )
            workdir = Path(tmp) / "cwd"
            workdir.mkdir()
            clean_env = {
                k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "TOOLKIT_"))
            }
            clean_env.update({"PYTHONNOUSERSITE": "1", "PYTHONDONTWRITEBYTECODE": "1"})
            clean_env.update(env or {})
            try:
                proc = subprocess.run(
                    [self.python, "-s", str(runner), *args],
                    cwd=workdir,
                    env=clean_env,
                    capture_output=True,
                    text=True,
                    timeout=self.timeout,
                    stdin=subprocess.DEVNULL,
                )
            except subprocess.TimeoutExpired:
                return SandboxResult(124, "", f"timed out after {self.timeout:.0f}s")
        return SandboxResult(proc.returncode, proc.stdout, proc.stderr)
