"""The parts that make bundles reproducible, without training: a deterministic zip, model
files without call stacks or paths, the upload's manifest without times or paths, and data
fingerprints (what was read, and what is no longer there)."""

from __future__ import annotations

import hashlib
import os
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from toolkit.bundle.archive import FIXED_TIME, write_zip
from toolkit.bundle.manifest import upload_manifest
from toolkit.config.settings import Settings
from toolkit.data.fingerprint import DataFingerprint, unreachable
from toolkit.data.remote import LocalSource
from toolkit.export.deterministic import scrub_onnx
from toolkit.export.models import run_onnx, run_torchscript, to_onnx, to_torchscript

HERE = str(Path(__file__).resolve().parent).encode()


def _tree(root: Path, mode: int, mtime: int) -> Path:
    (root / "sub").mkdir(parents=True)
    for name, text in (("b.txt", "bee"), ("a.py", "print(1)\n"), ("sub/c.bin", "\0" * 999)):
        path = root / name
        path.write_text(text)
        path.chmod(mode)
        os.utime(path, (mtime, mtime))
    return root


def test_zip_bytes_depend_only_on_the_files(tmp_path):
    one = write_zip(_tree(tmp_path / "one", 0o600, 1_000_000_000), tmp_path / "one.zip")
    two = write_zip(_tree(tmp_path / "two", 0o755, 1_700_000_000), tmp_path / "two.zip")
    assert one.read_bytes() == two.read_bytes()
    with zipfile.ZipFile(one) as zf:
        infos = zf.infolist()
        assert [i.filename for i in infos] == ["a.py", "b.txt", "sub/c.bin"]
        assert zf.read("sub/c.bin") == b"\0" * 999
    assert {i.date_time for i in infos} == {FIXED_TIME}
    assert {i.external_attr >> 16 for i in infos} == {0o100644}


