"""Calls a bundle the way the EEG 2025 harness does (run by verify in a sandbox, no toolkit).

Usage: python harness_check.py BUNDLE_DIR C1_INPUTS.npy C2_INPUTS.npy OUT.npz DEVICE
Loads BUNDLE_DIR/submission.py, builds Submission(SFREQ=100, DEVICE), and for each challenge
calls .eval() and forward under torch.inference_mode() on its inputs, at batch size 1 (local
scoring) and on the whole batch; checks shape (B, 1), float32 and finiteness; saves the outputs.
"""

import importlib.util
import json
import sys

import numpy as np
import torch


def main():
    bundle, c1_inputs, c2_inputs, out, device = sys.argv[1:6]
    spec = importlib.util.spec_from_file_location("submission", f"{bundle}/submission.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    submission = module.Submission(SFREQ=100, DEVICE=torch.device(device))
    results, problems = {}, []
    for challenge, inputs in ((1, c1_inputs), (2, c2_inputs)):
        X = torch.from_numpy(np.load(inputs).astype(np.float32)).to(device)
        model = getattr(submission, f"get_model_challenge_{challenge}")()
        model.eval()
        with torch.inference_mode():
            single = torch.cat([model(X[i : i + 1]) for i in range(len(X))])
            batch = model(X)
        for name, y in (("batch_1", single), ("batch", batch)):
            if tuple(y.shape) != (len(X), 1):
                problems.append(f"challenge {challenge} {name}: shape {tuple(y.shape)}")
            if y.dtype != torch.float32:
                problems.append(f"challenge {challenge} {name}: dtype {y.dtype}")
            if not torch.isfinite(y).all():
                problems.append(f"challenge {challenge} {name}: non-finite outputs")
            results[f"c{challenge}_{name}"] = y.float().cpu().numpy()
    np.savez(out, **results)
    print(json.dumps({"problems": problems, "torch": torch.__version__}))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
