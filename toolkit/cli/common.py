"""Shared CLI plumbing: settings from the global options, one-line errors, the console."""

from __future__ import annotations

import contextlib
import logging
import shlex
from collections.abc import Iterator

import typer
from rich.console import Console
from rich.logging import RichHandler

from toolkit.config.settings import Settings, get_settings
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


@contextlib.contextmanager
def cli_errors() -> Iterator[None]:
    """Turn toolkit errors into one red line on stderr and the error's exit code."""
    try:
        yield
    except ToolkitError as exc:
        err_console.print(f"[bold red]error:[/] {exc}", soft_wrap=True)
        raise typer.Exit(exc.exit_code) from None
    except KeyboardInterrupt:
        err_console.print("[bold red]interrupted[/]")
        raise typer.Exit(130) from None


def command_line(*parts: str | None, sets: list[str] | None = None, flags: dict[str, bool]) -> str:
    """The command that reproduces a run, for the header of its saved recipe."""
    words = ["toolkit", *[p for p in parts if p]]
    words += [f"--{name}" for name, on in flags.items() if on]
    for item in sets or []:
        words += ["--set", item]
    return shlex.join(words)
