"""Training pieces: folds grouped by video and stratified by lab, coarse targets, the
whitelist-masked loss, and the full recipe's GRU model through ONNX."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from toolkit.competitions.mabe.config import COARSE_GROUPS, MABeData
from toolkit.competitions.mabe.datamodule import group_targets, split_videos
from toolkit.competitions.mabe.model import MaskedBCE, TemporalNet
from toolkit.errors import DataError

LABS = ["A"] * 5 + ["B"] * 3 + ["C"] * 2


def test_validation_videos_are_whole_and_stratified_by_lab():
    val = split_videos(LABS, MABeData(val_fraction=0.34))
    assert {lab for lab, v in zip(LABS, val, strict=True) if v} == {"A", "B", "C"}
    assert {lab for lab, v in zip(LABS, val, strict=True) if not v} == {"A", "B", "C"}
    folds = [split_videos(LABS, MABeData(n_folds=2, fold=k)) for k in range(2)]
    assert (np.sum(folds, axis=0) == 1).all()  # every video validates in exactly one fold
    with pytest.raises(DataError, match="cannot hold out validation videos"):
        split_videos(["A"], MABeData())


def test_coarse_targets_follow_the_whitelist():
    actions = ["chase", "mount", "rear", "sniff"]
    labels = np.array([[[1, 0, -1, 0], [0, 0, -1, 0], [-1, -1, -1, -1]]], np.int8)
    out = group_targets(labels, actions, COARSE_GROUPS)  # background, aggressive, social, mating
    assert out[0].tolist() == [[0, 1, 0, 0], [1, 0, 0, 0], [-1, -1, -1, -1]]


def test_the_loss_ignores_frames_outside_the_whitelist_and_weighs_positives():
    loss = MaskedBCE([1.0, 5.0], positive_weight=1.0)
    logits = torch.zeros(1, 2, 2)
    target = torch.tensor([[[0.0, 1.0], [-1.0, -1.0]]])
    value = loss(logits, target)
    assert value.item() == pytest.approx(np.log(2) * (1 + 5) / 2)
    wild = logits.clone()
    wild[0, 1] = 100.0  # masked frames cannot move the loss
    assert loss(wild, target).item() == pytest.approx(value.item())


@pytest.mark.slow
def test_the_full_recipes_gru_model_exports_to_onnx_and_matches(tmp_path):
    from toolkit.export.models import parity, to_onnx

    model = TemporalNet(45, 4, width=16, layers=3, gru=True).eval()
    x = torch.randn(3, 45, 64)
    path = to_onnx(model, x, tmp_path / "model.onnx")
    with torch.inference_mode():
        expected = model(x).numpy()
    result = parity("onnx", path, x.numpy(), expected, 1e-4, 1e-3)
    assert result["ok"], result
    assert expected.shape == (3, 64, 4)
