"""`toolkit report RUN_OR_BUNDLE`: one HTML page (index.html) with PNG figures beside it.

For each run: learning curves from history.json (an ensemble: each member's), the final
metrics beside the baselines, and the competition's own figures through its optional
`report_figures(run, out)` hook. For a bundle: its runs, plus what the manifest says (files,
hashes, versions, data sources).
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from toolkit.bundle.manifest import MANIFEST, load_manifest
from toolkit.engine.rundir import RunDir
from toolkit.errors import ToolkitError
from toolkit.fileio import read_json, write_text
from toolkit.report.figures import learning_curves, metrics_bars

PAGE = "index.html"
STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 1150px; color: #222;
       background: #fff; }
h1 { font-size: 1.5rem; } h2 { font-size: 1.2rem; margin-top: 2rem; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; margin: 0.5rem 0 1rem; font-size: 0.9rem; }
td, th { border: 1px solid #ddd; padding: 0.25rem 0.6rem; text-align: left; vertical-align: top; }
th { background: #f4f4f4; } code { font-size: 0.85rem; }
figure { margin: 1rem 0; } figcaption { color: #555; font-size: 0.9rem; }
img { max-width: 100%; border: 1px solid #eee; }
"""


@dataclass
class Section:
    """One run's part of the page."""

    title: str
    rows: list[tuple[str, str]]
    figures: list[tuple[str, Path]] = field(default_factory=list)


def _slug(text: str) -> str:
    return re.sub(r"[^\w.-]+", "-", text).strip("-") or "run"


def _histories(run: RunDir) -> list[tuple[str, list[dict[str, Any]], RunDir]]:
    """(label, history rows, run) for a run, or for each member of an ensemble run."""
    if run.members_file.is_file():
        members = read_json(run.members_file)
        out = []
        for member in members:
            sub = RunDir(Path(member["run"]))
            out += [(f"member {member['name']}", h, r) for _, h, r in _histories(sub)]
        return out
    if not run.history_json.is_file():
        raise ToolkitError(f"{run.path}: no history.json (was it trained?); nothing to report")
    history = read_json(run.history_json)
    if not history:
        raise ToolkitError(f"{run.path}: history.json has no epochs; nothing to report")
    return [("", history, run)]


def run_section(run: RunDir, out: Path) -> Section:
    """Figures and facts of one run, written into `out`."""
    from toolkit.competitions import get_competition

    recipe = run.recipe()
    metrics = run.metrics()
    histories = _histories(run)
    slug = _slug(f"{recipe.name}-{run.path.name}")
    metric = metrics.get("metric", "score")
    figures: list[tuple[str, Path]] = []
    for label, history, _ in histories:
        name = f"{slug}-{_slug(label)}-curves.png" if label else f"{slug}-curves.png"
        caption = f"learning curves{f' ({label})' if label else ''}: train/val loss, " \
                  f"validation {metric}, learning rate"  # fmt: skip
        figures.append((caption, learning_curves(history, metric, out / name)))
    if metrics:
        figures.append(("final validation score beside the baselines",
                        metrics_bars(metrics, out / f"{slug}-metrics.png")))  # fmt: skip
    hook = getattr(get_competition(recipe.competition), "report_figures", None)
    if hook is not None:
        figures += hook(run, out)
    value = metrics.get(f"val_{metric}")
    epochs = metrics.get("epochs_completed", len(histories[0][1]))
    rows = [
        ("recipe", recipe.name),
        ("run", str(run.path)),
        ("stage", f"{recipe.stage.number} (expected {recipe.stage.expected_score})"),
        ("validation", f"{metric} {value:.4f}" if value is not None else "not scored"),
        ("baselines", ", ".join(f"{k} {v:.4f}" for k, v in metrics.get("baselines", {}).items())),
        ("epochs", f"{epochs} ({metrics.get('stopped_by', '')})"),
        ("seed", str(metrics.get("seed", ""))),
    ]
    if metrics.get("eval_score") is not None:
        rows.append(("competition score (evaluate hook)", f"{metrics['eval_score']:.4f}"))
    return Section(f"{recipe.name} · {run.path.name}", rows, figures)


