"""Remote (s3://) and local data sources, against moto's real S3 server on 127.0.0.1.

The bucket holds the HBN-EEG BIDS layout (`s3://fcp-indi/data/Projects/HBN/BIDS_EEG/cmi_bids_R1`)
with small fake EEG files. Clients go through a counting proxy (tests/s3_server.py), so the tests
can prove that cached files are not downloaded again and inject transient 503 errors. Requests are
anonymous (unsigned), as for the real public bucket: moto serves public-read objects to them.
"""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import shutil
import socket
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import REAL_METADATA
from tests.s3_server import S3Proxy, S3Server
from toolkit.config.settings import get_settings
from toolkit.data import file_cache
from toolkit.data.remote import CacheConfig, LocalSource, S3Source, open_source
from toolkit.data.sources import local_root
from toolkit.errors import DataError

BUCKET = "fcp-indi"
PREFIX = "data/Projects/HBN/BIDS_EEG/cmi_bids_R1"
R1 = f"s3://{BUCKET}/{PREFIX}"
SUBJECTS = ["NDARAC904DMU", "NDARAB793GL3", "NDARAE012DGA"]
CCD = "contrastChangeDetection"


def _eeg(subject: str, task: str, run: int | None = None) -> str:
    run_part = f"_run-{run}" if run else ""
    return f"sub-{subject}/eeg/sub-{subject}_task-{task}{run_part}_eeg.set"


def write_bids(root: Path) -> Path:
    """A tiny BIDS tree in the release layout: real participants.tsv, fake EEG bytes."""
    shutil.copy(REAL_METADATA / "participants.tsv", root / "participants.tsv")
    for i, subject in enumerate(SUBJECTS):
        for rel in (_eeg(subject, CCD, 1), _eeg(subject, CCD, 2), _eeg(subject, "RestingState")):
            path = root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes((hashlib.sha256(rel.encode()).digest() * 32)[: 1000 + i])
            events = path.with_name(path.name.replace("_eeg.set", "_events.tsv"))
            events.write_text("onset\tduration\tvalue\n0.0\tn/a\tbreak cnt\n")
    return root


