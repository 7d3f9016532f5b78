"""The submission ledger: every upload with its leaderboard score, in one SQLite file under the
submissions folder (`ledger.sqlite`).

One row per (bundle, board): the bundle's sha256 (of submission.zip) identifies a submission,
so its public score and, later, its private score are two rows of one submission, and the
same bundle cannot be recorded twice on one board. Writers are safe side by side (several
shells, a CI job): write-ahead logging, a busy timeout, and each write one immediate
transaction that checks for a duplicate and inserts.
"""

from __future__ import annotations

import csv
import io
import math
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from toolkit.bundle.manifest import bundle_folder, load_manifest, sha256
from toolkit.errors import ToolkitError
from toolkit.fileio import write_text

LEDGER = "ledger.sqlite"
UPLOAD = "submission.zip"
BOARDS = ("public", "private")
BUSY_TIMEOUT_S = 60.0

SCHEMA = """
CREATE TABLE IF NOT EXISTS submissions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    date TEXT NOT NULL,
    competition TEXT NOT NULL,
    bundle TEXT NOT NULL,
    bundle_name TEXT NOT NULL,
    bundle_sha256 TEXT NOT NULL,
    recipe TEXT,
    stage INTEGER,
    expected_score REAL,
    metric TEXT,
    local_score REAL,
    board TEXT NOT NULL CHECK (board IN ('public', 'private')),
    score REAL NOT NULL,
    note TEXT NOT NULL DEFAULT '',
    UNIQUE (bundle_sha256, board)
)
"""


@dataclass(frozen=True)
class Submission:
    """One recorded upload and its leaderboard score."""

    competition: str
    bundle: str
    bundle_name: str
    bundle_sha256: str
    recipe: str | None
    stage: int | None
    expected_score: float | None
    metric: str | None
    local_score: float | None
    board: Literal["public", "private"]
    score: float
    note: str = ""
    date: str = ""
    id: int | None = None


COLUMNS = [f.name for f in fields(Submission)]
CSV_COLUMNS = ["id", "date", *[c for c in COLUMNS if c not in ("id", "date")]]


def parse_score(text: str, what: str = "--score") -> float:
    """A finite number, or one line saying it is not."""
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise ToolkitError(f"{what} {text!r}: not a number (e.g. {what} 0.9812)") from None
    if not math.isfinite(value):
        raise ToolkitError(f"{what} {text!r}: not a finite number")
    return value


def _local_score(record: dict[str, Any]) -> tuple[str | None, float | None]:
    """(what, value): the competition's own score when the run computed it, else validation."""
    if record.get("eval_score") is not None:
        return "eval_score", float(record["eval_score"])
    if record.get("val_score") is not None:
        return f"val_{record.get('metric')}", float(record["val_score"])
    return record.get("metric"), None


def from_bundle(
    bundle: Path, score: float, board: str = "public", note: str = "", date: str = ""
) -> Submission:
    """A submission of `bundle` (a folder or its zip): competition, hash, recipe, stage and
    local score come from its manifest; the local score is that of the bundle's first run."""
    if board not in BOARDS:
        raise ToolkitError(f"--board {board}: expected one of {', '.join(BOARDS)}")
    if date:
        try:
            datetime.fromisoformat(date)
        except ValueError:
            raise ToolkitError(f"--date {date!r}: not an ISO date (e.g. 2025-10-31)") from None
    path = Path(bundle).expanduser()
    if not path.exists():
        raise ToolkitError(f"{path}: no such bundle folder or zip")
    folder = bundle_folder(path)
    upload = folder / UPLOAD
    if not upload.is_file():
        raise ToolkitError(f"{path}: not a bundle (no {UPLOAD}; give a folder under submissions/)")
    manifest = load_manifest(folder)
    if "competition" not in manifest:
        raise ToolkitError(f"{folder}: its manifest names no competition (not a toolkit bundle?)")
    records = manifest.get("runs") or []
    first = records[0] if records else {}
    recipe = first.get("recipe") or manifest.get("recipe") or {}
    metric, local = _local_score(first)
    stage = recipe.get("stage") or {}
    return Submission(
        competition=manifest["competition"],
        bundle=str(folder),
        bundle_name=str(manifest.get("name", folder.name)),
        bundle_sha256=sha256(upload),
        recipe=recipe.get("name"),
        stage=stage.get("number"),
        expected_score=stage.get("expected_score"),
        metric=metric,
        local_score=local,
        board=board,  # type: ignore[arg-type]
        score=score,
        note=note,
        date=date,
    )


class Ledger:
    """The ledger file; every method opens its own short connection."""

    def __init__(self, path: Path):
        self.path = Path(path)

    @classmethod
    def under(cls, submissions_dir: Path) -> Ledger:
        return cls(Path(submissions_dir) / LEDGER)

    @contextmanager
    def _connect(self, write: bool) -> Iterator[sqlite3.Connection]:
        if not write and not self.path.is_file():  # nothing recorded yet
            empty = sqlite3.connect(":memory:")
            empty.execute(SCHEMA)
            yield empty
            empty.close()
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        con = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        try:
            con.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
            if write:
                con.execute("PRAGMA journal_mode = WAL")
            con.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            con.execute(SCHEMA)
            try:
                yield con
            except BaseException:
                con.execute("ROLLBACK")
                raise
            con.execute("COMMIT")
        except sqlite3.DatabaseError as exc:
            raise ToolkitError(f"{self.path}: the ledger cannot be used ({exc})") from None
        finally:
            con.close()

    def add(self, entry: Submission) -> Submission:
        """Record `entry` (dated now unless it has a date); a bundle already recorded on the
        same board is refused with the earlier record."""
        date = entry.date or datetime.now(UTC).isoformat(timespec="seconds")
        with self._connect(write=True) as con:
            earlier = con.execute(
                "SELECT id, date, score FROM submissions WHERE bundle_sha256 = ? AND board = ?",
                (entry.bundle_sha256, entry.board),
            ).fetchone()
            if earlier is not None:
                raise ToolkitError(
                    f"{entry.bundle}: already recorded as submission #{earlier[0]} on "
                    f"{earlier[1][:10]} ({entry.board} score {earlier[2]}); the same bundle "
                    "counts once per board"
                )
            row = {**asdict(entry), "date": date}
            row.pop("id")
            names = ", ".join(row)
            marks = ", ".join("?" for _ in row)
            cursor = con.execute(
                f"INSERT INTO submissions ({names}) VALUES ({marks})", tuple(row.values())
            )
            return Submission(**row, id=cursor.lastrowid)

    def entries(self, competition: str | None = None) -> list[Submission]:
        """Every record (of one competition), oldest first."""
        query = f"SELECT {', '.join(COLUMNS)} FROM submissions"
        args: tuple[Any, ...] = ()
        if competition:
            query += " WHERE competition = ?"
            args = (competition,)
        with self._connect(write=False) as con:
            rows = con.execute(query + " ORDER BY date, id", args).fetchall()
        return [Submission(**dict(zip(COLUMNS, row, strict=True))) for row in rows]

    def write_csv(self, target: Path, competition: str | None = None) -> int:
        """Every record as CSV (atomically); returns the number of rows."""
        entries = self.entries(competition)
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        writer.writerows(asdict(e) for e in entries)
        write_text(target, buffer.getvalue())
        return len(entries)


def submissions_used(entries: list[Submission]) -> int:
    """Distinct bundles: a public and a private score of one bundle are one submission."""
    return len({e.bundle_sha256 for e in entries})


def submissions_left(entries: list[Submission], budget: int | None) -> int | None:
    return None if budget is None else budget - submissions_used(entries)
