"""A stage recipe streaming HBN-EEG from an S3-compatible server (moto, on 127.0.0.1) in the
real bucket layout: the first run fetches each EEG file once, a second run fetches nothing."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.s3_server import S3Proxy, S3Server
from toolkit.competitions.eeg2025.synth import write_synthetic_bids

BUCKET, PREFIX = "fcp-indi", "data/Projects/HBN/BIDS_EEG/cmi_bids_R1"
SOURCE = "data.source=s3://fcp-indi/data/Projects/HBN/BIDS_EEG/cmi_bids_{release}"


@pytest.fixture(scope="module")
def s3_release(tmp_path_factory):
    """R1 as synthetic BIDS on a local S3 server, behind a request-counting proxy."""
    tree = write_synthetic_bids(tmp_path_factory.mktemp("r1"), subjects=5, trials_per_run=10)
    with S3Server() as server:
        server.upload(tree, BUCKET, PREFIX)
        with S3Proxy(server.endpoint) as proxy:
            yield proxy, len(list(tree.glob("sub-*/eeg/*_eeg.set")))


def _train(toolkit, proxy, *extra: str):
    toolkit.env["TOOLKIT_S3__ENDPOINT_URL"] = proxy.endpoint
    toolkit.env["TOOLKIT_CACHE_DIR"] = str(toolkit.root / "cache")  # this test's alone
    return toolkit(
        "train", "eeg2025/c1-stage1-r1-20subj", "--smoke", "--set", SOURCE,
        "--set", "data.releases=[R1]", "--set", "train.epochs=1", *extra,
    )  # fmt: skip


@pytest.mark.slow
def test_stage1_streams_from_s3_then_reads_only_the_cache(toolkit, s3_release):
    proxy, recordings = s3_release
    first = _train(toolkit, proxy)
    assert first.exit_code == 0, first.output
    assert proxy.object_gets("_eeg.set") == recordings  # each EEG file fetched exactly once
    gets = proxy.object_gets()

    second = _train(toolkit, proxy)
    assert second.exit_code == 0, second.output
    assert proxy.object_gets() == gets  # the second run fetches nothing at all

    # Without the window cache, files still come from the local file cache, not from S3.
    shutil.rmtree(Path(toolkit.env["TOOLKIT_CACHE_DIR"]) / "windows")
    third = _train(toolkit, proxy)
    assert third.exit_code == 0, third.output
    assert proxy.object_gets() == gets


def test_missing_release_on_s3_is_one_clear_line(toolkit, s3_release):
    proxy, _ = s3_release
    result = _train(toolkit, proxy, "--set", "data.releases=[R7]")
    assert result.exit_code == 2
    last = result.output.strip().splitlines()[-1]
    assert "s3://fcp-indi/data/Projects/HBN/BIDS_EEG/cmi_bids_R7" in last
    assert "participants.tsv" in last


def test_unreachable_endpoint_names_it(toolkit):
    toolkit.env["TOOLKIT_S3__ENDPOINT_URL"] = "http://127.0.0.1:9"  # discard port: refused
    toolkit.env["TOOLKIT_S3__MAX_ATTEMPTS"] = "1"
    result = toolkit("train", "eeg2025/c1-stage1-r1-20subj", "--smoke", "--set", SOURCE)
    assert result.exit_code == 2
    assert "127.0.0.1:9" in result.output.strip().splitlines()[-1]
