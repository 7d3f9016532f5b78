"""Competition registry. The core never imports a competition by name: every sub-package of
`toolkit.competitions` (and any `toolkit.competitions` entry point) registers itself on import."""

from __future__ import annotations

import difflib
import importlib
import pkgutil
from importlib.metadata import entry_points

from toolkit.competitions.protocol import Competition
from toolkit.errors import RecipeError

_REGISTRY: dict[str, Competition] = {}
_DISCOVERED = False


def register(competition: Competition) -> Competition:
    """Add a competition to the registry (called by each competition package on import)."""
    _REGISTRY[competition.name] = competition
    return competition


def _discover() -> None:
    global _DISCOVERED
    if _DISCOVERED:
        return
    _DISCOVERED = True
    for info in pkgutil.iter_modules(__path__):
        if info.ispkg:
            importlib.import_module(f"{__name__}.{info.name}")
    for ep in entry_points(group="toolkit.competitions"):
        ep.load()


def competition_names() -> list[str]:
    """Names of every registered competition."""
    _discover()
    return sorted(_REGISTRY)


def get_competition(name: str, where: str = "") -> Competition:
    """The registered competition called `name`; unknown names are a RecipeError with hints."""
    _discover()
    if name in _REGISTRY:
        return _REGISTRY[name]
    close = difflib.get_close_matches(name, list(_REGISTRY), n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    prefix = f"{where}: " if where else ""
    known = ", ".join(sorted(_REGISTRY)) or "none"
    raise RecipeError(f"{prefix}unknown competition {name!r}{hint}; known: {known}")
