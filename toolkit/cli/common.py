"""Shared CLI plumbing: settings from the global options, one-line errors, the console."""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import shlex
from collections.abc import Iterator

import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.markup import escape

from toolkit.config.settings import Settings, get_settings
from toolkit.engine.interrupts import SignalInterrupt, requeue_slurm_job
from toolkit.errors import ToolkitError
from toolkit.logs import quiet_libraries


def _console(stderr: bool = False) -> Console:
    probe = Console(stderr=stderr)
    # Logs and CI output: no wrapping of long paths at 80 columns.
    width = None if probe.is_terminal else 160
    return Console(stderr=stderr, highlight=False, soft_wrap=True, width=width)


console = _console()
err_console = _console(stderr=True)


def setup_logging() -> None:
    """Warnings from the toolkit (skipped files, fallbacks) go to stderr, one line each."""
    handler = RichHandler(console=err_console, show_time=False, show_path=False)
    logging.basicConfig(level=logging.WARNING, handlers=[handler], format="%(message)s", force=True)
    quiet_libraries()


def settings_from(ctx: typer.Context) -> Settings:
    """Settings with the global CLI options (set on the root command) applied last."""
    overrides = (ctx.find_root().obj or {}) if ctx is not None else {}
    return get_settings(**overrides)


def _uid() -> str:
    """`uid N` (and `gid M`) of this process, for permission messages."""
    getuid, getgid = getattr(os, "getuid", None), getattr(os, "getgid", None)
    return f"uid {getuid()}, gid {getgid()}" if getuid and getgid else "this user"


def os_error_line(exc: OSError) -> str | None:
    """One line (what, where, how to fix) for the file-system errors a user can fix: no
    permission, a read-only file system, a full disk, a missing file or folder. None for others.
    """
    path = exc.filename if exc.filename is not None else exc.filename2
    where = f"{os.fsdecode(path)}: " if path is not None else ""
    if isinstance(exc, PermissionError) and exc.errno in (errno.EACCES, errno.EPERM):
        return (
            f"{where}permission denied for {_uid()}; give that user access (in Docker: "
            "`--user $(id -u):$(id -g)` runs as the mounted folder's owner) or point the "
            "TOOLKIT_*_DIR setting elsewhere"
        )
    if exc.errno == errno.EROFS:
        return (
            f"{where}read-only file system; mount it read-write (drop `:ro`) or point the "
            "TOOLKIT_*_DIR setting at a writable folder"
        )
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return f"{where}no space left on device; free some space or use a bigger folder"
    if isinstance(exc, FileNotFoundError | NotADirectoryError):
        return (
            f"{where}no such file or folder; check the path (in Docker: is the folder mounted, "
            "`-v HOST_PATH:CONTAINER_PATH`?)"
        )
    return None


@contextlib.contextmanager
def cli_errors() -> Iterator[None]:
    """Turn toolkit errors, and file-system errors a user can fix, into one red line on stderr
    and a non-zero exit code (the error's own, 2 for file-system errors)."""
    try:
        yield
    except ToolkitError as exc:
        err_console.print(f"[bold red]error:[/] {exc}", soft_wrap=True)
        raise typer.Exit(exc.exit_code) from None
    except KeyboardInterrupt:
        err_console.print("[bold red]interrupted[/]")
        raise typer.Exit(130) from None
    except SignalInterrupt as stop:
        requeued = requeue_slurm_job() if stop.name == "SIGUSR1" else None
        again = f"; SLURM job {requeued} requeued" if requeued else ""
        err_console.print(f"[bold red]interrupted:[/] {stop}; temporary files were removed{again}")
        raise typer.Exit(128 + stop.signum) from None
    except OSError as exc:
        line = os_error_line(exc)
        if line is None:
            raise
        err_console.print(f"[bold red]error:[/] {escape(line)}", soft_wrap=True)
        raise typer.Exit(ToolkitError.exit_code) from None


def command_line(*parts: str | None, sets: list[str] | None = None, flags: dict[str, bool]) -> str:
    """The command that reproduces a run, for the header of its saved recipe."""
    words = ["toolkit", *[p for p in parts if p]]
    words += [f"--{name}" for name, on in flags.items() if on]
    for item in sets or []:
        words += ["--set", item]
    return shlex.join(words)
