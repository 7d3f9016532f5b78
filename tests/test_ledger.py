"""`toolkit ledger`: eeg2025 submissions recorded through the CLI, the table (local vs
leaderboard, submissions left against the declared budget of 25), the PNG, the CSV, several
real processes writing at once, and bad input as one line each."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

from tests.test_report import assert_png
from toolkit.ledger import Ledger

STAGES = {1: 0.97, 2: 0.955}  # expected leaderboard nRMSE per stage (as the recipes say)


def fake_bundle(root: Path, name: str, stage: int, local: float, content: str) -> Path:
    """A bundle folder as `toolkit bundle` leaves it: submission.zip + the full manifest."""
    folder = root / "submissions" / "eeg2025" / name
    folder.mkdir(parents=True)
    with zipfile.ZipFile(folder / "submission.zip", "w") as zf:
        zf.writestr("submission.py", content)
    recipe = {"name": f"eeg2025/c1-stage{stage}", "stage": {"number": stage,
              "expected_score": STAGES[stage]}}  # fmt: skip
    manifest = {"competition": "eeg2025", "name": name, "toolkit_version": "0.1.0",
                "runs": [{"recipe": recipe, "seed": 1, "metric": "nrmse", "val_score": local,
                          "eval_score": None}]}  # fmt: skip
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return folder


@pytest.fixture
def bundles(toolkit) -> list[Path]:
    return [
        fake_bundle(toolkit.root, "s1-a", 1, 0.91, "a"),
        fake_bundle(toolkit.root, "s1-b", 1, 0.89, "b"),
        fake_bundle(toolkit.root, "s2-a", 2, 0.86, "c"),
    ]


def _add(toolkit, bundle: Path, score: str, *extra: str):
    return toolkit("ledger", "add", str(bundle), "--score", score, *extra)


def test_table_shows_local_vs_leaderboard_and_submissions_left(toolkit, bundles):
    for day, (bundle, score) in enumerate(zip(bundles, ("0.981", "0.975", "0.962"), strict=True)):
        date = f"2025-10-0{day + 1}"
        result = _add(toolkit, bundle, score, "--note", f"try {bundle.name}", "--date", date)
        assert result.exit_code == 0, result.output
    private = _add(toolkit, bundles[2], "0.970", "--board", "private")
    assert private.exit_code == 0, private.output
    table = toolkit("ledger", "--competition", "eeg2025")
    assert table.exit_code == 0, table.output
    row = next(ln for ln in table.output.splitlines() if "s2-a" in ln and "public" in ln)
    assert "2025-10-03" in row and "try s2-a" in row
    assert "0.8600" in row and "0.9620" in row and "0.1020" in row and "0.9550" in row
    # 3 bundles (a public and a private score of one bundle are one submission) of 25
    assert "eeg2025: 3 of 25 submissions used, 22 left" in table.output
    custom = toolkit("ledger", "--budget", "5")
    assert "eeg2025: 3 of 5 submissions used, 2 left" in custom.output
    entries = Ledger(toolkit.root / "submissions" / "ledger.sqlite").entries("eeg2025")
    assert [(e.bundle_name, e.board, e.score, e.stage) for e in entries] == [
        ("s1-a", "public", 0.981, 1), ("s1-b", "public", 0.975, 1),
        ("s2-a", "public", 0.962, 2), ("s2-a", "private", 0.970, 2),
    ]  # fmt: skip


def test_plot_and_csv(toolkit, bundles):
    for bundle, score in zip(bundles, ("0.981", "0.975", "0.962"), strict=True):
        assert _add(toolkit, bundle, score).exit_code == 0
    out = toolkit.root / "ledger.png"
    result = toolkit("ledger", "plot", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert_png(out)
    exported = toolkit("ledger", "export", str(toolkit.root / "ledger.csv"))
    assert exported.exit_code == 0, exported.output
    with (toolkit.root / "ledger.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert [r["bundle_name"] for r in rows] == ["s1-a", "s1-b", "s2-a"]
    assert rows[2]["score"] == "0.962" and rows[2]["local_score"] == "0.86"
    assert rows[0]["expected_score"] == "0.97" and len(rows[0]["bundle_sha256"]) == 64


WRITER = textwrap.dedent("""
    import sys
    from toolkit.ledger import Ledger, Submission
    from toolkit.errors import ToolkitError
    path, worker, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    ledger = Ledger(path)
    for i in range(count):
        ledger.add(Submission("eeg2025", "b", f"w{worker}-{i}", f"{worker}-{i}", None, None,
                              None, None, None, "public", float(i)))
    try:  # every worker also races for the same bundle: exactly one may win
        ledger.add(Submission("eeg2025", "b", "shared", "same-hash", None, None, None, None,
                              None, "public", 1.0))
        print("won")
    except ToolkitError as exc:
        print("refused" if "already recorded" in str(exc) else f"other: {exc}")
""")


def test_several_processes_write_at_once(tmp_path):
    path = tmp_path / "ledger.sqlite"
    workers, count = 6, 15
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(path), str(w), str(count)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for w in range(workers)]  # fmt: skip
    outputs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), [err for _, err in outputs]
    said = sorted(out.strip() for out, _ in outputs)
    assert said == ["refused"] * (workers - 1) + ["won"]
    entries = Ledger(path).entries()
    assert len(entries) == workers * count + 1
    assert len({e.id for e in entries}) == len(entries)
    assert {e.bundle_sha256 for e in entries if e.bundle_name != "shared"} == {
        f"{w}-{i}" for w in range(workers) for i in range(count)
    }


def _one_error(result) -> str:
    errors = [ln for ln in result.output.splitlines() if ln.startswith("error:")]
    assert result.exit_code == 2 and len(errors) == 1, result.output
    return errors[0]


def test_bad_input_is_one_line_each(toolkit, bundles, tmp_path):
    assert _add(toolkit, bundles[0], "0.98").exit_code == 0
    line = _one_error(_add(toolkit, bundles[0], "0.97"))
    assert "already recorded as submission #1" in line and "(public score 0.98)" in line
    assert "--score 'abc': not a number" in _one_error(_add(toolkit, bundles[1], "abc"))
    assert "not a finite number" in _one_error(_add(toolkit, bundles[1], "nan"))
    (tmp_path / "folder").mkdir()
    line = _one_error(_add(toolkit, tmp_path / "folder", "0.9"))
    assert f"{tmp_path / 'folder'}: not a bundle (no submission.zip" in line
    line = _one_error(_add(toolkit, tmp_path / "nothing", "0.9"))
    assert f"{tmp_path / 'nothing'}: no such bundle folder or zip" in line
    assert "--board team: expected one of public, private" in _one_error(
        _add(toolkit, bundles[1], "0.9", "--board", "team")
    )
    assert "--date 'last friday': not an ISO date" in _one_error(
        _add(toolkit, bundles[1], "0.9", "--date", "last friday")
    )
    assert len(Ledger(toolkit.root / "submissions" / "ledger.sqlite").entries()) == 1
    empty = toolkit("ledger", "plot", "--competition", "arc")
    assert empty.exit_code == 2 and "no submissions recorded to plot" in empty.output
