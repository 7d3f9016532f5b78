"""Bad input from the environment, on a CPU-only machine: CUDA asked for but absent, and the
file-system errors a container run meets (read-only mounts, permissions, a full disk, a folder
that is not mounted). Each is one clear line and a non-zero exit, never a traceback."""

from __future__ import annotations

import errno
import logging

import pytest
import torch
import typer

from toolkit.cli.common import cli_errors
from toolkit.engine import device as device_mod
from toolkit.engine.device import resolve_device, torch_device
from toolkit.errors import ToolkitError

no_gpu = pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a GPU")


@no_gpu
def test_cuda_requested_without_gpu_is_one_clear_line(toolkit):
    toolkit.env["TOOLKIT_DEVICE"] = "cuda"
    result = toolkit("train", "eeg2025/c1-baseline", "--smoke", "--set", "train.epochs=1")
    assert result.exit_code == 2, result.output
    assert "TOOLKIT_DEVICE=cuda but no CUDA device is visible" in result.output
    assert "--gpus all" in result.output and "TOOLKIT_DEVICE=auto" in result.output
    assert "Traceback" not in result.output


@no_gpu
@pytest.mark.parametrize("value", ["cuda", "cuda:0", "gpu", "CUDA:1"])
def test_cuda_values_fail_without_gpu(value):
    with pytest.raises(ToolkitError, match="no CUDA device is visible"):
        resolve_device(value)


@no_gpu
def test_auto_falls_back_to_cpu_with_one_notice(caplog):
    with caplog.at_level(logging.WARNING, logger="toolkit.engine.device"):
        assert resolve_device("auto") == ("cpu", 1)
    notices = [r.getMessage() for r in caplog.records]
    assert len(notices) == 1 and "running on the CPU" in notices[0]
    assert torch_device("cpu") == torch.device("cpu")


def test_cpu_is_quiet(caplog):
    with caplog.at_level(logging.WARNING):
        assert resolve_device("cpu") == ("cpu", 1)
    assert not caplog.records


@pytest.mark.parametrize("value", ["tpu", "cuda:x", "mps"])
def test_unknown_device_values(value):
    with pytest.raises(ToolkitError, match="use auto, cpu, cuda or cuda:N"):
        resolve_device(value)


def test_device_index_beyond_visible_gpus(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert resolve_device("cuda:0") == ("gpu", [0])
    assert resolve_device("auto") == ("gpu", 1)
    with pytest.raises(ToolkitError, match=r"only 1 CUDA device\(s\) are visible"):
        resolve_device("cuda:1")


def test_absence_reasons(monkeypatch):
    monkeypatch.setattr(torch.version, "cuda", None)
    assert "no CUDA support" in device_mod.cuda_absence_reason()
    monkeypatch.setattr(torch.version, "cuda", "13.0")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert "CUDA_VISIBLE_DEVICES" in device_mod.cuda_absence_reason()


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (PermissionError(errno.EACCES, "Permission denied", "/work/runs/x"), "permission denied"),
        (OSError(errno.EROFS, "Read-only file system", "/work/submissions/a"), "read-only"),
        (OSError(errno.ENOSPC, "No space left on device", "/cache/a.npy"), "no space left"),
        (FileNotFoundError(errno.ENOENT, "No such file or directory", "/data/hbn"), "mounted"),
    ],
    ids=["permission", "read-only", "disk-full", "missing"],
)
def test_file_system_errors_are_one_line(exc, expected, capsys):
    with pytest.raises(typer.Exit) as raised, cli_errors():
        raise exc
    assert raised.value.exit_code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert err.startswith("error: ") and exc.filename in err and expected in err


def test_other_os_errors_are_not_hidden():
    with pytest.raises(ConnectionResetError), cli_errors():
        raise ConnectionResetError(errno.ECONNRESET, "Connection reset by peer")


def test_missing_bundle_folder_is_one_line(toolkit, tmp_path):
    result = toolkit("verify", str(tmp_path / "not-mounted" / "bundle"))
    assert result.exit_code == 1
    assert "no such bundle folder" in result.output and "Traceback" not in result.output


def test_doctor_reports_user_and_folders(toolkit):
    result = toolkit("doctor")
    assert result.exit_code == 0, result.output
    for word in ("container", "user", "uid", "runs_dir"):
        assert word in result.output
