"""verify: a good bundle passes; tampered, wrapped or network-needing bundles fail clearly.
The bundle is also loaded the way the harness does, in a subprocess with only torch."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.bundle_edits import edit_loader as _edit_loader
from tests.bundle_edits import rewrite as _rewrite

pytestmark = pytest.mark.slow


def test_good_bundle_verifies(toolkit, c1_bundle):
    result = toolkit("verify", str(c1_bundle))
    assert result.exit_code == 0, result.output
    assert "verified" in result.output
    assert "harness call (offline, without the toolkit)" in result.output


def _append_byte(content: Path) -> None:
    with (content / "weights_challenge_1.pt").open("ab") as fh:
        fh.write(b"\0")


def _wrap_in_folder(content: Path) -> None:
    inner = content / "submission"
    inner.mkdir()
    for path in list(content.iterdir()):
        if path != inner:
            shutil.move(path, inner / path.name)


def _phone_home(content: Path) -> None:
    _edit_loader(
        content,
        lambda text: text.replace(
            "    def _load(self, challenge):\n",
            "    def _load(self, challenge):\n"
            "        import urllib.request\n"
            "        urllib.request.urlopen('http://127.0.0.1:9/weights', timeout=2)\n",
        ),
    )


def _import_toolkit(content: Path) -> None:
    _edit_loader(content, lambda text: "import toolkit\n" + text)


@pytest.mark.parametrize(
    ("edit", "target", "message"),
    [
        (_append_byte, "", "weights_challenge_1.pt changed (sha256 mismatch)"),
        (_wrap_in_folder, "submission.zip", "everything is inside folder submission/"),
        (_phone_home, "", "needs the network"),
        (_import_toolkit, "", "No module named 'toolkit'"),
    ],
    ids=["tampered-weights", "top-level-folder", "needs-network", "imports-toolkit"],
)
def test_bad_bundle_fails_verify(toolkit, c1_bundle, tmp_path, edit, target, message):
    bad = _rewrite(c1_bundle, tmp_path, edit)
    result = toolkit("verify", str(bad / target) if target else str(bad))
    assert result.exit_code == 1
    assert message in result.output


def test_harness_contract_in_a_plain_subprocess(c1_bundle, tmp_path):
    """Unzipped into /app/input-like folder and called from another working directory, with
    braindecode and the toolkit hidden: returns (B, 1) float32 for both challenges."""
    app = tmp_path / "input"
    with zipfile.ZipFile(c1_bundle / "submission.zip") as zf:
        zf.extractall(app)
    script = f"""
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in ('toolkit', 'braindecode', 'lightning', 'onnxruntime'):
            raise ModuleNotFoundError(name)
sys.meta_path.insert(0, Block())
sys.path.insert(0, {str(app)!r})
import torch
from submission import Submission
sub = Submission(SFREQ=100, DEVICE='cpu')
x = torch.zeros(2, 129, 200)
for get in (sub.get_model_challenge_1, sub.get_model_challenge_2):
    model = get()
    model.eval()
    with torch.inference_mode():
        y = model(x)
    assert y.shape == (2, 1) and y.dtype == torch.float32, (y.shape, y.dtype)
print('ok')
"""
    out = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_missing_bundle_is_one_line(toolkit, tmp_path):
    result = toolkit("verify", str(tmp_path / "nope"))
    assert result.exit_code == 1
    assert "no such bundle folder or zip" in result.output
