"""`toolkit report`: an arc run's page has learning curves, metrics and the evaluation tasks as
coloured grids, every PNG decodes, and the page renders in headless Chromium (when installed);
a run without history, or no such path, is one line."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from toolkit.config.recipes import resolve_recipe
from toolkit.engine.rundir import RunDir

CHROMIUM = Path("/usr/bin/chromium")
# ARC's blue, red and green: a grid figure that draws tasks shows some of them.
ARC_RGB = [(0x00, 0x74, 0xD9), (0xFF, 0x41, 0x36), (0x2E, 0xCC, 0x40)]


def read_png(path: Path) -> np.ndarray:
    """The PNG as an (H, W, 3) uint8 array (raises if it does not decode)."""
    from matplotlib import image

    pixels = image.imread(path, format="png")
    rgb = pixels[..., :3]
    return (rgb * 255).round().astype(np.uint8) if rgb.dtype.kind == "f" else rgb


def assert_png(path: Path, min_side: int = 200) -> np.ndarray:
    """A decodable, non-trivial picture: big enough, and far from one flat colour."""
    rgb = read_png(path)
    assert min(rgb.shape[:2]) >= min_side, f"{path.name}: {rgb.shape}"
    colours = len(np.unique(rgb.reshape(-1, 3), axis=0))
    assert colours > 8, f"{path.name}: only {colours} colours"
    inked = float((rgb.min(axis=2) < 200).mean())  # pixels that are not white-ish
    assert inked > 0.01, f"{path.name}: {inked:.2%} of it drawn"
    return rgb


def assert_page_renders(page: Path, tmp: Path) -> None:
    """Screenshot the page in headless Chromium; it must show text and the figures."""
    if not CHROMIUM.exists():
        pytest.skip("no /usr/bin/chromium (Debian package `chromium`): HTML and PNGs checked only")
    shot = tmp / "screenshot.png"
    cmd = [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           "--no-first-run", f"--user-data-dir={tmp / 'chromium-profile'}",
           "--window-size=1200,1400", f"--screenshot={shot}", page.as_uri()]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and shot.is_file(), proc.stderr[-2000:]
    rgb = assert_png(shot, min_side=1000)
    blue = np.all(np.abs(rgb.astype(int) - (0x1F, 0x77, 0xB4)) < 12, axis=2).mean()
    assert blue > 0.0001, "the screenshot shows no plotted curve (figures not loaded?)"
    shutil.rmtree(tmp / "chromium-profile", ignore_errors=True)


def test_report_of_an_arc_run_draws_curves_metrics_and_task_grids(toolkit, tmp_path):
    trained = toolkit("train", "arc/seed-7h", "--smoke")
    assert trained.exit_code == 0, trained.output
    (run,) = (toolkit.root / "runs" / "arc" / "seed-7h").iterdir()
    result = toolkit("report", str(run))
    assert result.exit_code == 0, result.output
    out = run / "report"
    page = (out / "index.html").read_text()
    pngs = {p.name.rsplit("-", 1)[-1]: p for p in out.glob("*.png")}
    assert set(pngs) == {"curves.png", "metrics.png", "grids.png"}
    for png in pngs.values():
        assert f"src='{png.name}'" in page
        assert_png(png)
    grids = read_png(pngs["grids.png"]).astype(int)
    shown = [np.all(np.abs(grids - c) < 6, axis=2).any() for c in ARC_RGB]
    assert any(shown), "the task grids show none of ARC's colours"
    assert "evaluation tasks at epoch" in page and "greedy_exact" in page
    assert_page_renders(out / "index.html", tmp_path)


def test_report_of_a_run_without_history_is_one_line(toolkit, tmp_path):
    run = RunDir(tmp_path / "run")
    run.path.mkdir()
    run.save_recipe(resolve_recipe("eeg2025/c1-baseline", smoke=True), "toolkit run x")
    result = toolkit("report", str(run.path))
    errors = [ln for ln in result.output.splitlines() if ln.startswith("error:")]
    assert result.exit_code == 2 and len(errors) == 1, result.output
    assert f"{run.path}: no history.json (was it trained?)" in errors[0]
    assert not (run.path / "report" / "index.html").exists()


def test_report_of_nothing_is_one_line(toolkit, tmp_path):
    result = toolkit("report", str(tmp_path / "nope"))
    assert result.exit_code == 2
    assert result.output.strip() == f"error: {tmp_path / 'nope'}: no such run folder or bundle"
