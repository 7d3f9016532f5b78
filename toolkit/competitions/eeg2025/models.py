"""Models as the harness calls them: volts in (B, 129, 200), seconds or scores out (B, 1).

Preprocessing lives inside the model (the harness feeds raw windows): volts -> microvolts in,
the training target's scale out. Backbones are braindecode models chosen by name."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from toolkit.competitions.eeg2025.config import CHANNEL_NAMES, SFREQ
from toolkit.errors import RecipeError

VOLTS_TO_MICROVOLTS = 1e6


class HarnessModel(nn.Module):
    """Scales input to microvolts, runs the backbone, maps its output to the target's scale."""

    def __init__(self, backbone: nn.Module, target_mean: float, target_std: float):
        super().__init__()
        self.backbone = backbone
        self.register_buffer("target_mean", torch.tensor(float(target_mean)))
        self.register_buffer("target_std", torch.tensor(float(target_std)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.backbone(x * VOLTS_TO_MICROVOLTS)
        return out.reshape(out.shape[0], 1) * self.target_std + self.target_mean


class ConstantModel(nn.Module):
    """Predicts one value for every input: the honest baseline (nRMSE about 1.0)."""

    def __init__(self, value: float):
        super().__init__()
        self.register_buffer("value", torch.tensor(float(value)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.value.expand(x.shape[0], 1).to(x.dtype)


def build_backbone(name: str, kwargs: dict[str, Any], n_times: int) -> nn.Module:
    """A braindecode model by class name, built with the challenge's signal contract."""
    import braindecode.models as models

    cls = getattr(models, name, None)
    if not isinstance(cls, type) or not issubclass(cls, nn.Module):
        import difflib

        close = difflib.get_close_matches(name, [n for n in dir(models) if n[:1].isupper()], n=3)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise RecipeError(f"model.name={name!r} is not a braindecode model{hint}")
    chs_info = [{"ch_name": ch} for ch in CHANNEL_NAMES]  # needed for torch.jit.trace
    try:
        return cls(
            n_chans=len(CHANNEL_NAMES),
            n_outputs=1,
            n_times=n_times,
            sfreq=SFREQ,
            chs_info=chs_info,
            **kwargs,
        )
    except TypeError as exc:
        raise RecipeError(f"model.kwargs for {name}: {exc}") from None


def nrmse(y_true, y_pred) -> float:
    """RMSE divided by the standard deviation of the truth (the mean predictor scores 1.0)."""
    import numpy as np

    y_true = np.asarray(y_true, dtype=np.float64).ravel()
    y_pred = np.asarray(y_pred, dtype=np.float64).ravel()
    std = y_true.std()
    rmse = float(np.sqrt(np.mean((y_true - y_pred) ** 2)))
    return rmse / std if std > 0 else float("inf")
