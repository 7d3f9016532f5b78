"""`toolkit doctor`: versions, CUDA, resolved paths and recipes."""

from __future__ import annotations

import platform

import typer
from rich.table import Table

from toolkit.cli.common import cli_errors, console, settings_from


def doctor_cmd(ctx: typer.Context) -> None:
    """Print versions, CUDA availability, resolved paths and where recipes come from."""
    import torch

    from toolkit.bundle.manifest import code_commit, package_versions
    from toolkit.competitions import competition_names
    from toolkit.config.recipes import list_recipes, recipe_roots

    with cli_errors():
        settings = settings_from(ctx)
        table = Table(show_header=False, box=None)
        table.add_row("python", platform.python_version())
        table.add_row("toolkit commit", code_commit() or "unknown")
        for name, ver in package_versions().items():
            table.add_row(name, ver or "[red]not installed[/]")
        cuda = torch.cuda.is_available()
        gpus = ", ".join(torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count()))
        table.add_row("cuda", f"yes ({gpus})" if cuda else "no (training runs on the CPU)")
        table.add_row("device setting", settings.device)
        for field in ("data_dir", "cache_dir", "runs_dir", "submissions_dir"):
            table.add_row(field, str(getattr(settings, field)))
        table.add_row("s3", f"anon={settings.s3.anon} endpoint={settings.s3.endpoint_url}")
        table.add_row("recipe folders", ", ".join(map(str, recipe_roots(settings.recipes_dir))))
        table.add_row("recipes", str(len(list_recipes(settings.recipes_dir))))
        table.add_row("competitions", ", ".join(competition_names()))
        console.print(table)
