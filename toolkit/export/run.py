"""`toolkit export RUN_DIR`: best checkpoint -> export/ (model files, references, parity)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from toolkit.competitions import get_competition
from toolkit.engine.rundir import RunDir
from toolkit.errors import ExportError
from toolkit.export.models import FILES, load_weights, parity, to_onnx, to_torchscript
from toolkit.export.state_dict import to_state_dict
from toolkit.fileio import atomic_dir, read_json, write_json


def trained_model(run: RunDir) -> torch.nn.Module:
    """The run's model with its best weights (an ensemble run: the average of its members)."""
    if run.members_file.is_file():
        from toolkit.engine.ensemble import MeanEnsemble, member_runs

        return MeanEnsemble([trained_model(m) for m in member_runs(run)]).eval()
    recipe = run.recipe()
    model = get_competition(recipe.competition).build_model(recipe, run.stats())
    return load_weights(model, run.best_checkpoint)


def export_run(run: RunDir) -> Path:
    """Export the run's best model in the recipe's formats; fail if any disagrees with eager.

    The export folder appears whole or not at all."""
    recipe = run.recipe()
    if not run.reference_inputs.is_file():
        raise ExportError(f"{run.path}: no reference_inputs.npy (was the run trained?)")
    model = trained_model(run)
    x = np.load(run.reference_inputs).astype(np.float32)
    example = torch.from_numpy(x)
    with torch.inference_mode():
        expected = model(example).numpy()
    if not np.isfinite(expected).all():
        raise ExportError(f"{run.best_checkpoint}: the model's outputs are not finite")
    cfg = recipe.export
    results = {}
    with atomic_dir(run.export_dir) as out:
        np.save(out / "reference_inputs.npy", x)
        np.save(out / "reference_outputs.npy", expected)
        torch.save(model.state_dict(), out / "state_dict.pt")
        for fmt in cfg.formats:
            if fmt == "state_dict":
                path = to_state_dict(model, out, {"recipe": recipe.name, "stats": run.stats()})
            else:
                writer = to_torchscript if fmt == "torchscript" else to_onnx
                path = writer(model, example.clone(), out / FILES[fmt])
            results[fmt] = parity(fmt, path, x, expected, cfg.atol, cfg.rtol)
        write_json(out / "parity.json", results)
        failed = [f"{fmt} (max error {r['max_abs_error']})" for fmt, r in results.items()
                  if not r["ok"]]  # fmt: skip
        if failed:
            raise ExportError(
                f"exported model disagrees with eager beyond atol={cfg.atol}: {', '.join(failed)}"
            )
    return run.export_dir


def export_parity(run: RunDir) -> dict:
    """The parity results written by `export_run`."""
    path = run.export_dir / "parity.json"
    return read_json(path) if path.is_file() else {}
