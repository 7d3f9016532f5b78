"""Fault injection: every class of fault gives one clear line, a non-zero exit, and loses nothing.

Classes: network from a bundle (raw `_socket`, a child process), a bundle that hangs, a kill of
verify itself, corrupt files (recipes, manifests), a read-only output folder, a full disk (a
small tmpfs, as root), signals during data preparation. Signals during training and exact
resume are in test_resume.py.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from tests.bundle_edits import edit_loader, rewrite
from tests.conftest import only_run
from toolkit.bundle.sandbox import isolation

pytestmark = pytest.mark.slow
RECIPE = "eeg2025/c1-baseline"
INJECT_AT = "    def _load(self, challenge):\n"


def _inject(code: str):
    """An edit that runs `code` (indented into the loader) whenever a model is loaded."""
    body = "".join(f"        {line}\n" for line in code.strip().splitlines())
    return lambda content: edit_loader(
        content, lambda text: text.replace(INJECT_AT, INJECT_AT + body)
    )


@pytest.fixture
def listener():
    """A TCP listener on 127.0.0.1: (port, a function telling whether anyone connected)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    server.settimeout(0.5)

    def connected() -> bool:
        try:
            conn, _ = server.accept()
        except TimeoutError:
            return False
        conn.close()
        return True

    yield server.getsockname()[1], connected
    server.close()


RAW_SOCKET = """
import _socket
try:
    _socket.socket().connect(("127.0.0.1", {port}))
except OSError:
    pass
"""
CHILD_PROCESS = """
import subprocess, sys
subprocess.run([sys.executable, "-c", "import socket\\ntry:\\n    socket.create_connection(('127.0.0.1', {port}), timeout=2)\\nexcept OSError:\\n    pass"])
"""  # noqa: E501


@pytest.mark.parametrize("code", [RAW_SOCKET, CHILD_PROCESS], ids=["raw-socket", "child-process"])
def test_a_bundle_reaching_the_network_fails_verify_and_never_connects(
    toolkit, c1_bundle, tmp_path, listener, code
):
    port, connected = listener
    bad = rewrite(c1_bundle, tmp_path, _inject(code.format(port=port)))
    result = toolkit("verify", str(bad))
    assert result.exit_code == 1, result.output
    line = result.output.replace("\n", "")
    assert "verify failed: offline: the bundle tried the network: connect" in line
    assert f"('127.0.0.1', {port})" in line
    assert not connected(), "the connection reached the listener"


def test_verify_records_the_isolation_in_the_manifest(toolkit, c1_bundle):
    result = toolkit("verify", str(c1_bundle))
    assert result.exit_code == 0, result.output
    verification = json.loads((c1_bundle / "manifest.json").read_text())["verification"]
    assert verification["ok"] is True
    assert verification["isolation"] == isolation()[0]
    assert verification["checks"]["offline"] is True


def test_require_isolation_fails_where_none_is_possible(toolkit, c1_bundle):
    result = toolkit("verify", str(c1_bundle), "--require-isolation")
    if isolation()[1]:
        assert result.exit_code == 0, result.output
    else:
        assert result.exit_code == 1
        assert "--require-isolation refuses this" in result.output


def _leftovers(pid: int) -> list[Path]:
    tmp = Path(tempfile.gettempdir())
    return [*tmp.glob(f"toolkit-verify-{pid}-*"), *tmp.glob(f"toolkit-sandbox-{pid}-*")]


