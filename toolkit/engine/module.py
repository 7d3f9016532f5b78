"""The one LightningModule: any model, loss and metric (competitions supply the pieces)."""

from __future__ import annotations

import lightning as L
import numpy as np
import torch
from torch import nn

from toolkit.competitions.protocol import Metric
from toolkit.config.schema import TrainConfig


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

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int):
        x, y = batch
        loss = self.loss(self.model(x), y)
        self.log("train_loss", loss, on_step=False, on_epoch=True, prog_bar=True, batch_size=len(x))
        return loss

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int):
        x, y = batch
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

    def configure_optimizers(self):
        cfg = self.train_cfg
        params = self.model.parameters()
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
