"""`toolkit reproduce BUNDLE`: rebuild a bundle from its manifest and compare every file.

The manifest records each bundled run's resolved recipe and seed, the data it read, the code
commit and the package versions. Reproducing checks those against this machine (and says what
differs), retrains every run from its recipe with its seed into a work folder, re-exports,
re-bundles, and compares the new bundle with the old one file by file: the zip's entries, the
zip itself and the reference files. Model files that differ are run on the bundle's reference
inputs to say by how much their outputs differ.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from rich.console import Console

import toolkit
from toolkit.bundle.archive import extract_zip
from toolkit.bundle.manifest import bundle_folder, code_commit, load_manifest, package_versions
from toolkit.bundle.verify import REFERENCE, UPLOAD
from toolkit.config.settings import Settings
from toolkit.data.fingerprint import unreachable
from toolkit.errors import DataError, ToolkitError
from toolkit.fileio import write_text

MARKER = ".toolkit-reproduce"  # marks a work folder this command may empty and reuse
Status = Literal["same", "different", "missing", "extra"]


@dataclass(frozen=True)
class EnvCheck:
    """One thing about this machine compared with the bundle's: ok, warn (reported, cannot be
    told apart) or differs."""

    name: str
    state: Literal["ok", "warn", "differs"]
    detail: str


@dataclass(frozen=True)
class FileResult:
    """One file of the bundle: same, different (with how), missing or extra in the rebuild."""

    name: str
    status: Status
    detail: str = ""


@dataclass
class Reproduction:
    """What `reproduce` found; `ok` only when every file and the environment match."""

    bundle: Path
    rebuilt: Path | None
    environment: list[EnvCheck]
    files: list[FileResult] = field(default_factory=list)

    @property
    def different(self) -> list[FileResult]:
        return [f for f in self.files if f.status != "same"]

    @property
    def ok(self) -> bool:
        env_ok = all(c.state != "differs" for c in self.environment)
        return bool(self.files) and not self.different and env_ok


# -- reading the bundle ----------------------------------------------------------------------


def environment_checks(manifest: dict[str, Any]) -> list[EnvCheck]:
    """The toolkit version must match (else an error); packages and the code commit are
    compared and reported."""
    recorded = manifest.get("toolkit_version")
    if recorded != toolkit.__version__:
        raise ToolkitError(
            f"manifest from toolkit {recorded or 'of unknown version'}, this is toolkit "
            f"{toolkit.__version__}: install toolkit {recorded} to reproduce this bundle"
        )
    checks = [EnvCheck("toolkit", "ok", toolkit.__version__)]
    here = package_versions(tuple(manifest.get("packages", {})))
    for name, then in manifest.get("packages", {}).items():
        now = here.get(name)
        same = then == now
        detail = str(now) if same else f"{then} in the bundle, {now} here"
        checks.append(EnvCheck(name, "ok" if same else "differs", detail))
    checks.append(_commit_check(manifest.get("code_commit"), code_commit()))
    return checks


def _commit_check(then: str | None, now: str | None) -> EnvCheck:
    """The bundle's code commit against this checkout's: a different commit differs; an
    unknown one, or uncommitted changes on either side, is a warning (it cannot be told)."""
    name = "code commit"
    if then is None or now is None:
        unknown = "the bundle's" if then is None else "this checkout's"
        detail = f"{unknown} commit is unknown (not a git checkout?): cannot tell whether the code"
        return EnvCheck(name, "warn", f"{detail} matches (bundle {then}, here {now})")
    base_then, base_now = then.removesuffix("-dirty"), now.removesuffix("-dirty")
    if base_then != base_now:
        return EnvCheck(name, "differs", f"{then} in the bundle, {now} here")
    dirty = [w for w, c in (("the bundle's", then), ("this checkout", now)) if c.endswith("-dirty")]
    if dirty:
        detail = f"{base_now}, but {' and '.join(dirty)} had uncommitted changes"
        return EnvCheck(name, "warn", f"{detail}: the code may differ")
    return EnvCheck(name, "ok", now)


def run_records(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    records = manifest.get("runs") or []
    if not records:
        raise ToolkitError(
            f"bundle {manifest.get('name', '?')}: its manifest records no runs (made before "
            "`toolkit reproduce` existed?); rebuild it with `toolkit run`"
        )
    return records


def check_data(manifest: dict[str, Any], settings: Settings) -> None:
    """One line naming the first recorded data file that is gone or changed."""
    problems = [
        p for r in run_records(manifest) for p in unreachable(r.get("data") or {}, settings)
    ]
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise DataError(f"data of the bundle is no longer reachable: {problems[0]}{more}")


# -- rebuilding --------------------------------------------------------------------------------


def prepare_workdir(workdir: Path) -> Path:
    """An empty work folder: new, or one an earlier reproduce made (emptied); anything else
    that is not empty is refused rather than deleted."""
    workdir = Path(workdir).expanduser().resolve()
    if workdir.exists():
        if not workdir.is_dir():
            raise ToolkitError(f"--workdir {workdir}: not a folder")
        if any(workdir.iterdir()) and not (workdir / MARKER).is_file():
            raise ToolkitError(
                f"--workdir {workdir}: not empty and not made by `toolkit reproduce`; "
                "give an empty or new folder"
            )
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True)
    write_text(workdir / MARKER, "a work folder of `toolkit reproduce`: emptied on reuse\n")
    return workdir


def _recipe(record: dict[str, Any], overrides: list[str]):
    from toolkit.config.recipes import parse_override, set_key, validate_recipe

    data = dict(record["recipe"])
    origins: dict[str, str] = {}
    for text in overrides:
        key, value = parse_override(text)
        data = set_key(data, key, value, f"--set {text}", origins)
    return validate_recipe(data, origins, f"the manifest's recipe {data.get('name', '')}")


def rebuild(
    manifest: dict[str, Any],
    settings: Settings,
    workdir: Path,
    overrides: list[str],
    console: Console,
    command: str,
) -> Path:
    """Retrain every recorded run with its seed under `workdir`, export, bundle; the new
    bundle folder."""
    from toolkit.bundle.build import bundle_runs
    from toolkit.engine.ensemble import train_ensemble
    from toolkit.engine.train import train
    from toolkit.export.run import export_run

    base = settings.model_copy(
        update={"runs_dir": workdir / "runs", "submissions_dir": workdir / "submissions"}
    )
    runs = []
    for record in run_records(manifest):
        recipe = _recipe(record, overrides)
        seeded = (
            base if record.get("seed") is None else base.model_copy(update={"seed": record["seed"]})
        )
        console.print(f"retraining [bold]{recipe.name}[/] (seed {seeded.seed})")
        if recipe.ensemble is not None:
            run = train_ensemble(recipe, seeded, command=command, resume=False, console=console)
        else:
            run = train(recipe, seeded, command=command, console=console)
        export_run(run)
        runs.append(run)
    return bundle_runs(runs, base, manifest.get("name"))


# -- comparing ---------------------------------------------------------------------------------


def _files(folder: Path) -> dict[str, Path]:
    return {p.relative_to(folder).as_posix(): p for p in sorted(folder.rglob("*")) if p.is_file()}


def _is_model(path: Path) -> bool:
    from toolkit.export.deterministic import is_torchscript

    return path.suffix == ".onnx" or is_torchscript(path)


def _run_model(path: Path, x: np.ndarray) -> np.ndarray:
    from toolkit.export.models import run_onnx, run_torchscript

    if path.suffix != ".onnx":
        return run_torchscript(path, x.astype(np.float32))
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    inputs = session.get_inputs()
    if len(inputs) != 1:
        raise ValueError(f"takes {len(inputs)} inputs")
    dtype = np.int64 if "int64" in inputs[0].type else np.float32
    return run_onnx(path, x.astype(dtype))


def output_difference(old: Path, new: Path, candidates: list[Path]) -> str:
    """How far apart two model files' outputs are, on the first reference inputs both take."""
    for candidate in candidates:
        try:
            x = np.load(candidate)
            a, b = _run_model(old, x), _run_model(new, x)
        except Exception:  # not inputs this model takes: try the next
            continue
        if a.shape != b.shape:
            return f"outputs differ in shape: {a.shape} vs {b.shape}"
        worst = float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64))))
        return f"max |output difference| {worst:.3g} on {candidate.name} ({len(x)} inputs)"
    return "a model whose outputs could not be compared (no reference inputs it takes)"


