"""`toolkit reproduce`: a smoke bundle made here rebuilds byte for byte (so two CPU runs of one
recipe give identical bundles); a changed seed is reported file by file; bad input is one line.
The bundle's report is drawn here too (it needs the same trained run)."""

from __future__ import annotations

import json
import re
import shutil
import zipfile
from pathlib import Path

import pytest

import toolkit as toolkit_package
from tests.conftest import Toolkit, bundle_path
from tests.test_report import assert_page_renders, assert_png
from toolkit.bundle.archive import FIXED_TIME
from toolkit.bundle.manifest import code_commit
from toolkit.competitions.eeg2025.synth import SYNTH_VERSION

pytestmark = pytest.mark.slow
RECIPE = "eeg2025/c1-baseline"
REPO = Path(toolkit_package.__file__).resolve().parent.parent


@pytest.fixture(scope="module", autouse=True)
def pinned_commit():
    """This checkout's commit as it was when the module started: other people committing while
    the tests train would otherwise change the manifest between bundle and rebuild."""
    commit = code_commit()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("toolkit.bundle.manifest.code_commit", lambda: commit)
        patch.setattr("toolkit.reproduce.code_commit", lambda: commit)
        yield commit


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory, shared_cache: Path) -> tuple[Toolkit, Path]:
    """One smoke bundle (2 epochs: the cheapest recipe, made cheaper) and its toolkit."""
    tk = Toolkit(tmp_path_factory.mktemp("reproduce"), shared_cache)
    result = tk("run", RECIPE, "--smoke", "--set", "train.epochs=2")
    assert result.exit_code == 0, result.output
    return tk, bundle_path(result.output)


def bundle_bytes(folder: Path) -> dict[str, bytes]:
    """Every file a bundle folder holds except the manifest beside the zip (it records when and
    from where), plus each zip entry as `zip:NAME`."""
    files = {p.relative_to(folder).as_posix(): p.read_bytes()
             for p in folder.rglob("*") if p.is_file() and p.name != "manifest.json"
             and "report" not in p.relative_to(folder).parts}  # fmt: skip
    with zipfile.ZipFile(folder / "submission.zip") as zf:
        files.update({f"zip:{n}": zf.read(n) for n in zf.namelist()})
    return files


def _zip_payloads(data: bytes) -> list[bytes]:
    """A file's bytes, and, for a zip (a TorchScript archive), each entry's uncompressed bytes."""
    import io

    out = [data]
    if data[:2] == b"PK":
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            out += [zf.read(n) for n in zf.namelist()]
    return out


def test_the_upload_holds_no_time_no_path_and_fixed_entries(smoke):
    tk, bundle = smoke
    with zipfile.ZipFile(bundle / "submission.zip") as zf:
        infos = zf.infolist()
        entries = {i.filename: zf.read(i) for i in infos}
    assert [i.filename for i in infos] == sorted(i.filename for i in infos)
    assert {i.date_time for i in infos} == {FIXED_TIME}
    assert {i.external_attr >> 16 for i in infos} == {0o100644}
    forbidden = [str(REPO).encode(), str(tk.root).encode(), tk.env["TOOLKIT_CACHE_DIR"].encode()]
    for name, data in entries.items():
        for payload in _zip_payloads(data):
            found = [f for f in forbidden if f in payload]
            assert not found, f"{name} holds the local path {found[0]!r}"
    inner = json.loads(entries["manifest.json"])
    assert "created" not in inner
    assert not re.search(r"\d{4}-\d\d-\d\dT\d\d:\d\d", entries["manifest.json"].decode())
    outer = json.loads((bundle / "manifest.json").read_text())
    assert outer["created"] and Path(outer["runs"][0]["run"]).is_dir()  # the full record beside


def test_the_manifest_fingerprints_the_data(smoke):
    _, bundle = smoke
    with zipfile.ZipFile(bundle / "submission.zip") as zf:
        (record,) = json.loads(zf.read("manifest.json"))["runs"]
    assert record["seed"] == 7 and record["recipe"]["name"] == RECIPE
    data = record["data"]
    (source,) = data["sources"]
    assert source["kind"] == "synthetic" and source["source"].startswith("synthetic/eeg2025-")
    names = [f["file"] for f in source["files"]]
    assert "participants.tsv" in names
    suffixes = {n.rsplit("_", 1)[-1] for n in names}
    assert {"eeg.set", "events.tsv"} <= suffixes
    assert all(f["size"] > 0 for f in source["files"])
    assert data["generator"] == {"name": "eeg2025.synth", "version": SYNTH_VERSION, "subjects": 8,
                                 "runs": 1, "trials_per_run": 24, "seed": 0}  # fmt: skip
    assert data["preprocessing"]["sfreq"] == 100 and data["preprocessing"]["reference"] == "Cz"


