"""Models as the harness calls them: volts in (B, 129, 200), seconds or scores out (B, 1).

Preprocessing lives inside the model (the harness feeds raw windows): volts -> microvolts in,
the training target's scale out. Backbones are braindecode models chosen by name, or the
toolkit's own S4 / S4D state-space models (s4.py)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from toolkit.competitions.eeg2025.config import CHANNEL_NAMES, SFREQ
from toolkit.competitions.eeg2025.harness_model import VOLTS_TO_MICROVOLTS, HarnessModel
from toolkit.errors import RecipeError

__all__ = ["VOLTS_TO_MICROVOLTS", "ConstantModel", "HarnessModel", "build_backbone", "nrmse"]
# The toolkit's own models: name -> the S4Net kernel they use.
STATE_SPACE_MODELS = {
    "S4": {"kernel": "dplr", "init": "legs", "discretization": "bilinear"},
    "S4D": {"kernel": "diag", "init": "lin", "discretization": "zoh"},
}


class ConstantModel(nn.Module):
    """Predicts one value for every input: the honest baseline (nRMSE about 1.0)."""

    def __init__(self, value: float):
        super().__init__()
        self.register_buffer("value", torch.tensor(float(value)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.value.expand(x.shape[0], 1).to(x.dtype)


def build_state_space(
    name: str, kwargs: dict[str, Any], n_times: int = 200, n_domains: int = 0
) -> nn.Module:
    """S4 or S4D (s4.py) with the challenge's 129 channels; `n_domains` > 1 adds the DANN head."""
    from toolkit.competitions.eeg2025.s4 import S4Net

    reserved = {"kernel": f"model.name ({name})", "n_domains": "data.domain",
                "n_chans": "the challenge", "n_outputs": "the challenge",
                "n_times": "the window length"}  # fmt: skip
    for key in sorted(set(kwargs) & set(reserved)):
        raise RecipeError(f"model.kwargs.{key}: set by {reserved[key]}; drop it")
    args = {**STATE_SPACE_MODELS[name], **kwargs}
    try:
        return S4Net(
            n_chans=len(CHANNEL_NAMES), n_outputs=1, n_times=n_times, n_domains=n_domains, **args
        )
    except (TypeError, ValueError) as exc:
        raise RecipeError(f"model.kwargs for {name}: {exc}") from None


def build_backbone(
    name: str, kwargs: dict[str, Any], n_times: int, n_domains: int = 0
) -> nn.Module:
    """A backbone by name: S4 / S4D, or a braindecode model built with the signal contract.

    Only the state-space models carry a domain head; `n_domains` > 1 with another model is
    an error."""
    if name in STATE_SPACE_MODELS:
        return build_state_space(name, kwargs, n_times, n_domains)
    if n_domains > 1:
        raise RecipeError(
            f"data.domain needs a model with a domain head ({', '.join(STATE_SPACE_MODELS)}), "
            f"not {name}"
        )
    import braindecode.models as models

    cls = getattr(models, name, None)
    if not isinstance(cls, type) or not issubclass(cls, nn.Module):
        import difflib

        close = difflib.get_close_matches(name, [n for n in dir(models) if n[:1].isupper()], n=3)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise RecipeError(
            f"model.name={name!r} is neither {' nor '.join(STATE_SPACE_MODELS)} nor a "
            f"braindecode model{hint}"
        )
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
