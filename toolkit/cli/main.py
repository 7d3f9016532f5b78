"""The `toolkit` command."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from toolkit.cli import data, doctor, pipeline, predict, recipes, score, slurm, tools
from toolkit.cli.common import setup_logging
from toolkit.cli.hpo import app as hpo_app
from toolkit.cli.ledger import app as ledger_app
from toolkit.cli.report import report_cmd
from toolkit.cli.reproduce import reproduce_cmd

app = typer.Typer(
    name="toolkit",
    help="Competition toolkit: recipes -> trained runs -> exported models -> verified bundles.",
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
)
app.add_typer(recipes.app, name="recipes")
app.add_typer(data.app, name="data")
app.add_typer(hpo_app, name="hpo")
app.command("run")(pipeline.run_cmd)
app.command("train")(pipeline.train_cmd)
app.command("export")(pipeline.export_cmd)
app.command(
    "bundle", context_settings={"allow_extra_args": True, "ignore_unknown_options": True}
)(pipeline.bundle_cmd)
app.command("verify")(pipeline.verify_cmd)
app.command("lr-find")(tools.lr_find_cmd)
app.command("test")(tools.test_cmd)
app.command("doctor")(doctor.doctor_cmd)
app.command("predict")(predict.predict_cmd)
app.command("score")(score.score_cmd)
app.command("reproduce")(reproduce_cmd)
app.add_typer(ledger_app, name="ledger")
app.add_typer(slurm.app, name="slurm")
app.command("report")(report_cmd)

PathOpt = Annotated[Path | None, typer.Option(show_default=False)]


@app.callback()
def main(
    ctx: typer.Context,
    data_dir: Annotated[Path | None, typer.Option(help="Data root (TOOLKIT_DATA_DIR).")] = None,
    cache_dir: Annotated[Path | None, typer.Option(help="Caches (TOOLKIT_CACHE_DIR).")] = None,
    runs_dir: Annotated[Path | None, typer.Option(help="Runs (TOOLKIT_RUNS_DIR).")] = None,
    submissions_dir: Annotated[
        Path | None, typer.Option(help="Bundles (TOOLKIT_SUBMISSIONS_DIR).")
    ] = None,
    device: Annotated[str | None, typer.Option(help="auto, cpu, cuda (TOOLKIT_DEVICE).")] = None,
    seed: Annotated[int | None, typer.Option(help="Seed (TOOLKIT_SEED).")] = None,
) -> None:
    """Global options override TOOLKIT_* environment variables and .env."""
    setup_logging()
    if device is not None and device.strip().lower() not in ("auto", ""):
        from toolkit.cli.common import cli_errors
        from toolkit.engine.device import resolve_device

        with cli_errors():
            resolve_device(device, source="--device")  # fail now, naming the flag
    ctx.obj = {
        "data_dir": data_dir,
        "cache_dir": cache_dir,
        "runs_dir": runs_dir,
        "submissions_dir": submissions_dir,
        "device": device,
        "seed": seed,
    }


if __name__ == "__main__":
    app()