def test_a_hanging_bundle_times_out_with_one_line(toolkit, c1_bundle, tmp_path):
    bad = rewrite(c1_bundle, tmp_path, _inject("import time\ntime.sleep(120)"))
    started = time.monotonic()
    result = toolkit("verify", str(bad), "--timeout", "3")
    assert time.monotonic() - started < 60
    assert result.exit_code == 1
    assert "timed out after 3s" in result.output
    assert not _leftovers(os.getpid())


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
def test_killing_verify_leaves_no_process_or_temporary_folder(toolkit, c1_bundle, tmp_path, signum):
    bad = rewrite(c1_bundle, tmp_path, _inject("import time\ntime.sleep(120)"))
    env = {**os.environ, **toolkit.env}
    proc = subprocess.Popen(
        [sys.executable, "-m", "toolkit.cli.main", "verify", str(bad)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and not list(
        Path(tempfile.gettempdir()).glob(f"toolkit-sandbox-{proc.pid}-*")
    ):
        time.sleep(0.2)
    time.sleep(1.0)  # the bundle is asleep inside the sandbox now
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode in (128 + signum, -signum), err
    if signum == signal.SIGTERM:
        assert "interrupted: stopped by SIGTERM" in err
    time.sleep(0.5)
    sleepers = subprocess.run(
        ["pgrep", "-f", f"toolkit-sandbox-{proc.pid}-"], capture_output=True, text=True
    )
    assert sleepers.stdout.strip() == "", "the sandboxed bundle outlived verify"
    if signum == signal.SIGKILL:  # no chance to clean up: the next verify sweeps it
        toolkit("verify", str(c1_bundle))
    assert not _leftovers(proc.pid)


def test_a_manifest_that_is_not_json_is_one_line(toolkit, c1_bundle, tmp_path):
    inside = rewrite(c1_bundle, tmp_path / "in", lambda c: (c / "manifest.json").write_text("{"))
    result = toolkit("verify", str(inside))
    assert result.exit_code == 1
    assert "manifest.json in the zip is not valid JSON" in result.output

    beside = rewrite(c1_bundle, tmp_path / "out", lambda c: None)
    (beside / "manifest.json").write_text("not json")
    result = toolkit("verify", str(beside))
    assert result.exit_code == 0, result.output  # the upload itself is fine
    assert (beside / "manifest.json").read_text() == "not json"  # left as found


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"\x89PNG\r\n\x1a\n\x00\x00", "not a text recipe (byte 0 is not UTF-8)"),
        (b"train:\n  epochs: 2\n  lr: 0.1\n  epochs: 3\n",
         ":4: duplicate key 'epochs' (first given on line 2)"),
        (None, "a folder, not a recipe file"),
    ],
    ids=["binary", "duplicate-key", "folder"],
)  # fmt: skip
def test_a_bad_recipe_file_is_one_line(toolkit, tmp_path, content, message):
    path = tmp_path / "bad.yaml"
    if content is None:
        path.mkdir()
    else:
        path.write_bytes(content)
    result = toolkit("run", str(path), "--smoke")
    assert result.exit_code == 2
    assert message in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_sigterm_during_data_preparation_is_interrupted_not_training(toolkit):
    env = {**os.environ, **toolkit.env, "TOOLKIT_CACHE_DIR": str(toolkit.root / "fresh-cache")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "toolkit.cli.main", "train", RECIPE, "--smoke",
         "--set", "data.synthetic.subjects=40"],
        cwd=toolkit.root, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    status = None
    while time.monotonic() < deadline:
        found = list((toolkit.root / "runs").rglob("status.json"))
        if found and json.loads(found[0].read_text())["state"] == "training":
            status = found[0]
            break
        time.sleep(0.05)
    assert status is not None
    time.sleep(1.0)  # well inside the synthetic data and window cache writing
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    assert "stopped by SIGTERM during data preparation" in err
    state = json.loads(status.read_text())
    assert (state["state"], state["during"]) == ("interrupted", "data preparation")
    leftovers = [p for p in (toolkit.root).rglob("*.tmp")]
    assert not leftovers, f"half-written files: {leftovers[:3]}"


