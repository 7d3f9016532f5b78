"""`toolkit recipes list|show`."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.syntax import Syntax
from rich.table import Table

from toolkit.cli.common import cli_errors, console, settings_from
from toolkit.config.recipes import dump_recipe, list_recipes, resolve_recipe

app = typer.Typer(help="List and show the built-in recipes.", no_args_is_help=True)


@app.command("list")
def list_cmd(ctx: typer.Context) -> None:
    """Every built-in recipe: name, competition, stage, expected score, description."""
    with cli_errors():
        settings = settings_from(ctx)
        table = Table(title="recipes", title_justify="left")
        for col in ("name", "competition", "stage", "expected", "description"):
            table.add_column(col, overflow="fold")
        for entry in list_recipes(settings.recipes_dir):
            recipe = resolve_recipe(str(entry.path))
            stage = recipe.stage
            table.add_row(
                entry.name,
                recipe.competition,
                "" if stage.number is None else str(stage.number),
                "" if stage.expected_score is None else f"{stage.expected_score:.3f}",
                (recipe.description or stage.description).strip().splitlines()[0]
                if (recipe.description or stage.description).strip()
                else "",
            )
        console.print(table)


@app.command("show")
def show_cmd(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Recipe name (eeg2025/c1-baseline) or path.")],
    smoke: Annotated[bool, typer.Option(help="Apply the recipe's smoke block.")] = False,
    set_: Annotated[
        list[str] | None, typer.Option("--set", help="Override a key: a.b=value (repeatable).")
    ] = None,
) -> None:
    """The fully resolved recipe (extends, smoke block and --set applied) as YAML."""
    with cli_errors():
        settings = settings_from(ctx)
        recipe = resolve_recipe(name, smoke=smoke, overrides=set_ or [],
                                recipes_dir=settings.recipes_dir)  # fmt: skip
        text = dump_recipe(recipe)
        if console.is_terminal:
            console.print(Syntax(text, "yaml"))
        else:
            console.print(text, end="", markup=False)
