"""Submission for the NeurIPS 2025 EEG Foundation Challenge, written by `toolkit bundle`.

The harness imports this file, builds `Submission(SFREQ, DEVICE)` and calls
`get_model_challenge_1()` / `get_model_challenge_2()`; each returns a TorchScript module that
maps float32 volts (B, 129, 200) at 100 Hz to (B, 1). Needs only torch: no toolkit, no
braindecode, no network. Weights load with torch.jit.load (no pickled code).
"""

from pathlib import Path

import torch

WEIGHTS = {1: "weights_challenge_1.pt", 2: "weights_challenge_2.pt"}
EXPECTED_SFREQ = 100
_HERE = Path(__file__).resolve().parent


def _find(name):
    """The harness's search order: /app/input/res, /app/input, ./, then this file's folder."""
    for folder in (Path("/app/input/res"), Path("/app/input"), Path.cwd(), _HERE):
        candidate = folder / name
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"{name} not found in /app/input/res, /app/input, ./ or {_HERE}")


class Submission:
    """The object the challenge harness instantiates."""

    def __init__(self, SFREQ, DEVICE):
        if int(SFREQ) != EXPECTED_SFREQ:
            raise ValueError(f"models were trained at {EXPECTED_SFREQ} Hz, harness gave {SFREQ}")
        self.sfreq = SFREQ
        self.device = torch.device(DEVICE)

    def _load(self, challenge):
        model = torch.jit.load(str(_find(WEIGHTS[challenge])), map_location=self.device)
        return model.eval()

    def get_model_challenge_1(self):
        return self._load(1)

    def get_model_challenge_2(self):
        return self._load(2)