@pytest.fixture
def small_disk(tmp_path):
    """A 600 KiB tmpfs (root only): room for a run folder's small files, not its arrays."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    mount = tmp_path / "small"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=600k", "tmpfs", str(mount)],
                          capture_output=True, text=True)  # fmt: skip
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    yield mount
    subprocess.run(["umount", str(mount)], check=False)


def test_a_full_disk_names_the_folder_and_the_run_says_failed(toolkit, small_disk):
    toolkit.env["TOOLKIT_RUNS_DIR"] = str(small_disk / "runs")
    result = toolkit("train", RECIPE, "--smoke")
    assert result.exit_code == 2, result.output
    run = only_run(small_disk, RECIPE)
    line = result.output.replace("\n", "")
    assert f"{run}: no space left on device" in line
    status = json.loads((run / "status.json").read_text())
    assert status["state"] == "failed"
    assert not list(run.rglob("*.tmp"))


def test_a_full_cache_disk_names_the_cache_folder_and_keeps_nothing_half_written(
    toolkit, small_disk
):
    toolkit.env["TOOLKIT_CACHE_DIR"] = str(small_disk / "cache")
    result = toolkit("train", RECIPE, "--smoke")
    assert result.exit_code == 2, result.output
    line = result.output.replace("\n", "")
    assert f"{small_disk / 'cache'}" in line and "no space left on device" in line
    assert json.loads(next((toolkit.root / "runs").rglob("status.json")).read_text())[
        "state"
    ] == "failed"
    leftovers = [p for p in small_disk.rglob("*") if p.name.endswith(".tmp")]
    assert not leftovers, leftovers[:3]


@pytest.fixture
def read_only_dir(tmp_path):
    """A folder nobody may write into: a read-only tmpfs as root (root ignores modes)."""
    path = tmp_path / "ro"
    path.mkdir()
    if os.geteuid() == 0:
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", str(path)],
                              capture_output=True, text=True)  # fmt: skip
        if done.returncode != 0:
            pytest.skip(f"cannot mount a read-only tmpfs here: {done.stderr.strip()}")
        yield path
        subprocess.run(["umount", str(path)], check=False)
    else:
        path.chmod(0o555)
        yield path
        path.chmod(0o755)


def test_predict_into_a_read_only_folder_is_refused_before_predicting(
    toolkit, c1_bundle, read_only_dir
):
    out = read_only_dir / "sub" / "submission.json"
    result = toolkit("predict", str(c1_bundle), "inputs.json", "--out", str(out))
    assert result.exit_code == 2
    assert f"--out {out}: cannot write into {read_only_dir}" in result.output.replace("\n", "")


def test_doctor_fails_when_cuda_is_required_but_absent_or_a_folder_is_read_only(
    toolkit, read_only_dir
):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    toolkit.env["TOOLKIT_DEVICE"] = "cuda"
    result = toolkit("doctor")
    assert result.exit_code == 1
    assert "TOOLKIT_DEVICE=cuda, so training will stop" in result.output.replace("\n", "")
    toolkit.env["TOOLKIT_DEVICE"] = "cpu"
    toolkit.env["TOOLKIT_RUNS_DIR"] = str(read_only_dir)
    result = toolkit("doctor")
    assert result.exit_code == 1
    assert f"runs_dir {read_only_dir} is read-only" in result.output.replace("\n", "")


def test_device_and_model_errors_name_the_flag_and_come_before_any_data(toolkit):
    toolkit.env["TOOLKIT_CACHE_DIR"] = str(toolkit.root / "fresh-cache")
    result = toolkit("--device", "tpu", "train", RECIPE, "--smoke")
    assert result.exit_code == 2
    assert "--device='tpu': use auto, cpu, cuda or cuda:N" in result.output
    result = toolkit("train", "arc/seed-7h", "--smoke", "--set", "model.kwargs.widht=8")
    assert result.exit_code == 2
    assert "model.kwargs.widht: not an argument of ARCTransformer (did you mean 'width'?)" in (
        result.output.replace("\n", "")
    )
    status = json.loads(only_run(toolkit.root, "arc/seed-7h").joinpath("status.json").read_text())
    assert status["state"] == "failed" and status["during"] == "data preparation"
    assert not (toolkit.root / "fresh-cache").exists(), "data was prepared before the check"


def test_data_synth_refuses_a_non_empty_folder_and_force_replaces_it_whole(toolkit, tmp_path):
    root = tmp_path / "bids"
    assert toolkit("data", "synth", "eeg2025", str(root), "--subjects", "6").exit_code == 0
    before = sorted(p.name for p in root.iterdir() if p.name.startswith("sub-"))
    result = toolkit("data", "synth", "eeg2025", str(root), "--subjects", "3")
    assert result.exit_code == 2
    assert "not empty; choose an empty folder, or --force" in result.output
    result = toolkit("data", "synth", "eeg2025", str(root), "--subjects", "3", "--force")
    assert result.exit_code == 0, result.output
    after = sorted(p.name for p in root.iterdir() if p.name.startswith("sub-"))
    assert len(before) == 6 and len(after) == 3  # no orphan subjects from the first tree
    listed = (root / "participants.tsv").read_text().splitlines()[1:]
    assert sorted(f"sub-{line.split()[0].removeprefix('sub-')}" for line in listed) == after


def test_a_participants_file_without_the_target_column_names_it(toolkit, tmp_path):
    root = tmp_path / "bids"
    assert toolkit("data", "synth", "eeg2025", str(root), "--subjects", "4").exit_code == 0
    table = (root / "participants.tsv").read_text().splitlines()
    header = table[0].split("\t")
    drop = header.index("externalizing")
    rows = ["\t".join(c for i, c in enumerate(line.split("\t")) if i != drop) for line in table]
    (root / "participants.tsv").write_text("\n".join(rows) + "\n")
    result = toolkit("train", RECIPE, "--smoke", "--set", f"data.source={root}")
    assert result.exit_code == 2
    line = result.output.replace("\n", "")
    assert "participants.tsv: no 'externalizing' column (data.c2_target)" in line
    assert "p_factor" in line


def test_bundling_an_unfinished_run_is_refused_unless_allowed(toolkit):
    import lightning as L  # noqa: F401  (SignalAt needs lightning loaded)

    from tests.test_resume import SignalAt, _train_in_process
    from toolkit.errors import TrainingInterrupted

    with pytest.raises(TrainingInterrupted):
        _train_in_process(toolkit, ["--set", "train.epochs=2"], SignalAt(12, signal.SIGTERM))
    run = only_run(toolkit.root, RECIPE)
    assert toolkit("export", str(run)).exit_code == 0
    result = toolkit("bundle", str(run))
    assert result.exit_code == 2
    assert "training is interrupted (SIGTERM), not finished" in result.output.replace("\n", "")
    result = toolkit("bundle", str(run), "--allow-unfinished")
    assert result.exit_code == 0, result.output
    bundle = next((toolkit.root / "submissions" / "eeg2025").iterdir())
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert manifest["unfinished_runs"] == {RECIPE: "interrupted (SIGTERM)"}