def _array_difference(old: Path, new: Path) -> str | None:
    try:
        a, b = np.load(old), np.load(new)
    except Exception:
        return None
    if a.shape != b.shape:
        return f"arrays of shape {a.shape} vs {b.shape}"
    if a.dtype.kind not in "fiub":
        return None
    worst = float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64)))) if a.size else 0.0
    return f"max |difference| {worst:.3g}"


def _describe(old: Path, new: Path, candidates: list[Path]) -> str:
    if _is_model(old) and _is_model(new):
        return output_difference(old, new, candidates)
    if old.suffix == ".npy":
        detail = _array_difference(old, new)
        if detail:
            return detail
    return f"{old.stat().st_size:,} vs {new.stat().st_size:,} bytes"


def compare_bundles(old: Path, new: Path, extra_inputs: list[Path] = ()) -> list[FileResult]:
    """Every file of the old bundle against the rebuilt one: each zip entry (as `zip:NAME`),
    the zip, and the reference files; the manifest beside the zip is left out (it records
    when and from which folders the bundle was made)."""
    with tempfile.TemporaryDirectory(prefix="toolkit-reproduce-") as tmp:
        unpacked = []
        for side, folder in (("old", old), ("new", new)):
            target = Path(tmp) / side
            target.mkdir()
            if (folder / UPLOAD).is_file():
                extract_zip(folder / UPLOAD, target)
            unpacked.append(target)
        sides = []
        for folder, content in zip((old, new), unpacked, strict=True):
            files = {f"zip:{k}": v for k, v in _files(content).items()}
            if (folder / UPLOAD).is_file():
                files[UPLOAD] = folder / UPLOAD
            files.update({f"{REFERENCE}/{k}": v for k, v in _files(folder / REFERENCE).items()})
            sides.append(files)
        before, after = sides
        references = [p for k, p in before.items() if k.startswith(REFERENCE)]
        candidates = [p for p in sorted(references) if "input" in p.name and p.suffix == ".npy"]
        candidates += list(extra_inputs)
        results = []
        for name in sorted(set(before) | set(after)):
            if name not in after:
                results.append(FileResult(name, "missing", "not in the rebuilt bundle"))
            elif name not in before:
                results.append(FileResult(name, "extra", "only in the rebuilt bundle"))
            elif before[name].read_bytes() == after[name].read_bytes():
                results.append(FileResult(name, "same"))
            else:
                results.append(
                    FileResult(name, "different", _describe(before[name], after[name], candidates))
                )
        return results


def reproduce(
    bundle: Path,
    settings: Settings,
    workdir: Path | None = None,
    overrides: list[str] = (),
    console: Console | None = None,
) -> Reproduction:
    """Check, rebuild and compare `bundle`; raises ToolkitError on bad input (no manifest,
    another toolkit version, data gone)."""
    console = console or Console()
    folder = bundle_folder(bundle)
    manifest = load_manifest(folder)
    environment = environment_checks(manifest)
    check_data(manifest, settings)
    if workdir is None:
        competition = str(manifest.get("competition", "bundle"))
        workdir = settings.cache_dir / "reproduce" / competition / str(manifest.get("name"))
    workdir = prepare_workdir(workdir)
    command = f"toolkit reproduce {folder}"
    rebuilt = rebuild(manifest, settings, workdir, list(overrides), console, command)
    inputs = sorted((workdir / "runs").rglob("export/reference_inputs.npy"))
    result = Reproduction(folder, rebuilt, environment)
    result.files = compare_bundles(folder, rebuilt, inputs)
    return result
