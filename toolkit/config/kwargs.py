"""Check a recipe's `model.kwargs` against the model's signature before any data is read, so a
typo fails in a second rather than after an hour of streaming."""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Callable, Iterable
from typing import Any

from toolkit.errors import RecipeError


def check_kwargs(
    target: Callable[..., Any],
    kwargs: dict[str, Any],
    where: str = "model.kwargs",
    provided: Iterable[str] = (),
) -> None:
    """RecipeError for a key `target` does not take, or one the toolkit fills in itself
    (`provided`, e.g. channel counts read from the data)."""
    name = getattr(target, "__name__", str(target))
    params = inspect.signature(target).parameters
    provided = set(provided)
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    known = [n for n, p in params.items() if n not in provided and n != "self"
             and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]  # fmt: skip
    for key in kwargs:
        if key in provided:
            raise RecipeError(f"{where}.{key}: {name} gets it from the data; remove it")
        if key not in params and not takes_any:
            close = difflib.get_close_matches(key, known, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise RecipeError(
                f"{where}.{key}: not an argument of {name}{hint}; it takes: {', '.join(known)}"
            )
