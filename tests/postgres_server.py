"""A throw-away PostgreSQL server for the tests: its own cluster in a temp folder, on a free port
of 127.0.0.1, password authentication, stopped and removed afterwards.

`initdb`/`pg_ctl` refuse to run as root: as root the server runs as the `postgres` user (which
Debian's package creates); otherwise as the current user. Absent binaries skip the tests, naming
the Debian package (`apt-get install -y postgresql`)."""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

USER, PASSWORD = "toolkit", "s3cret"
SKIP = "PostgreSQL binaries (initdb, pg_ctl) absent: apt-get install -y postgresql (Debian)"


def find_bin_dir() -> Path | None:
    """The newest /usr/lib/postgresql/<version>/bin, or the folder of `initdb` on PATH."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=_version)
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def _version(path: str) -> float:
    try:
        return float(Path(path).parent.parent.name)
    except ValueError:
        return 0.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class PostgresServer:
    bin_dir: Path
    folder: Path
    port: int
    run_as: str | None  # a user to switch to (when we are root)

    def url(self, database: str = "postgres", password: str = PASSWORD) -> str:
        return f"postgresql+psycopg://{USER}:{password}@127.0.0.1:{self.port}/{database}"

    def _run(self, *args: str) -> None:
        kwargs = {"user": self.run_as} if self.run_as else {}
        done = subprocess.run([str(self.bin_dir / args[0]), *args[1:]], capture_output=True,
                              text=True, cwd=self.folder, timeout=60, **kwargs)  # fmt: skip
        if done.returncode != 0:
            raise RuntimeError(f"{args[0]} failed: {done.stdout}{done.stderr}")

    def start(self) -> None:
        data, pw = self.folder / "data", self.folder / "password"
        pw.write_text(PASSWORD + "\n")
        if self.run_as:
            entry = pwd.getpwnam(self.run_as)
            os.chown(self.folder, entry.pw_uid, entry.pw_gid)
            os.chown(pw, entry.pw_uid, entry.pw_gid)
        self._run("initdb", "-D", str(data), "-U", USER, f"--pwfile={pw}", "--auth=scram-sha-256",
                  "-E", "UTF8", "--no-sync")  # fmt: skip
        options = f"-h 127.0.0.1 -p {self.port} -k {self.folder} -F -c max_connections=100"
        self._run("pg_ctl", "-D", str(data), "-o", options, "-l", str(self.folder / "log"),
                  "-w", "-t", "60", "start")  # fmt: skip

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.folder / "data"), "-m", "immediate", "-w", "stop")

    def create_database(self, name: str) -> str:
        """A fresh database; its SQLAlchemy URL."""
        import psycopg

        with psycopg.connect(host="127.0.0.1", port=self.port, user=USER, password=PASSWORD,
                             dbname="postgres", autocommit=True) as conn:  # fmt: skip
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)


def _run_as() -> str | None:
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        pytest.skip("running as root and no `postgres` user: apt-get install -y postgresql")
    return "postgres"


def postgres_server() -> Iterator[PostgresServer]:
    """Body of a session fixture: a started server, stopped and removed afterwards."""
    bin_dir = find_bin_dir()
    if bin_dir is None or not (bin_dir / "pg_ctl").is_file():
        pytest.skip(SKIP)
    pytest.importorskip("psycopg", reason="psycopg absent: pip install 'psycopg[binary]'")
    run_as = _run_as()
    folder = Path(tempfile.mkdtemp(prefix="toolkit-pg-"))  # /tmp: readable by `postgres`
    server = PostgresServer(bin_dir, folder, free_port(), run_as)
    try:
        server.start()
        yield server
    finally:
        with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
            server.stop()
        shutil.rmtree(folder, ignore_errors=True)
