"""NeurIPS 2025 EEG Foundation Challenge (HBN-EEG): response time (Challenge 1) and a
psychopathology score (Challenge 2) from EEG."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from torch import nn

from toolkit.bundle.runtime import RuntimeSpec
from toolkit.competitions import register
from toolkit.competitions.eeg2025.config import EEG2025Data
from toolkit.competitions.eeg2025.models import nrmse
from toolkit.competitions.protocol import Metric


class EEG2025:
    """The eeg2025 competition (see COMPETITIONS.md, section 1)."""

    name = "eeg2025"
    data_config = EEG2025Data
    metric = Metric("nrmse", "min", nrmse)
    # The harness runs torch 2.2.2 with braindecode and mne, but bundles must not need them.
    unavailable_modules = ("braindecode", "lightning", "pytorch_lightning", "onnxruntime")
    bundle_slots: ClassVar[dict[str, str]] = {
        "c1": "challenge 1 (response time)",
        "c2": "challenge 2 (psychopathology)",
    }

    # Uploads allowed over the whole competition; `toolkit ledger` counts what is left.
    submission_budget = 25

    # What the harness runs (COMPETITIONS.md): `toolkit verify --runtime eeg2025` uses it.
    runtime = RuntimeSpec(
        "eeg2025", ("torch==2.2.2", "numpy<2"), "Python 3.10, torch 2.2.2, no onnxruntime"
    )

    def bundle_slot(self, recipe) -> str:
        return f"c{recipe.data.challenge}"

    def synthesize(self, root: Path, *, subjects: int, seed: int, **kwargs: Any) -> Path:
        from toolkit.competitions.eeg2025.synth import write_synthetic_bids

        return write_synthetic_bids(root, subjects=subjects, seed=seed, **kwargs)

    def build_datamodule(self, recipe, settings):
        from toolkit.competitions.eeg2025.datamodule import EEG2025DataModule
        from toolkit.competitions.eeg2025.domains import DomainDataModule

        seed = recipe.train.seed if recipe.train.seed is not None else settings.seed
        cls = DomainDataModule if recipe.data.domain is not None else EEG2025DataModule
        return cls(recipe.data, recipe.train.batch_size, settings, seed)

    def check_model(self, recipe) -> None:
        """Build the backbone once (no data): a wrong name or argument is one RecipeError."""
        from toolkit.competitions.eeg2025.config import SFREQ
        from toolkit.competitions.eeg2025.models import build_backbone

        cfg = recipe.data
        seconds = cfg.window.length if cfg.challenge == 1 else cfg.c2_window.crop
        n_domains = 2 if cfg.domain is not None else 0
        build_backbone(recipe.model.name, recipe.model.kwargs, round(seconds * SFREQ), n_domains)

    def build_model(self, recipe, stats: dict[str, Any]) -> nn.Module:
        from toolkit.competitions.eeg2025.models import HarnessModel, build_backbone

        n_domains = len(stats.get("domains", []))
        backbone = build_backbone(
            recipe.model.name, recipe.model.kwargs, stats["n_times"], n_domains
        )
        return HarnessModel(backbone, stats["target_mean"], stats["target_std"])

    def build_loss(self, recipe) -> nn.Module:
        loss = recipe.data.loss
        return nn.HuberLoss(delta=loss.delta) if loss.name == "huber" else nn.MSELoss()

    def write_bundle(self, runs, content: Path, reference: Path) -> dict[str, Any]:
        from toolkit.competitions.eeg2025.submission import write_eeg2025_bundle

        return write_eeg2025_bundle(runs, content, reference)

    def verify_bundle(self, content: Path, reference: Path, sandbox, device: str):
        from toolkit.competitions.eeg2025.submission import verify_eeg2025_bundle

        return verify_eeg2025_bundle(content, reference, sandbox, device)

    def report_figures(self, run, out: Path) -> list[tuple[str, Path]]:
        from toolkit.competitions.eeg2025.report import report_figures

        return report_figures(run, out)


register(EEG2025())
