"""The one LightningModule: any model, loss and metric (competitions supply the pieces).

Optional model hooks, looked up by name (the engine names no model):

- `param_groups(lr, weight_decay) -> list[dict] | None`: optimiser parameter groups (each may
  set its own `lr` / `weight_decay`), e.g. state-space parameters at a capped lr without decay.
- `auxiliary_losses(extras, progress) -> dict[str, Tensor]`: extra training losses, added to
  the main loss and logged as `train_<name>_loss`. Called right after the training forward;
  `extras` is the batch's third element (a dict, e.g. domain labels; {} for (x, y) batches),
  `progress` the fraction of training done (0 -> 1), for schedules such as DANN's lambda.
"""

from __future__ import annotations

from typing import Any

import lightning as L
import numpy as np
import torch
from torch import nn

from toolkit.competitions.protocol import Metric
from toolkit.config.schema import TrainConfig


def split_batch(batch: Any) -> tuple[torch.Tensor, torch.Tensor, dict[str, Any]]:
    """(x, y) or (x, y, extras) -> (x, y, extras)."""
    x, y, *rest = batch
    return x, y, (rest[0] if rest else {})


class TaskModule(L.LightningModule):
    """Trains `model` with `loss`; scores validation predictions with the competition metric."""

    def __init__(self, model: nn.Module, loss: nn.Module, metric: Metric, train: TrainConfig):
        super().__init__()
        self.model = model
        self.loss = loss
        self.metric = metric
        self.train_cfg = train
        self._val_preds: list[torch.Tensor] = []
        self._val_targets: list[torch.Tensor] = []
        self.last_val_predictions: tuple[np.ndarray, np.ndarray] | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)

    def progress(self) -> float:
        """Fraction of the planned optimiser steps done (0 before the first step)."""
        try:
            total = self.trainer.estimated_stepping_batches
        except (RuntimeError, AttributeError):
            return 0.0
        if not total or not np.isfinite(total):
            return 0.0
        return min(1.0, self.global_step / float(total))

    def training_step(self, batch: Any, batch_idx: int):
        x, y, extras = split_batch(batch)
        loss = self.loss(self.model(x), y)
        hook = getattr(self.model, "auxiliary_losses", None)
        extra_losses = hook(extras, self.progress()) if callable(hook) else {}
        for name, value in extra_losses.items():
            self.log(f"train_{name}_loss", value, on_step=False, on_epoch=True, batch_size=len(x))
            loss = loss + value
        self.log("train_loss", loss, on_step=False, on_epoch=True, prog_bar=True, batch_size=len(x))
        return loss

    def validation_step(self, batch: Any, batch_idx: int):
        x, y, _ = split_batch(batch)
        pred = self.model(x)
        self.log("val_loss", self.loss(pred, y), on_epoch=True, prog_bar=True, batch_size=len(x))
        self._val_preds.append(pred.detach().float().cpu())
        self._val_targets.append(y.detach().float().cpu())

    def on_validation_epoch_end(self) -> None:
        if not self._val_preds:
            return
        y_pred = torch.cat(self._val_preds).numpy()
        y_true = torch.cat(self._val_targets).numpy()
        self._val_preds.clear()
        self._val_targets.clear()
        self.last_val_predictions = (y_true, y_pred)
        score = float(self.metric.fn(y_true, y_pred))
        self.log(f"val_{self.metric.name}", score, prog_bar=True)
        self.log("val_score", score)

    def parameter_groups(self) -> list[dict[str, Any]]:
        """The model's own groups (`param_groups` hook), else one group of every parameter."""
        cfg = self.train_cfg
        hook = getattr(self.model, "param_groups", None)
        groups = hook(cfg.lr, cfg.weight_decay) if callable(hook) else None
        if not groups:
            return [{"params": list(self.model.parameters()), "weight_decay": cfg.weight_decay}]
        return [g for g in groups if g["params"]]

    def configure_optimizers(self):
        cfg = self.train_cfg
        params = self.parameter_groups()
        if cfg.optimizer == "sgd":
            opt = torch.optim.SGD(params, lr=cfg.lr, momentum=0.9, weight_decay=cfg.weight_decay)
        elif cfg.optimizer == "adam":
            opt = torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
        else:
            opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
        if cfg.scheduler == "none":
            return opt
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=cfg.epochs)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "epoch"}}
