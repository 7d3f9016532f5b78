"""torchvision's r3d_18 with Kinetics-400 normalisation inside and a dropout + 2-class head:
(B, 3, T, H, W) float in [0, 1] -> (B, 2) logits (ear, tail)."""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from torch import nn
from torchvision.models.video import r3d_18

from toolkit.errors import RecipeError

log = logging.getLogger(__name__)
KINETICS_MEAN = (0.43216, 0.394666, 0.37645)
KINETICS_STD = (0.22803, 0.22145, 0.216989)


class R3D18Classifier(nn.Module):
    """r3d_18 (from scratch, or a local Kinetics state dict) with a dropout head."""

    def __init__(self, dropout: float = 0.5, weights: str | None = None, n_classes: int = 2):
        super().__init__()
        self.backbone = r3d_18(weights=None)
        if weights:
            load_backbone(self.backbone, Path(weights))
        features = self.backbone.fc.in_features
        self.backbone.fc = nn.Sequential(nn.Dropout(dropout), nn.Linear(features, n_classes))
        self.register_buffer("mean", torch.tensor(KINETICS_MEAN).view(1, 3, 1, 1, 1))
        self.register_buffer("std", torch.tensor(KINETICS_STD).view(1, 3, 1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.backbone((x - self.mean) / self.std)


def load_backbone(backbone: nn.Module, path: Path) -> None:
    """Kinetics weights (torchvision's r3d_18 state dict, e.g. r3d_18-b3b3357e.pth) from a local
    file, loaded safely; the 400-class head is dropped."""
    if not path.is_file():
        raise RecipeError(
            f"model.kwargs.weights={path}: no such file (weights are never "
            "downloaded; give a local r3d_18 state dict or null)"
        )
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise RecipeError(f"model.kwargs.weights={path}: unreadable ({exc})") from None
    state = state.get("state_dict", state)
    state = {k.removeprefix("backbone."): v for k, v in state.items() if not k.startswith("fc.")}
    missing, unexpected = backbone.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.startswith("fc.")]
    if missing or unexpected:
        raise RecipeError(
            f"model.kwargs.weights={path}: not an r3d_18 state dict "
            f"(missing {missing[:3]}, unexpected {unexpected[:3]})"
        )
    log.info("loaded r3d_18 weights from %s", path)
