"""User-facing errors: one clear line (what, where, how to fix), printed without a traceback."""

from __future__ import annotations


class ToolkitError(Exception):
    """An error caused by input the user can fix; the CLI prints it as one line and exits 2."""

    exit_code = 2


class RecipeError(ToolkitError):
    """A recipe file is missing, malformed, or does not match the schema."""


class DataError(ToolkitError):
    """Input data is missing, corrupt, or empty after filtering."""


class TrainingError(ToolkitError):
    """Training cannot go on (non-finite loss, nothing to resume)."""


class TrainingInterrupted(ToolkitError):
    """Training was stopped by a signal; a checkpoint was saved for --resume. The exit code is
    the shell's for that signal: 128 + its number (130 for Ctrl-C, 143 for SIGTERM)."""

    exit_code = 130

    def __init__(self, message: str, signum: int = 2):
        super().__init__(message)
        self.exit_code = 128 + signum


class ExportError(ToolkitError):
    """Export failed or the exported model disagrees with the eager model."""


class VerifyError(ToolkitError):
    """A bundle failed verification (exit 1: the bundle, not the command, is wrong)."""

    exit_code = 1