@pytest.fixture(scope="module")
def bids(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_bids(tmp_path_factory.mktemp("bids"))


@pytest.fixture(scope="module")
def s3(bids: Path) -> Iterator[S3Server]:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    with S3Server() as server:
        server.upload(bids, BUCKET, PREFIX)
        yield server


@pytest.fixture
def proxy(s3: S3Server) -> Iterator[S3Proxy]:
    with S3Proxy(s3.endpoint) as p:
        yield p


@pytest.fixture
def open_s3(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, proxy: S3Proxy
) -> Callable[..., S3Source]:
    """Open an S3Source the way a run does: settings from TOOLKIT_* env (endpoint: the proxy)."""
    monkeypatch.chdir(tmp_path)  # no stray .env
    monkeypatch.setenv("TOOLKIT_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("TOOLKIT_S3__ENDPOINT_URL", proxy.endpoint)
    monkeypatch.setenv("TOOLKIT_S3__ANON", "true")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")

    def make(url: str = R1, max_gb: float = 1.0, **env: str) -> S3Source:
        for key, value in env.items():
            monkeypatch.setenv(f"TOOLKIT_S3__{key.upper()}", value)
        source = open_source(url, get_settings(), CacheConfig(max_gb=max_gb))
        assert isinstance(source, S3Source)
        return source

    return make


def cached_files(root: Path) -> list[str]:
    """Every file under the cache folder (temporary ones included), relative, sorted."""
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


# -- LocalSource / routing -------------------------------------------------------------------


def test_local_source_reads_a_folder(tmp_path: Path, bids: Path, monkeypatch: pytest.MonkeyPatch):
    root = tmp_path / "data" / "R1"
    shutil.copytree(bids, root)
    monkeypatch.setenv("TOOLKIT_DATA_DIR", str(tmp_path / "data"))
    source = open_source("R1", get_settings(), CacheConfig())
    assert isinstance(source, LocalSource)
    assert source.glob(f"sub-*/eeg/*_task-{CCD}*_eeg.set") == sorted(
        _eeg(s, CCD, r) for s in SUBJECTS for r in (1, 2)
    )
    assert source.read_text("participants.tsv").startswith("participant_id\t")
    rest = _eeg(SUBJECTS[0], "RestingState")
    assert source.fetch(rest) == root / rest
    before = source.fingerprint("participants.tsv")
    (root / "participants.tsv").write_text("participant_id\nsub-X\n")
    assert source.fingerprint("participants.tsv") != before
    with pytest.raises(DataError, match="no such file"):
        source.fetch("sub-NONE/eeg/x.set")
    with pytest.raises(DataError, match="not a relative file name"):
        source.fetch("../outside.txt")


def test_routing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("TOOLKIT_CACHE_DIR", str(tmp_path / "cache"))
    settings = get_settings()
    assert isinstance(open_source(R1, settings, CacheConfig()), S3Source)  # no request yet
    with pytest.raises(DataError, match="open_source"):
        local_root(R1, settings)
    with pytest.raises(DataError, match="not supported"):
        open_source("https://example.org/data", settings, CacheConfig())
    with pytest.raises(DataError, match="no bucket"):
        open_source("s3://", settings, CacheConfig())


# -- S3Source ------------------------------------------------------------------------------


def test_glob_read_text_fetch(open_s3, proxy: S3Proxy, bids: Path, tmp_path: Path):
    source = open_s3()
    assert source.url == R1
    runs = source.glob(f"sub-*/eeg/*_task-{CCD}*_eeg.set")
    assert runs == sorted(_eeg(s, CCD, r) for s in SUBJECTS for r in (1, 2))
    assert source.glob("sub-NDARAC904DMU/eeg/*_events.tsv") == sorted(
        p.relative_to(bids).as_posix() for p in bids.glob("sub-NDARAC904DMU/eeg/*_events.tsv")
    )
    assert source.read_text("participants.tsv") == (bids / "participants.tsv").read_text()
    path = source.fetch(runs[0])
    assert path == tmp_path / "cache" / "remote" / BUCKET / PREFIX / runs[0]
    assert path.read_bytes() == (bids / runs[0]).read_bytes()
    assert source.fingerprint(runs[0]) != source.fingerprint(runs[1])
    assert proxy.requests, "the client did not go through the proxy"
    assert not any(r.signed for r in proxy.requests), "requests should be anonymous"


def test_cached_file_is_not_downloaded_again(open_s3, proxy: S3Proxy):
    rel = _eeg(SUBJECTS[1], CCD, 1)
    first = open_s3()
    path = first.fetch(rel)
    assert proxy.object_gets(rel) == 1
    assert first.fetch(rel) == path  # second call, same instance
    seen = len(proxy.requests)
    second = open_s3()  # a second run: nothing listed yet, so no request at all
    assert second.fetch(rel) == path
    assert len(proxy.requests) == seen
    third = open_s3()  # a run that lists first: the listing confirms the cached copy
    assert rel in third.glob("sub-*/eeg/*.set")
    assert third.fetch(rel) == path
    assert third.fingerprint(rel) == first.fingerprint(rel)
    assert proxy.object_gets(rel) == 1


def test_changed_object_is_fetched_again(open_s3, proxy: S3Proxy, s3: S3Server, tmp_path: Path):
    folder = tmp_path / "v1"
    folder.mkdir()
    (folder / "data.bin").write_bytes(b"old")
    s3.upload(folder, BUCKET, "changing")
    assert open_s3(f"s3://{BUCKET}/changing").fetch("data.bin").read_bytes() == b"old"
    time.sleep(1.1)  # LastModified has one-second resolution
    (folder / "data.bin").write_bytes(b"new")  # same size: the newer mtime tells
    s3.upload(folder, BUCKET, "changing")
    source = open_s3(f"s3://{BUCKET}/changing")
    source.glob("*")
    assert source.fetch("data.bin").read_bytes() == b"new"
    assert proxy.object_gets("changing/data.bin") == 2


def test_eviction_keeps_most_recently_used(open_s3, proxy: S3Proxy, tmp_path: Path):
    # Files of 1000, 1001 and 1002 bytes; the bound holds two of them.
    source = open_s3(max_gb=2500e-9)
    a, b, c = (_eeg(s, "RestingState") for s in SUBJECTS)
    remote = tmp_path / "cache" / "remote" / BUCKET / PREFIX
    killed = remote / ".left-by-a-killed-download.set.abc.tmp"  # neither counted nor kept
    killed.parent.mkdir(parents=True)
    killed.write_bytes(b"x" * 5000)
    os.utime(killed, (time.time() - 2 * 3600,) * 2)
    source.fetch(a)
    assert not killed.exists()
    source.fetch(b)
    source.fetch(a)  # a is now more recent than b
    source.fetch(c)  # evicts b, the least recently used
    assert cached_files(remote) == sorted([a, c])
    assert sum(p.stat().st_size for p in remote.rglob("*") if p.is_file()) <= 2500
    assert not (remote / f"sub-{SUBJECTS[1]}").exists(), "emptied folders are removed"
    source.fetch(b)  # back on demand (evicting a, now the least recent)
    assert cached_files(remote) == sorted([b, c])
    assert proxy.object_gets(b) == 2
    with pytest.raises(DataError, match="larger than the whole remote cache"):
        open_s3(max_gb=500e-9).fetch(a)


def test_transient_5xx_errors_are_retried(open_s3, proxy: S3Proxy):
    rel = _eeg(SUBJECTS[2], CCD, 2)
    source = open_s3()
    proxy.fail_next_gets(2, status=503)
    assert source.fetch(rel).stat().st_size == 1002
    assert proxy.object_gets(rel, status=503) == 2
    assert proxy.object_gets(rel, status=200) == 1


def test_persistent_5xx_errors_fail_after_bounded_attempts(open_s3, proxy: S3Proxy, tmp_path):
    rel = _eeg(SUBJECTS[2], CCD, 1)
    source = open_s3(max_attempts="2")
    proxy.fail_next_gets(100, status=500)
    with pytest.raises(DataError, match=r"S3 request failed after retries") as info:
        source.fetch(rel)
    assert f"{R1}/{rel}" in str(info.value)
    assert proxy.object_gets(rel, status=500) == 2
    assert cached_files(tmp_path / "cache") == []


def test_missing_key_names_the_url(open_s3, proxy: S3Proxy):
    rel = "sub-NDARNONE0000/eeg/sub-NDARNONE0000_task-x_eeg.set"
    with pytest.raises(DataError, match=r"not found on http://127\.0\.0\.1:") as info:
        open_s3().fetch(rel)  # no listing yet: asks the server (HEAD)
    assert str(info.value).startswith(f"{R1}/{rel}: ")
    listed = open_s3()
    listed.glob("*.tsv")
    seen = len(proxy.requests)
    with pytest.raises(DataError, match=r"not found on http://127\.0\.0\.1:") as info:
        listed.read_text("missing.tsv")  # the listing answers: no request
    assert f"{R1}/missing.tsv" in str(info.value)
    assert len(proxy.requests) == seen
    with pytest.raises(DataError, match="no files under this prefix"):
        open_s3(f"s3://{BUCKET}/data/Projects/HBN/BIDS_EEG/cmi_bids_R99").glob("*")


def test_unreachable_endpoint_fails_fast(open_s3):
    with socket.socket() as sock:  # a port with nothing listening
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    source = open_s3(endpoint_url=f"http://127.0.0.1:{port}", max_attempts="2")
    start = time.perf_counter()
    with pytest.raises(DataError, match=rf"cannot reach S3 endpoint http://127\.0\.0\.1:{port}"):
        source.fetch("participants.tsv")
    assert time.perf_counter() - start < 15


@pytest.mark.parametrize(
    ("code", "message"), [(errno.ENOSPC, "is full"), (errno.EIO, "cannot write")]
)
def test_full_disk_leaves_no_partial_file(
    open_s3, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, code: int, message: str
):
    class FullDisk:
        """A file that takes 100 bytes, then fails (the disk is full, or broken)."""

        def __init__(self, path: Path):
            self.fh = path.open("wb")

        def write(self, data: bytes) -> int:
            self.fh.write(data[:100])
            self.fh.flush()
            raise OSError(code, os.strerror(code))

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.fh.close()

    rel = _eeg(SUBJECTS[0], CCD, 1)
    source = open_s3()
    with monkeypatch.context() as patch:
        patch.setattr(file_cache, "_open_for_writing", FullDisk)
        with pytest.raises(DataError, match=message) as info:
            source.fetch(rel)
    assert str(tmp_path / "cache" / "remote") in str(info.value)
    assert cached_files(tmp_path / "cache") == []  # no half file, no temporary file
    assert source.fetch(rel).stat().st_size == 1000  # and the next try works


def test_progress_is_one_log_line_per_file_when_not_a_tty(
    open_s3,
    s3: S3Server,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
):
    folder = tmp_path / "big"
    folder.mkdir()
    (folder / "big_eeg.set").write_bytes(b"\0" * 1_500_000)
    (folder / "other_eeg.set").write_bytes(b"\1" * 1_500_000)
    s3.upload(folder, BUCKET, "progress")
    source = open_s3(f"s3://{BUCKET}/progress")
    with caplog.at_level(logging.INFO, logger="toolkit.data.remote"):
        source.fetch("big_eeg.set")
        source.fetch("big_eeg.set")  # cached: no second line
        lines = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
        assert len(lines) == 1
        assert lines[0].startswith(f"fetched s3://{BUCKET}/progress/big_eeg.set (1.5 MB in ")
        assert lines[0].endswith("/s)")
        # On a terminal a rich bar reports instead of the log line.
        monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
        assert source.fetch("other_eeg.set").stat().st_size == 1_500_000
        assert len([r for r in caplog.records if r.levelno == logging.INFO]) == 1
