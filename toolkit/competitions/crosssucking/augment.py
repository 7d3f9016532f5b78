"""Training clips: temporal jitter, random resized crop, horizontal flip, colour jitter; drawn
with torch's generator (seeded per worker by Lightning), on float (3, T, H, W) in [0, 1]."""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from toolkit.competitions.crosssucking.config import AugmentConfig, ClipConfig
from toolkit.competitions.crosssucking.standalone import centre_crop, clip_indices


def _uniform(low: float, high: float) -> float:
    return low + (high - low) * float(torch.rand(()))


def clip_start(n_frames: int, clip: ClipConfig, jitter: bool) -> int:
    span = (clip.frames - 1) * clip.stride + 1
    room = max(n_frames - span, 0)
    return int(torch.randint(room + 1, ())) if jitter else room // 2


def resized_crop(x: torch.Tensor, size: int, scale: tuple[float, float] | None) -> torch.Tensor:
    """A random area/aspect crop resized to size x size ((3, T, H, W) in and out)."""
    _, _, h, w = x.shape
    if scale is None:
        top, left = (
            int(torch.randint(max(h - size, 0) + 1, ())),
            int(torch.randint(max(w - size, 0) + 1, ())),
        )
        ch, cw = min(size, h), min(size, w)
    else:
        area = h * w * _uniform(*scale)
        ratio = math.exp(_uniform(math.log(3 / 4), math.log(4 / 3)))
        cw = min(w, max(1, round(math.sqrt(area * ratio))))
        ch = min(h, max(1, round(math.sqrt(area / ratio))))
        top, left = int(torch.randint(h - ch + 1, ())), int(torch.randint(w - cw + 1, ()))
    x = x[:, :, top : top + ch, left : left + cw]
    if x.shape[-2:] != (size, size):
        x = F.interpolate(
            x.permute(1, 0, 2, 3), size=(size, size), mode="bilinear", align_corners=False
        ).permute(1, 0, 2, 3)
    return x


def colour_jitter(x: torch.Tensor, strength: float) -> torch.Tensor:
    """Brightness, contrast and saturation factors in [1 - s, 1 + s], one draw per clip."""
    if strength <= 0:
        return x
    x = x * _uniform(1 - strength, 1 + strength)
    mean = x.mean()
    x = (x - mean) * _uniform(1 - strength, 1 + strength) + mean
    grey = (0.299 * x[0] + 0.587 * x[1] + 0.114 * x[2]).unsqueeze(0)
    x = (x - grey) * _uniform(1 - strength, 1 + strength) + grey
    return x.clamp(0.0, 1.0)


def training_clip(frames: np.ndarray, clip: ClipConfig, aug: AugmentConfig) -> torch.Tensor:
    """One augmented clip (3, T, crop, crop) float32 from an event's uint8 (T, H, W, 3) frames."""
    first = clip_start(len(frames), clip, aug.temporal_jitter)
    picked = np.asarray(frames[clip_indices(first, clip.frames, clip.stride, len(frames))])
    if min(picked.shape[1:3]) < clip.crop:
        picked = centre_crop(picked, clip.crop)  # edge-padded up to the crop
    x = torch.from_numpy(np.ascontiguousarray(picked)).permute(3, 0, 1, 2).float() / 255.0
    x = resized_crop(x, clip.crop, aug.resized_crop_scale)
    if aug.flip and float(torch.rand(())) < 0.5:
        x = x.flip(-1)
    return colour_jitter(x, aug.colour_jitter).contiguous()