def test_reproduce_rebuilds_the_bundle_byte_for_byte(smoke, tmp_path):
    tk, bundle = smoke
    work = tmp_path / "work"
    result = tk("reproduce", str(bundle), "--workdir", str(work))
    assert result.exit_code == 0, result.output
    rebuilt = work / "submissions" / "eeg2025" / bundle.name
    before, after = bundle_bytes(bundle), bundle_bytes(rebuilt)
    assert set(before) == set(after) and len(before) >= 8
    assert [n for n in before if before[n] != after[n]] == []  # every byte, every file
    assert f"reproduced: all {len(before)} files are byte-identical" in result.output
    assert "code commit" in result.output  # reported, whatever its state


def test_a_changed_seed_names_exactly_the_files_that_differ(smoke, tmp_path):
    tk, bundle = smoke
    work = tmp_path / "work"
    result = tk("reproduce", str(bundle), "--workdir", str(work), "--set", "train.seed=8")
    assert result.exit_code == 1, result.output
    before = bundle_bytes(bundle)
    after = bundle_bytes(work / "submissions" / "eeg2025" / bundle.name)
    differ = sorted(n for n in before if before[n] != after.get(n))
    line = next(ln for ln in result.output.splitlines() if ln.startswith("not reproduced"))
    assert line.split("files differ: ", 1)[1].split(", ") == differ
    assert "zip:weights_challenge_1.pt" in differ and "zip:submission.py" not in differ
    row = next(ln for ln in result.output.splitlines() if "zip:weights_challenge_1.pt" in ln)
    gap = float(re.search(r"max \|output difference\| ([0-9.e+-]+)", row).group(1))
    assert gap > 0


def test_report_of_the_bundle_draws_its_run(smoke, tmp_path):
    tk, bundle = smoke
    out = tmp_path / "report"
    result = tk("report", str(bundle), "--out", str(out))
    assert result.exit_code == 0, result.output
    page = (out / "index.html").read_text()
    pngs = sorted(out.glob("*.png"))
    kinds = {p.name.rsplit("-", 1)[-1] for p in pngs}
    assert kinds == {"curves.png", "metrics.png", "true.png"}  # ..., predicted-vs-true
    for png in pngs:
        assert f"src='{png.name}'" in page
        assert_png(png)
    assert "nRMSE" in page and "train_mean" in page and "synthetic/eeg2025-" in page
    assert_page_renders(out / "index.html", tmp_path)


def _copy(bundle: Path, tmp_path: Path, edit) -> Path:
    copy = tmp_path / "bundle"
    shutil.copytree(bundle, copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    edit(manifest)
    (copy / "manifest.json").write_text(json.dumps(manifest))
    return copy


def _one_error(result) -> str:
    errors = [ln for ln in result.output.splitlines() if ln.startswith("error:")]
    assert result.exit_code == 2 and len(errors) == 1, result.output
    return errors[0]


def test_a_bundle_without_a_manifest_is_one_line(toolkit, tmp_path):
    folder = tmp_path / "not-a-bundle"
    folder.mkdir()
    with zipfile.ZipFile(folder / "submission.zip", "w") as zf:
        zf.writestr("submission.py", "print('hi')\n")
    line = _one_error(toolkit("reproduce", str(folder)))
    assert "no manifest.json beside or inside submission.zip" in line


def test_a_manifest_of_another_toolkit_version_is_one_line(toolkit, smoke, tmp_path):
    copy = _copy(smoke[1], tmp_path, lambda m: m.update(toolkit_version="0.0.1"))
    line = _one_error(toolkit("reproduce", str(copy)))
    assert f"manifest from toolkit 0.0.1, this is toolkit {toolkit_package.__version__}" in line


def test_data_no_longer_reachable_is_one_line(toolkit, smoke, tmp_path):
    def gone(manifest: dict) -> None:
        manifest["runs"][0]["data"]["sources"] = [{
            "source": "hbn/cmi_bids_R1", "kind": "local",
            "files": [{"file": "participants.tsv", "size": 10, "sha256": "0" * 64}],
        }]  # fmt: skip

    line = _one_error(toolkit("reproduce", str(_copy(smoke[1], tmp_path, gone))))
    missing = toolkit.root / "data" / "hbn" / "cmi_bids_R1" / "participants.tsv"
    assert f"no longer reachable: {missing} (of data source hbn/cmi_bids_R1) is missing" in line


def test_a_workdir_that_is_not_ours_is_refused(toolkit, smoke, tmp_path):
    work = tmp_path / "precious"
    work.mkdir()
    (work / "notes.txt").write_text("keep me")
    line = _one_error(toolkit("reproduce", str(smoke[1]), "--workdir", str(work)))
    assert "not empty and not made by `toolkit reproduce`" in line
    assert (work / "notes.txt").read_text() == "keep me"