def bundle_rows(manifest: dict[str, Any]) -> list[tuple[str, str]]:
    """What a bundle's manifest says, as table rows."""
    packages = ", ".join(f"{k} {v}" for k, v in manifest.get("packages", {}).items())
    files = manifest.get("files", {})
    listed = "<br>".join(f"<code>{html.escape(n)}</code> {d[:12]}" for n, d in files.items())
    sources = [
        f"{s.get('source')} ({len(s.get('files', []))} files)"
        for r in manifest.get("runs", []) for s in (r.get("data") or {}).get("sources", [])
    ]  # fmt: skip
    return [
        ("competition", html.escape(str(manifest.get("competition")))),
        ("made", html.escape(str(manifest.get("created", "")))),
        ("code commit", html.escape(str(manifest.get("code_commit")))),
        ("packages", html.escape(packages)),
        ("data", html.escape("; ".join(sources)) or "not recorded"),
        ("files (sha256)", listed),
    ]


def _runs_of_bundle(folder: Path, manifest: dict[str, Any]) -> list[RunDir]:
    paths = [r.get("run") for r in manifest.get("runs", [])]
    if not any(paths):
        paths = [c.get("run") for c in manifest.get("challenges", {}).values()]
        paths.append(manifest.get("run"))
    runs = []
    for path in filter(None, paths):
        run = RunDir(Path(path))
        if not run.recipe_file.is_file():
            raise ToolkitError(f"{folder}: its run folder {path} is gone; nothing to report")
        runs.append(run)
    if not runs:
        raise ToolkitError(f"{folder}: its {MANIFEST} names no run folder; nothing to report")
    return runs


def _html(title: str, sections: list[Section], bundle: list[tuple[str, str]] | None) -> str:
    def table(rows: list[tuple[str, str]], escape: bool) -> str:
        body = "".join(
            f"<tr><th>{html.escape(k)}</th><td>{html.escape(v) if escape else v}</td></tr>"
            for k, v in rows
        )
        return f"<table>{body}</table>"

    parts = [f"<!doctype html><html lang='en'><head><meta charset='utf-8'>"
             f"<title>{html.escape(title)}</title><style>{STYLE}</style></head><body>",
             f"<h1>{html.escape(title)}</h1>"]  # fmt: skip
    if bundle is not None:
        parts += ["<h2>bundle</h2>", table(bundle, escape=False)]
    for section in sections:
        parts += [f"<h2>{html.escape(section.title)}</h2>", table(section.rows, escape=True)]
        for caption, path in section.figures:
            text = html.escape(caption)
            parts.append(f"<figure><img src='{html.escape(path.name)}' alt='{text}'>"
                         f"<figcaption>{text}</figcaption></figure>")  # fmt: skip
    parts.append("</body></html>\n")
    return "\n".join(parts)


def write_report(target: Path, out: Path | None = None) -> Path:
    """Write the report of a run folder or a bundle (folder or zip); returns index.html."""
    target = Path(target).expanduser().resolve()
    if not target.exists():
        raise ToolkitError(f"{target}: no such run folder or bundle")
    run = RunDir(target)
    if target.is_dir() and run.recipe_file.is_file():
        runs, manifest, folder = [run], None, target
    else:
        folder = target if target.is_dir() else target.parent
        manifest = load_manifest(folder)
        runs = _runs_of_bundle(folder, manifest)
    for r in runs:
        _histories(r)  # a run without history fails here, before anything is written
    out = (Path(out).expanduser() if out is not None else folder / "report").resolve()
    out.mkdir(parents=True, exist_ok=True)
    sections = [run_section(r, out) for r in runs]
    title = f"report: {manifest['name']}" if manifest else f"report: {runs[0].recipe().name}"
    page = _html(title, sections, bundle_rows(manifest) if manifest else None)
    return write_text(out / PAGE, page)