class Tiny(nn.Module):
    """Two variants of one class (BatchNorm1d with and without affine weights): TorchScript
    gives the second a mangled name, numbered by a per-process counter."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.linear = nn.Linear(6, 2)
        self.norms = nn.Sequential(nn.BatchNorm1d(2), nn.BatchNorm1d(2, affine=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norms(torch.tanh(self.linear(x)) * 2)


def _export_directly(writer, path: Path) -> Path:
    return writer(Tiny().eval(), torch.ones(3, 6), path)


def _export_from_deeper(writer, path: Path) -> Path:
    def inner() -> Path:
        return _export_directly(writer, path)

    return inner()  # another call stack: once recorded in the files


@pytest.mark.parametrize(("writer", "runner", "name"), [
    (to_torchscript, run_torchscript, "model.ts"),
    (to_onnx, run_onnx, "model.onnx"),
])  # fmt: skip
def test_exports_hold_no_call_stack_or_path(tmp_path, writer, runner, name):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a = _export_directly(writer, tmp_path / "a" / name)
    b = _export_from_deeper(writer, tmp_path / "b" / name)
    assert a.read_bytes() == b.read_bytes()  # the second export in this process: the same
    payload = a.read_bytes()
    if name.endswith(".ts"):
        with zipfile.ZipFile(a) as zf:
            assert not [n for n in zf.namelist() if n.endswith(".debug_pkl")]
            payload += b"".join(zf.read(n) for n in zf.namelist())
    assert HERE not in payload and b".py(" not in payload  # no path, no "file.py(line)" frame
    x = np.linspace(-1, 1, 12, dtype=np.float32).reshape(2, 6)
    with torch.no_grad():
        expected = Tiny().eval()(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(runner(a, x), expected, atol=1e-6)


def test_onnx_loses_memory_addresses_and_keeps_the_rest(tmp_path):
    import onnx
    from onnx import TensorProto, helper

    node = helper.make_node("Min", ["a", "b"], ["y"], name="node_sym_min")
    for key, value in (("namespace", "hook/sym_min: <function sym_min at 0x7f53441251c0>"),
                       ("pkg.torch.onnx.stack_trace", 'File "/home/me/m.py", line 3'),
                       ("pkg.torch.onnx.name_scopes", "['', 'sym_min']")):  # fmt: skip
        node.metadata_props.add(key=key, value=value)
    io_ = [helper.make_tensor_value_info(n, TensorProto.FLOAT, [2]) for n in "aby"]
    graph = helper.make_graph([node], "g", io_[:2], io_[2:])
    path = tmp_path / "m.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    assert scrub_onnx(path) and not scrub_onnx(path)  # changed once, then stable
    props = {p.key: p.value for p in onnx.load(path).graph.node[0].metadata_props}
    assert props == {"namespace": "hook/sym_min: <function sym_min>",
                     "pkg.torch.onnx.name_scopes": "['', 'sym_min']"}  # fmt: skip
    a, b = np.array([1, 5], np.float32), np.array([3, 2], np.float32)
    import onnxruntime as ort

    out = ort.InferenceSession(str(path)).run(None, {"a": a, "b": b})[0]
    assert out.tolist() == [1.0, 2.0]


def test_upload_manifest_drops_times_and_local_paths():
    full = {
        "created": "2025-01-01T00:00:00+00:00",
        "runs": [{"run": "/home/me/runs/x/20250101-000000", "seed": 3,
                  "metrics": {"train_seconds": 12.5, "val_nrmse": 0.9,
                              "best_checkpoint": "/home/me/runs/x/best.ckpt"},
                  "data": {"sources": [{"source": "/mnt/hbn/R1", "files": []}]}}],
        "eval_details": {"seconds": 3.2, "tasks": 4},
        "recipe": {"data": {"source": "s3://bucket/R1"}},
    }  # fmt: skip
    assert upload_manifest(full) == {
        "runs": [{"seed": 3, "metrics": {"val_nrmse": 0.9},
                  "data": {"sources": [{"source": ".../R1", "files": []}]}}],
        "eval_details": {"tasks": 4},
        "recipe": {"data": {"source": "s3://bucket/R1"}},
    }  # fmt: skip
    assert full["created"]  # the full record is left as it was


def _settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data", cache_dir=tmp_path / "cache").resolved()


def test_fingerprint_lists_files_read_with_size_and_checksum(tmp_path):
    settings = _settings(tmp_path)
    root = settings.data_dir / "bids"
    (root / "sub-1").mkdir(parents=True)
    (root / "participants.tsv").write_text("participant_id\nsub-1\n")
    (root / "sub-1" / "x_eeg.set").write_bytes(b"eeg" * 100)
    synthetic = settings.cache_dir / "synthetic" / "eeg2025-abc"
    synthetic.mkdir(parents=True)
    (synthetic / "participants.tsv").write_text("made at some time\n")
    read = DataFingerprint(settings)
    read.read(LocalSource(root), "participants.tsv", "sub-1/x_eeg.set", "sub-1/absent.tsv")
    read.read(LocalSource(root), "participants.tsv")  # twice: listed once
    read.read(LocalSource(synthetic), "participants.tsv")
    found = read.as_dict(preprocessing={"sfreq": 100}, generator={"version": 2, "seed": 0})
    local, synth = found["sources"]
    assert local["source"] == "bids" and local["kind"] == "local"
    assert local["files"] == [
        {"file": "participants.tsv", "size": 21,
         "sha256": hashlib.sha256(b"participant_id\nsub-1\n").hexdigest()},
        {"file": "sub-1/x_eeg.set", "size": 300,
         "sha256": hashlib.sha256(b"eeg" * 100).hexdigest()},
    ]  # fmt: skip
    assert synth == {"source": "synthetic/eeg2025-abc", "kind": "synthetic",
                     "files": [{"file": "participants.tsv", "size": 18}]}  # fmt: skip
    assert found["generator"] == {"version": 2, "seed": 0}
    assert unreachable(found, settings) == []
    changed = root / "sub-1" / "x_eeg.set"
    changed.write_bytes(b"EEG" * 100)  # same size, other content (and a later mtime)
    os.utime(changed, ns=(changed.stat().st_mtime_ns + 10**9,) * 2)
    (root / "participants.tsv").unlink()
    problems = unreachable(found, settings)
    assert problems == [
        f"{root / 'participants.tsv'} (of data source bids) is missing",
        f"{root / 'sub-1' / 'x_eeg.set'} changed content (sha256 differs from the manifest)",
    ]


class FakeS3:
    url = "s3://bucket/R1"

    def fingerprint(self, rel: str) -> str:
        from toolkit.errors import DataError

        if rel == "missing":
            raise DataError("no such key")
        return "9b2cf535f27731c974343645a3985328-3-1234-1700000000"  # multipart ETag: a dash


def test_fingerprint_of_s3_files_is_their_etag(tmp_path):
    read = DataFingerprint(_settings(tmp_path))
    read.read(FakeS3(), "participants.tsv", "missing")
    (source,) = read.as_dict(preprocessing={})["sources"]
    assert source == {"source": "s3://bucket/R1", "kind": "s3", "files": [
        {"file": "participants.tsv", "size": 1234, "etag": "9b2cf535f27731c974343645a3985328-3"}
    ]}  # fmt: skip


@pytest.mark.parametrize(("then", "now", "state", "says"), [
    ("abc123", "abc123", "ok", "abc123"),
    ("abc123", "def456", "differs", "abc123 in the bundle, def456 here"),
    ("abc123-dirty", "abc123", "warn", "the bundle's had uncommitted changes"),
    ("abc123", "abc123-dirty", "warn", "this checkout had uncommitted changes"),
    (None, "abc123", "warn", "cannot tell whether the code matches"),
])  # fmt: skip
def test_the_code_commit_is_reported_not_hidden(monkeypatch, then, now, state, says):
    from importlib.metadata import version

    import toolkit
    from toolkit import reproduce

    monkeypatch.setattr(reproduce, "code_commit", lambda: now)
    manifest = {"toolkit_version": toolkit.__version__, "code_commit": then,
                "packages": {"numpy": np.__version__, "torch": "0.0.1"}}  # fmt: skip
    checks = {c.name: c for c in reproduce.environment_checks(manifest)}
    assert checks["code commit"].state == state and says in checks["code commit"].detail
    assert checks["numpy"].state == "ok"
    assert checks["torch"].state == "differs"
    assert checks["torch"].detail == f"0.0.1 in the bundle, {version('torch')} here"
