"""`toolkit bundle`: runs -> submissions/<competition>/<name>/ (upload zip, manifest, references).

The bundle folder appears whole or not at all (built beside, then renamed)."""

from __future__ import annotations

import tempfile
from pathlib import Path

from toolkit.bundle.archive import write_zip
from toolkit.bundle.manifest import MANIFEST, build_manifest, upload_manifest
from toolkit.bundle.verify import REFERENCE, UPLOAD
from toolkit.competitions import get_competition
from toolkit.config.settings import Settings
from toolkit.engine.rundir import RunDir
from toolkit.errors import ToolkitError
from toolkit.export.deterministic import deterministic_models
from toolkit.fileio import atomic_dir, write_json


def default_bundle_name(run: RunDir) -> str:
    recipe = run.recipe()
    return (recipe.bundle.name or recipe.slug) + ("-smoke" if recipe.smoke_applied else "")


def bundle_runs(
    runs: list[RunDir],
    settings: Settings,
    name: str | None = None,
    allow_unfinished: bool = False,
) -> Path:
    """Write the competition's submission for `runs`; return the bundle folder. A run that did
    not finish training (interrupted, failed) is refused unless `allow_unfinished`, and then
    the manifest names it."""
    if not runs:
        raise ToolkitError("bundle: give at least one run folder")
    unfinished: dict[str, str] = {}
    for run in runs:
        status = run.status()
        state = status.get("state", "unknown")
        if state != "trained":
            why = status.get("error") or status.get("signal") or status.get("reason") or ""
            unfinished[run.recipe().name] = f"{state}{f' ({why})' if why else ''}"
            if not allow_unfinished:
                raise ToolkitError(
                    f"{run.path}: training is {unfinished[run.recipe().name]}, not finished; "
                    "resume it (`--resume`) or bundle it anyway with --allow-unfinished"
                )
        if not (run.export_dir / "parity.json").is_file():
            raise ToolkitError(f"{run.path}: not exported yet; run `toolkit export {run.path}`")
    competition = get_competition(runs[0].recipe().competition)
    name = name or default_bundle_name(runs[0])
    target = settings.submissions_dir / competition.name / name
    with atomic_dir(target) as out, tempfile.TemporaryDirectory(prefix="bundle-") as tmp:
        content = Path(tmp)
        with deterministic_models(content):  # no call stacks, paths or per-process names
            fields = competition.write_bundle(runs, content, out / REFERENCE)
        if unfinished:
            fields["unfinished_runs"] = unfinished
        manifest = build_manifest(
            content, runs=runs, competition=competition.name, name=name, upload=UPLOAD, **fields
        )
        write_json(content / MANIFEST, upload_manifest(manifest))  # no times, no local paths
        write_json(out / MANIFEST, manifest)  # the full record, beside the zip
        write_zip(content, out / UPLOAD)
    return target
