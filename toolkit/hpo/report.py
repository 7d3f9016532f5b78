"""`toolkit hpo show STUDY`: best trials, parameter importances, plots, and the best
parameters as a recipe that `extends:` the searched one (only the differences)."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
import yaml

from toolkit.config.recipes import nested_keys
from toolkit.fileio import atomic_path, write_text
from toolkit.hpo.search import HpoError, open_storage_url

BEST_RECIPE = "best.yaml"
PLOTS = {
    "history.png": ("optimisation history", "plot_optimization_history"),
    "importances.png": ("parameter importances", "plot_param_importances"),
    "parallel.png": ("parallel coordinates", "plot_parallel_coordinate"),
}


@dataclass
class StudyReport:
    """What `hpo show` prints and writes."""

    study: optuna.Study
    best: list[optuna.trial.FrozenTrial]
    importances: dict[str, float] | None
    files: dict[str, Path] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def load_study(record: dict[str, Any], storage: str | None = None) -> optuna.Study:
    """The study named in a study.json record (its storage, or `storage` if given)."""
    url = storage or record["storage"]
    try:
        return optuna.load_study(study_name=record["study"], storage=open_storage_url(url))
    except KeyError:
        raise HpoError(f"study {record['study']!r} is not in {url}") from None


def best_recipe_text(record: dict[str, Any], trial: optuna.trial.FrozenTrial) -> str:
    """The best parameters as a recipe: `extends:` the searched recipe, only the searched keys.

    A smoke study's values were found on the smoke data and space, so they go into the recipe's
    `smoke:` block (applied by `toolkit run ... --smoke`), not over the full-size settings."""
    given_as_file = Path(record["recipe"]).suffix in (".yaml", ".yml")
    parent = str(Path(record["recipe_file"]).resolve()) if given_as_file else record["recipe_name"]
    values = nested_keys(trial.params)
    if record.get("sets"):
        values_note = f"# The search ran with: {' '.join('--set ' + s for s in record['sets'])}\n"
    else:
        values_note = ""
    body: dict[str, Any] = {"extends": parent}
    body.update({"smoke": values} if record["smoke"] else values)
    header = (
        f"# Best parameters of study {record['study']} (trial {trial.number}, "
        f"{record['metric']} {trial.value:.6g}), written by `toolkit hpo show`.\n"
        f"#   toolkit run <this file>{' --smoke' if record['smoke'] else ''}\n" + values_note
    )
    return header + yaml.safe_dump(body, sort_keys=False)


def _plot(study: optuna.Study, function: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from optuna.visualization import matplotlib as plots

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        axes = getattr(plots, function)(study)
    figure = axes.figure if hasattr(axes, "figure") else axes.flat[0].figure
    figure.set_size_inches(8, 5)
    figure.tight_layout()
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=100)
    plt.close(figure)


def build_report(record: dict[str, Any], out: Path, top: int, storage: str | None) -> StudyReport:
    """Load the study, write plots and best.yaml into `out`, return the figures to print."""
    study = load_study(record, storage)
    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    if not complete:
        raise HpoError(f"study {record['study']!r}: no complete trial yet")
    reverse = record["direction"] == "maximize"
    best = sorted(complete, key=lambda t: t.value, reverse=reverse)[:top]
    report = StudyReport(study, best, None)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            report.importances = optuna.importance.get_param_importances(study)
    except (RuntimeError, ValueError) as exc:
        report.notes.append(f"no parameter importances: {exc}")
    out.mkdir(parents=True, exist_ok=True)
    for name, (caption, function) in PLOTS.items():
        if function == "plot_param_importances" and report.importances is None:
            continue
        try:
            _plot(study, function, out / name)
            report.files[caption] = out / name
        except Exception as exc:  # a plot that cannot be drawn (too few trials) is only a note
            report.notes.append(f"no {caption} plot: {type(exc).__name__}: {exc}")
    report.files["best parameters"] = write_text(
        out / BEST_RECIPE, best_recipe_text(record, best[0])
    )
    return report
