"""The model as the harness calls it: volts (B, 129, 200) in, the target's scale (B, 1) out.

Plain torch only: the `state_dict` export embeds this file in a standalone load.py."""

from __future__ import annotations

import torch
from torch import nn

VOLTS_TO_MICROVOLTS = 1e6


class HarnessModel(nn.Module):
    """Scales input to microvolts, runs the backbone, maps its output to the target's scale.

    Training hooks of the backbone (`param_groups`, `auxiliary_losses`, `standalone_spec`) pass
    through; a backbone without them leaves the engine's defaults."""

    def __init__(self, backbone: nn.Module, target_mean: float, target_std: float):
        super().__init__()
        self.backbone = backbone
        self.register_buffer("target_mean", torch.tensor(float(target_mean)))
        self.register_buffer("target_std", torch.tensor(float(target_std)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.backbone(x * VOLTS_TO_MICROVOLTS)
        return out.reshape(out.shape[0], 1) * self.target_std + self.target_mean

    def param_groups(self, lr: float, weight_decay: float) -> list[dict] | None:
        groups = getattr(self.backbone, "param_groups", None)
        return groups(lr, weight_decay) if callable(groups) else None

    def auxiliary_losses(self, extras: dict, progress: float) -> dict[str, torch.Tensor]:
        losses = getattr(self.backbone, "auxiliary_losses", None)
        return losses(extras, progress) if callable(losses) else {}

    def standalone_spec(self) -> dict | None:
        spec = getattr(self.backbone, "standalone_spec", None)
        if not callable(spec):
            return None
        inner = spec()
        return {
            "modules": [*inner["modules"], __name__],
            "build": f"HarnessModel((lambda arch: {inner['build']})(arch['backbone']), 0.0, 1.0)",
            "arch": {"backbone": inner["arch"]},
        }
