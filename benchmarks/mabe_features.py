"""Frames per second of MABe feature extraction: the toolkit's numpy features (standalone.py,
what training and predict.py run) against a straightforward pandas implementation of the SAME
45 pair features (pivot, interpolate, Series arithmetic per stream), on the same synthetic
videos in one run; the two must agree.

    .venv/bin/python benchmarks/mabe_features.py [--frames 9000] [--videos 3]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from toolkit.competitions.mabe import standalone as S
from toolkit.competitions.mabe.synth import write_synthetic


def pandas_features(track: pd.DataFrame, streams, ppc: float, fps: float) -> np.ndarray:
    """The 45 pair features with pandas (30 fps tracking; the skeleton's direct parts or the
    synthetic labs' fallbacks), column by column."""
    wide = track.pivot_table(index="video_frame", columns=["mouse_id", "bodypart"],
                             values=["x", "y"], dropna=False)  # fmt: skip
    wide = wide.reindex(range(int(track["video_frame"].max()) + 1))
    missing_parts = wide.isna()
    wide = wide.interpolate(limit_direction="both") / ppc

    def option(m: int, name: str) -> tuple[str, ...]:
        return next(o for o in S.FALLBACKS[name] if all(("x", m + 1, p) in wide for p in o))

    def part(m: int, name: str, axis: str) -> pd.Series:
        return pd.concat([wide[(axis, m + 1, p)] for p in option(m, name)], axis=1).mean(axis=1)

    def missing(m: int) -> pd.Series:
        gone = [pd.concat([missing_parts[("x", m + 1, p)] for p in option(m, name)],
                          axis=1).all(axis=1) for name in S.SKELETON]  # fmt: skip
        return pd.concat(gone, axis=1).mean(axis=1)

    def grad(s: pd.Series) -> pd.Series:
        g = (s.shift(-1) - s.shift(1)) / 2
        g.iloc[0] = s.iloc[1] - s.iloc[0]
        g.iloc[-1] = s.iloc[-1] - s.iloc[-2]
        return g * fps

    mice = sorted({a for s in streams for a in s})
    pts = {m: {p: (part(m, p, "x"), part(m, p, "y")) for p in S.SKELETON} for m in mice}
    frame = {}
    for m in mice:
        nx, ny = pts[m]["nose"]
        tx, ty = pts[m]["tail_base"]
        ox = (pts[m]["ear_left"][0] + pts[m]["ear_right"][0]) / 2
        oy = (pts[m]["ear_left"][1] + pts[m]["ear_right"][1]) / 2
        norm = np.hypot(ox - tx, oy - ty)
        cx, cy = pts[m]["body_center"]
        speed_c = np.hypot(grad(cx), grad(cy))
        frame[m] = {
            "ox": ox, "oy": oy, "cos": (ox - tx) / norm, "sin": (oy - ty) / norm,
            "length": np.hypot(nx - tx, ny - ty), "speed_c": speed_c,
            "speed_n": np.hypot(grad(nx), grad(ny)), "accel_c": grad(speed_c),
            "missing": missing(m),
        }  # fmt: skip
    out = []
    for a, b in streams:
        fa = frame[a]

        def local(m: int, p: str, fa: dict = fa) -> tuple[pd.Series, pd.Series]:
            dx, dy = pts[m][p][0] - fa["ox"], pts[m][p][1] - fa["oy"]
            return dx * fa["cos"] + dy * fa["sin"], -dx * fa["sin"] + dy * fa["cos"]

        cols = []
        for p in S.SKELETON:
            cols += [v / 10 for v in local(a, p)]
        flag = pd.Series(float(a == b), index=wide.index)
        cols += [flag, fa["length"] / 10, fa["speed_c"] / 10, fa["speed_n"] / 10,
                 fa["accel_c"] / 100, fa["missing"]]  # fmt: skip
        if a == b:
            zeros = pd.Series(0.0, index=wide.index)
            cols += [zeros] * 28 + [pd.Series(1.0, index=wide.index)]
        else:
            fb = frame[b]
            for p in S.SKELETON:
                cols += [v / 10 for v in local(b, p)]
            pairs = [("nose", "nose"), ("nose", "body_center"), ("nose", "tail_base"),
                     ("body_center", "body_center"), ("tail_base", "nose")]  # fmt: skip
            dist = [np.hypot(pts[a][p][0] - pts[b][q][0], pts[a][p][1] - pts[b][q][1])
                    for p, q in pairs]  # fmt: skip
            cols += [d / 10 for d in dist] + [np.exp(-d / 3) for d in dist]
            cols += [fb["length"] / 10, fb["speed_c"] / 10, fb["accel_c"] / 100,
                     -grad(dist[3]) / 10]  # fmt: skip
            cols += [fb["cos"] * fa["cos"] + fb["sin"] * fa["sin"],
                     fb["sin"] * fa["cos"] - fb["cos"] * fa["sin"]]  # fmt: skip
            bx, by = local(b, "body_center")  # the bearing from the ears' midpoint
            r = np.maximum(np.hypot(bx, by), 1e-6)
            cols += [bx / r, by / r, fb["missing"]]
        out.append(pd.concat(cols, axis=1).to_numpy(np.float32))
    return np.clip(np.nan_to_num(np.stack(out)), -50, 50)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=9000, help="frames per video (30 fps)")
    parser.add_argument("--videos", type=int, default=3, help="videos (one lab each, 30 fps)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = write_synthetic(Path(tmp), videos=3, frames=args.frames, seed=0, test_videos=1)
        table = pd.read_csv(root / "train.csv")
        table = table[table["frames_per_second"] == 30.0].head(args.videos)
        rows = []
        for row in table.to_dict("records"):
            name = f"{row['lab_id']}/{row['video_id']}.parquet"
            track = S.read_tracking(root / "train_tracking" / name)
            mice = int(track["mouse_id"].max())
            streams = S.all_streams(mice)
            ppc = float(row["pix_per_cm_approx"])
            t = time.perf_counter()
            fast = S.video_features(track, kind="pair", fps_in=30.0, fps=30.0, ppc=ppc,
                                    streams=streams, warn=lambda m: None, where="")  # fmt: skip
            numpy_s = time.perf_counter() - t
            t = time.perf_counter()
            slow = pandas_features(track, streams, ppc, 30.0)
            pandas_s = time.perf_counter() - t
            err = float(np.abs(fast - slow).max())
            frames = fast.shape[1]
            rows.append((row["lab_id"], mice, len(streams), frames, frames / numpy_s,
                         frames / pandas_s, pandas_s / numpy_s, err))  # fmt: skip
    print(f"{'lab':<12}{'mice':>5}{'streams':>8}{'frames':>8}{'numpy f/s':>12}"
          f"{'pandas f/s':>12}{'speed-up':>10}{'max |diff|':>12}")  # fmt: skip
    for lab, mice, streams, frames, fast, slow, ratio, err in rows:
        print(f"{lab:<12}{mice:>5}{streams:>8}{frames:>8}{fast:>12,.0f}{slow:>12,.0f}"
              f"{ratio:>9.1f}x{err:>12.1e}")  # fmt: skip


if __name__ == "__main__":
    main()
