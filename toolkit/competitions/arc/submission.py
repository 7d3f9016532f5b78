"""The arc bundle: predict.py (numpy + onnxruntime) + model.onnx (dynamic batch and length) +
decoder.onnx (the same weights with a key/value cache) + model.json (decoding settings);
verified by running predict.py offline on unseen edge cases."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

from toolkit.bundle.sandbox import Sandbox
from toolkit.competitions.arc.model import ARCTransformer, CachedDecoder
from toolkit.competitions.arc.score import SubmissionError, check_submission
from toolkit.competitions.arc.standalone import (
    PAD,
    OnnxDecoder,
    left_padded,
    onnx_forward,
    predict_all,
)
from toolkit.competitions.arc.synth import verify_challenges
from toolkit.competitions.protocol import Check
from toolkit.engine.rundir import RunDir
from toolkit.errors import ExportError, ToolkitError
from toolkit.export.models import _quiet
from toolkit.export.run import export_parity
from toolkit.fileio import read_json, write_json

PREDICTOR = Path(__file__).resolve().parent / "standalone.py"
VERIFY_TASK_SECONDS = 60.0
TIMED_TASKS = ("30x30big",)  # may stop at the time limit: checked for validity, not equality


def export_dynamic_onnx(model: ARCTransformer, example: torch.Tensor, path: Path) -> Path:
    """ONNX with batch and sequence length dynamic (int64 token ids in, logits out)."""
    dims = {0: torch.export.Dim("batch"), 1: torch.export.Dim("seq", max=model.max_len)}
    try:
        with _quiet():
            program = torch.onnx.export(
                model, (example,), dynamo=True, input_names=["tokens"], output_names=["logits"],
                dynamic_shapes=(dims,),
            )  # fmt: skip
            program.save(str(path))
    except Exception as exc:
        raise ExportError(f"ONNX export failed: {type(exc).__name__}: {exc}") from None
    return path


def export_decoder_onnx(model: ARCTransformer, example: torch.Tensor, path: Path) -> Path:
    """decoder.onnx: (history, past_k, past_v) -> (logits, keys, values), batch, history and
    cache lengths dynamic."""
    history = torch.cat([torch.full_like(example[:, :1], PAD), example], dim=1)
    past_k, past_v = model.empty_cache(len(history))
    past_k, past_v = past_k.expand(-1, -1, -1, 3, -1), past_v.expand(-1, -1, -1, 3, -1)
    dyn = torch.export.Dim.DYNAMIC
    cache_dims = {1: dyn, 3: dyn}
    try:
        with _quiet():
            program = torch.onnx.export(
                CachedDecoder(model), (history, past_k.contiguous(), past_v.contiguous()),
                dynamo=True, input_names=["history", "past_k", "past_v"],
                output_names=["logits", "keys", "values"],
                dynamic_shapes=({0: dyn, 1: dyn}, cache_dims, cache_dims),
            )  # fmt: skip
            program.save(str(path))
    except Exception as exc:
        raise ExportError(f"ONNX export of the cached decoder failed: {exc}") from None
    return path


def _decoder_parity(model: ARCTransformer, path: Path, x: np.ndarray) -> float:
    """Largest |logit error| of decoder.onnx against the eager full model, over the whole
    reference sequences (left-padded to a common start) and then three cached steps."""
    decoder = OnnxDecoder(path, "cpu")
    rows = [r[r != PAD] for r in x]  # the reference rows are right-padded
    # Every row whole and cut in half: rows of several lengths exercise the left padding.
    seqs = rows + [r[: max(2, len(r) // 2)] for r in rows]
    history = left_padded(seqs)
    logits, cache = decoder.start(history)
    worst = 0.0
    for step in range(4):
        if step:  # append each row's best non-PAD token and decode it from the cache
            nxt = logits[:, :PAD].argmax(-1).astype(np.int64)
            seqs = [np.append(s, t) for s, t in zip(seqs, nxt, strict=True)]
            history = np.concatenate([history, nxt[:, None]], axis=1)
            logits, cache = decoder.step(history, cache)
        with torch.inference_mode():
            expected = np.stack([model(torch.from_numpy(s[None]))[0, -1].numpy() for s in seqs])
        worst = max(worst, float(np.max(np.abs(logits - expected))))
    return worst


def _parity(model: ARCTransformer, path: Path, x: np.ndarray, atol: float) -> dict[str, Any]:
    """Eager vs onnxruntime on the reference sequences, whole and at two shorter lengths."""
    forward = onnx_forward(path, "cpu")
    errors = {}
    for length in sorted({x.shape[1], max(2, x.shape[1] // 2), 2}):
        for batch in (x[:, :length], x[:1, :length]):
            with torch.inference_mode():
                expected = model(torch.from_numpy(batch)).numpy()
            errors[f"{len(batch)}x{length}"] = float(np.max(np.abs(forward(batch) - expected)))
    return {"ok": max(errors.values()) <= atol, "max_abs_error": errors, "atol": atol}


def write_arc_bundle(runs: list[RunDir], content: Path, reference: Path) -> dict[str, Any]:
    """predict.py, model.onnx, decoder.onnx and model.json into `content`; verify's challenges
    and expected submission into `reference`."""
    if len(runs) != 1:
        raise ToolkitError(f"arc bundle: give exactly one run (got {len(runs)})")
    run = runs[0]
    recipe, stats = run.recipe(), run.stats()
    weights = run.export_dir / "state_dict.pt"
    if not weights.is_file():
        raise ToolkitError(f"{run.path}: no export/state_dict.pt; run `toolkit export` first")
    model = ARCTransformer(**recipe.model.kwargs, max_len=stats["max_len"])
    model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    model.eval()
    x = np.load(run.export_dir / "reference_inputs.npy").astype(np.int64)
    onnx_path = export_dynamic_onnx(model, torch.from_numpy(x), content / "model.onnx")
    atol = max(recipe.export.atol, 1e-3)
    parity = _parity(model, onnx_path, x, atol)
    if not parity["ok"]:
        raise ExportError(f"arc bundle: model.onnx disagrees with eager: {parity}")
    decoder_path = export_decoder_onnx(model, torch.from_numpy(x), content / "decoder.onnx")
    parity["decoder_max_abs_error"] = _decoder_parity(model, decoder_path, x)
    if parity["decoder_max_abs_error"] > atol:
        raise ExportError(f"arc bundle: decoder.onnx disagrees with eager: {parity}")
    shutil.copyfile(PREDICTOR, content / "predict.py")
    settings = recipe.data.predict.model_dump(exclude={"max_tasks"})
    settings["max_len"] = stats["max_len"]
    write_json(content / "model.json", settings)

    reference.mkdir(parents=True, exist_ok=True)
    challenges, _ = verify_challenges()
    write_json(reference / "challenges.json", challenges)
    expected, _ = predict_all(
        onnx_forward(onnx_path, "cpu"), challenges, warn=lambda message: None,
        task_seconds=VERIFY_TASK_SECONDS, max_len=stats["max_len"], n_views=settings["views"],
        rank=settings["rank"], decoder=OnnxDecoder(decoder_path, "cpu"),
    )  # fmt: skip
    write_json(reference / "submission.json", expected)
    metrics = run.metrics()
    return {
        "recipe": recipe.model_dump(mode="json"),
        "run": str(run.path),
        "metrics": metrics,
        "eval_score": metrics.get("eval_score"),
        "parity": {"export": export_parity(run), "bundle_onnx": parity},
        "predictor": settings,
    }


def verify_arc_bundle(content: Path, reference: Path, sandbox: Sandbox, device: str) -> list[Check]:
    """Run predict.py offline on unseen edge-case tasks; validate strictly; compare."""
    for name in ("predict.py", "model.onnx", "decoder.onnx"):
        if not (content / name).is_file():
            return [Check(name, False, f"no {name} at the top of the zip")]
    challenges = reference / "challenges.json"
    if not challenges.is_file():
        return [Check("reference", False, f"no {challenges} beside the bundle")]
    out = content.parent / f"{content.name}-out" / "submission.json"
    args = [str(challenges), str(out), "--task-seconds", str(VERIFY_TASK_SECONDS)]
    result = sandbox.run(content / "predict.py", [*args, "--device", device])
    name = "predict.py (offline, numpy + onnxruntime only)"
    if result.returncode != 0 or not out.is_file():
        detail = result.last_error
        if "network access refused" in result.stderr:
            detail = f"predict.py needs the network, which the competition refuses: {detail}"
        return [Check(name, False, detail)]
    checks = [Check(name, True, result.stdout.strip().splitlines()[-1])]
    submission = read_json(out)
    _, counts = verify_challenges()
    try:
        check_submission(submission, counts, "submission.json")
        detail = "every task id, every test input, both attempts, grids 1-30 x 0-9"
        checks.append(Check("submission.json is valid", True, detail))
    except SubmissionError as exc:
        checks.append(Check("submission.json is valid", False, str(exc)))
        return checks
    warned = "task badbad00" in result.stderr and submission["badbad00"][0]["attempt_1"] == [[0]]
    detail = "badbad00 -> [[0]] attempts + warning" if warned else result.stderr[-300:]
    checks.append(Check("a failing task is padded with a warning", warned, detail))
    expected = read_json(reference / "submission.json")
    differ = [t for t in expected if t not in TIMED_TASKS and submission[t] != expected[t]]
    detail = f"differ on {differ}" if differ else f"{len(expected)} tasks"
    checks.append(Check("predictions match the reference", not differ, detail))
    shutil.rmtree(out.parent, ignore_errors=True)
    return checks
