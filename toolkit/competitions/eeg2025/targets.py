"""Challenge 1 targets from a BIDS `_events.tsv`: response time from stimulus, per trial."""

from __future__ import annotations

import numpy as np
import pandas as pd

TRIAL_START = "contrastTrial_start"
STIMULI = ("left_target", "right_target")
RESPONSES = ("left_buttonPress", "right_buttonPress")


def read_events(path) -> pd.DataFrame:
    """Read an events.tsv (`n/a` as missing), sorted by onset."""
    events = pd.read_csv(path, sep="\t", na_values=["n/a"], keep_default_na=True)
    missing = {"onset", "value"} - set(events.columns)
    if missing:
        raise ValueError(f"{path}: events file lacks column(s) {sorted(missing)}")
    return events.sort_values("onset", kind="stable").reset_index(drop=True)


def c1_trials(events: pd.DataFrame) -> pd.DataFrame:
    """One row per usable trial: `stimulus_onset`, `response_onset`, `rt_from_stimulus`, `side`.

    A trial runs from a `contrastTrial_start` to the next one (or the end). Its stimulus is the
    first left/right target in it; its response the first button press after the stimulus and
    still inside the trial. Trials lacking either are dropped (presses without a target, missed
    targets)."""
    onsets = events["onset"].to_numpy(dtype=float)
    values = events["value"].astype(str).to_numpy()
    starts = np.flatnonzero(values == TRIAL_START)
    rows = []
    for i, start in enumerate(starts):
        stop = starts[i + 1] if i + 1 < len(starts) else len(values)
        inside = range(start + 1, stop)
        stim = next((j for j in inside if values[j] in STIMULI), None)
        if stim is None:
            continue
        resp = next((j for j in range(stim + 1, stop) if values[j] in RESPONSES), None)
        if resp is None:
            continue
        rows.append(
            {
                "trial_onset": onsets[start],
                "stimulus_onset": onsets[stim],
                "response_onset": onsets[resp],
                "rt_from_stimulus": onsets[resp] - onsets[stim],
                "side": values[stim].split("_")[0],
            }
        )
    columns = ["trial_onset", "stimulus_onset", "response_onset", "rt_from_stimulus", "side"]
    return pd.DataFrame(rows, columns=columns)
