"""The `state_dict` export: weights only (model.pth, loads with weights_only=True), model.json
(architecture arguments + metadata) and a standalone load.py that rebuilds the model in plain
torch (no toolkit, no braindecode) and loads the weights. Never a pickled whole model.

A model takes part by defining `standalone_spec() -> {"modules": [...], "build": EXPR, "arch":
{...}}`: the modules (plain torch, importable by name) are copied into load.py, and EXPR, an
expression over `arch`, builds the model."""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from toolkit.errors import ExportError
from toolkit.fileio import write_json, write_text

WEIGHTS, ARCH, LOADER = "model.pth", "model.json", "load.py"

HEADER = '''"""Standalone loader written by `toolkit export`: rebuilds the model in plain torch.

    from load import load_model; model = load_model()      # model.pth + model.json beside it
    python load.py INPUT.npy OUTPUT.npy                      # float32 in, model outputs out

Needs only torch (and numpy for the command line); the weights load with weights_only=True.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
'''

FOOTER = '''

def build_model(arch):
    """The model with freshly initialised weights, from model.json's `arch`."""
    return {build}


def load_model(folder=None, device="cpu"):
    """The model with its trained weights, in eval mode."""
    here = Path(folder) if folder is not None else Path(__file__).resolve().parent
    meta = json.loads((here / "{arch_file}").read_text())
    model = build_model(meta["arch"])
    state = torch.load(here / "{weights}", map_location=device, weights_only=True)
    model.load_state_dict(state)
    return model.to(device).eval()


if __name__ == "__main__":
    import numpy as np

    net = load_model()
    with torch.inference_mode():
        out = net(torch.from_numpy(np.load(sys.argv[1]).astype(np.float32)))
    np.save(sys.argv[2], out.numpy())
'''


def _module_body(name: str) -> str:
    """A plain-torch module's source for load.py: its `from __future__` line dropped (load.py
    has one at the top), its own imports kept; a module importing the toolkit is refused."""
    source = inspect.getsource(importlib.import_module(name))
    keep = []
    for line in source.splitlines():
        if line.startswith("from __future__"):
            continue
        if line.startswith(("import ", "from ")) and "toolkit" in line:
            raise ExportError(f"{name}: a standalone module must not import the toolkit")
        keep.append(line)
    return f"\n\n# ---- {name.rsplit('.', 1)[-1]}.py ----\n" + "\n".join(keep)


def loader_source(spec: dict[str, Any]) -> str:
    """load.py for a model's `standalone_spec()`."""
    body = "".join(_module_body(m) for m in dict.fromkeys(spec["modules"]))
    footer = FOOTER.format(build=spec["build"], arch_file=ARCH, weights=WEIGHTS)
    return HEADER + body + footer


def to_state_dict(model: nn.Module, out: Path, metadata: dict[str, Any]) -> Path:
    """Write model.pth, model.json and load.py into `out`; return model.pth's path."""
    spec_fn = getattr(model, "standalone_spec", None)
    spec = spec_fn() if callable(spec_fn) else None
    if spec is None:
        name = type(getattr(model, "backbone", model)).__name__
        raise ExportError(
            f"export.formats lists state_dict, but {name} cannot be rebuilt without its "
            "library; drop state_dict or use a model with a standalone definition (e.g. S4)"
        )
    state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    torch.save(state, out / WEIGHTS)
    write_json(
        out / ARCH,
        {
            "arch": spec["arch"],
            "parameters": sum(p.numel() for p in model.parameters()),
            "torch": torch.__version__.split("+")[0],
            **metadata,
        },
    )
    write_text(out / LOADER, loader_source(spec))
    return out / WEIGHTS


def import_loader(folder: Path):
    """Import a folder's load.py as a module (by path, under a private name)."""
    spec = importlib.util.spec_from_file_location(f"_standalone_{abs(hash(folder))}",
                                                  folder / LOADER)  # fmt: skip
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    return module


def run_state_dict(path: Path, x: np.ndarray) -> np.ndarray:
    """Outputs of the model that load.py rebuilds from model.pth (beside `path`)."""
    model = import_loader(path.parent).load_model(path.parent)
    with torch.inference_mode():
        return model(torch.from_numpy(x)).numpy()


def read_arch(folder: Path) -> dict[str, Any]:
    return json.loads((folder / ARCH).read_text())
