"""`toolkit doctor`: versions, CUDA, container facts, resolved paths and recipes."""

from __future__ import annotations

import os
import platform
import re
from pathlib import Path

import typer
from rich.table import Table

from toolkit.cli.common import cli_errors, console, settings_from

MARKUP = re.compile(r"\[/?[a-z ]*\]")  # rich's [red]...[/]


def _container() -> str:
    """Whether this runs in a container, and the image's labels (set by the Dockerfile)."""
    from toolkit.engine.device import in_container

    if not in_container():
        return "no"
    image = {k: os.environ.get(f"TOOLKIT_IMAGE_{k.upper()}") for k in ("version", "revision")}
    created = os.environ.get("TOOLKIT_IMAGE_CREATED")
    if not any(image.values()):
        return "yes (not the toolkit image)"
    version, revision = image["version"] or "?", image["revision"] or "?"
    return f"yes: toolkit image {version}, commit {revision}, built {created or '?'}"


def _user() -> str:
    """uid/gid, and the user name if /etc/passwd knows it (`docker run --user` may not)."""
    if not hasattr(os, "getuid"):
        return "n/a"
    import pwd

    uid, gid = os.getuid(), os.getgid()
    try:
        name = pwd.getpwuid(uid).pw_name
    except KeyError:
        name = "not in /etc/passwd"
    return f"uid {uid}, gid {gid} ({name}), HOME={os.environ.get('HOME', '?')}"


def _access(path: Path) -> str:
    """`writable`, `read-only`, or `missing` (the nearest existing parent decides writability)."""
    if not path.exists():
        parent = next((p for p in path.parents if p.exists()), None)
        creatable = parent is not None and os.access(parent, os.W_OK)
        return "missing, will be created" if creatable else "[red]missing, cannot be created[/]"
    if os.access(path, os.W_OK):
        return "writable"
    return "read-only" if os.access(path, os.R_OK) else "[red]not readable[/]"


def doctor_cmd(ctx: typer.Context) -> None:
    """Print versions, CUDA availability, resolved paths and where recipes come from."""
    import torch

    from toolkit.bundle.manifest import code_commit, package_versions
    from toolkit.competitions import competition_names
    from toolkit.config.recipes import list_recipes, recipe_roots
    from toolkit.engine.device import cuda_absence_reason

    with cli_errors():
        settings = settings_from(ctx)
        table = Table(show_header=False, box=None)
        table.add_row("python", platform.python_version())
        # No git inside the image: the commit it was built from is its label.
        image_commit = os.environ.get("TOOLKIT_IMAGE_REVISION")
        table.add_row(
            "toolkit commit",
            code_commit() or (f"{image_commit} (image label)" if image_commit else "unknown"),
        )
        for name, ver in package_versions().items():
            table.add_row(name, ver or "[red]not installed[/]")
        cuda = torch.cuda.is_available()
        gpus = ", ".join(torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count()))
        wants_cuda = settings.device.strip().lower().startswith(("cuda", "gpu"))
        problems: list[str] = []
        if cuda:
            table.add_row("cuda", f"yes ({gpus})")
        elif wants_cuda:
            table.add_row("cuda", f"[red]no: TOOLKIT_DEVICE={settings.device}, so training "
                          "will stop[/] (set TOOLKIT_DEVICE=auto to train on the CPU)")  # fmt: skip
            problems.append(f"TOOLKIT_DEVICE={settings.device} but no CUDA device is visible")
        else:
            table.add_row("cuda", "no (training runs on the CPU)")
        if not cuda:
            table.add_row("", f"why: {cuda_absence_reason()}")
        table.add_row("device setting", settings.device)
        table.add_row("container", _container())
        table.add_row("user", _user())
        for field in ("data_dir", "cache_dir", "runs_dir", "submissions_dir"):
            path = getattr(settings, field)
            access = _access(path)
            table.add_row(field, f"{path} [dim]({access})[/]")
            # Data may be read-only; the toolkit writes the other three.
            if field != "data_dir" and access not in ("writable", "missing, will be created"):
                plain = MARKUP.sub("", access)
                problems.append(f"{field} {path} is {plain}")
        table.add_row("s3", f"anon={settings.s3.anon} endpoint={settings.s3.endpoint_url}")
        table.add_row("recipe folders", ", ".join(map(str, recipe_roots(settings.recipes_dir))))
        table.add_row("recipes", str(len(list_recipes(settings.recipes_dir))))
        table.add_row("competitions", ", ".join(competition_names()))
        console.print(table)
        if problems:
            console.print(f"[red]not ready:[/] {'; '.join(problems)}")
            raise typer.Exit(1)
