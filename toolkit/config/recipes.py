"""Find, load and resolve recipes: `extends:` chains, `smoke:` blocks, `--set a.b=c` overrides.

Every key remembers which file (or `--set`) gave it, so a schema error names the right source.
"""

from __future__ import annotations

import copy
import difflib
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

import toolkit
from toolkit.config.schema import Recipe
from toolkit.errors import RecipeError

RECIPE_SUFFIXES = (".yaml", ".yml")


@dataclass(frozen=True)
class RecipeEntry:
    """A built-in recipe: its name (`<competition>/<stem>`) and file."""

    name: str
    path: Path


def recipe_roots(extra: Path | None = None) -> list[Path]:
    """Folders holding built-in recipes, in priority order (first match wins)."""
    candidates = [
        extra,
        Path(toolkit.__file__).resolve().parent.parent / "recipes",  # source checkout / editable
        Path(sys.prefix) / "share" / "toolkit" / "recipes",  # wheel install (data-files)
    ]
    roots: list[Path] = []
    for path in candidates:
        if path is not None and path.is_dir() and path.resolve() not in roots:
            roots.append(path.resolve())
    return roots


def list_recipes(extra: Path | None = None) -> list[RecipeEntry]:
    """Every built-in recipe; files starting with `_` are shared bases, not recipes."""
    found: dict[str, RecipeEntry] = {}
    for root in recipe_roots(extra):
        for path in sorted(root.glob("*/*")):
            if path.suffix in RECIPE_SUFFIXES and not path.name.startswith("_"):
                name = f"{path.parent.name}/{path.stem}"
                found.setdefault(name, RecipeEntry(name, path))
    return sorted(found.values(), key=lambda e: e.name)


def find_recipe(name_or_path: str, extra: Path | None = None) -> RecipeEntry:
    """Resolve a recipe name or a path; unknown names suggest the closest built-in ones."""
    path = Path(name_or_path).expanduser()
    if path.is_dir():
        raise RecipeError(
            f"{path}: a folder, not a recipe file; give a .yaml file or a recipe name "
            "(`toolkit recipes list`)"
        )
    if path.suffix in RECIPE_SUFFIXES and path.is_file():
        resolved = path.resolve()
        return RecipeEntry(f"{resolved.parent.name}/{resolved.stem}", resolved)
    entries = list_recipes(extra)
    by_name = {e.name: e for e in entries}
    key = name_or_path.removesuffix(".yaml").removesuffix(".yml")
    if key in by_name:
        return by_name[key]
    if path.suffix in RECIPE_SUFFIXES:
        raise RecipeError(f"recipe file not found: {path}")
    close = difflib.get_close_matches(key, list(by_name), n=3, cutoff=0.4)
    hint = f" Did you mean {', '.join(close)}?" if close else ""
    raise RecipeError(
        f"unknown recipe {name_or_path!r}.{hint} (`toolkit recipes list` shows them all)"
    )


class _DuplicateKey(Exception):
    def __init__(self, key: Any, line: int, first: int):
        self.key, self.line, self.first = key, line, first


class _StrictLoader(yaml.SafeLoader):
    """safe_load that refuses a key given twice in one mapping (PyYAML keeps the last)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            line = key_node.start_mark.line + 1
            if key in seen:
                raise _DuplicateKey(key, line, seen[key])
            seen[key] = line
        return super().construct_mapping(node, deep=deep)


def _read_yaml(path: Path) -> dict[str, Any]:
    if path.is_dir():
        raise RecipeError(
            f"{path}: a folder, not a recipe file; give a .yaml file or a recipe name "
            "(`toolkit recipes list`)"
        )
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_StrictLoader)
    except FileNotFoundError:
        raise RecipeError(f"recipe file not found: {path}") from None
    except UnicodeDecodeError as exc:
        raise RecipeError(
            f"{path}: not a text recipe (byte {exc.start} is not UTF-8); is it a binary file?"
        ) from None
    except _DuplicateKey as dup:
        raise RecipeError(
            f"{path}:{dup.line}: duplicate key {dup.key!r} (first given on line {dup.first}); "
            "keep one"
        ) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise RecipeError(f"{path}{where}: malformed YAML: {problem}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise RecipeError(f"{path}: a recipe must be a mapping of keys, got {type(data).__name__}")
    return data


def _merge(
    base: dict[str, Any],
    over: dict[str, Any],
    source: str,
    origins: dict[str, str],
    prefix: str = "",
) -> dict[str, Any]:
    """Deep-merge `over` into a copy of `base`, recording the source of every key it sets."""
    out = copy.deepcopy(base)
    for key, value in over.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value, source, origins, dotted + ".")
        else:
            out[key] = copy.deepcopy(value)
            origins[dotted] = source
            for sub in [k for k in origins if k.startswith(dotted + ".")]:
                origins[sub] = source
            if isinstance(value, dict):
                for sub in _leaves(value, dotted + "."):
                    origins[sub] = source
    return out


def _leaves(data: dict[str, Any], prefix: str) -> list[str]:
    keys = []
    for key, value in data.items():
        keys.append(prefix + str(key))
        if isinstance(value, dict):
            keys.extend(_leaves(value, f"{prefix}{key}."))
    return keys


def _load_chain(path: Path, origins: dict[str, str], seen: tuple[Path, ...] = ()) -> dict:
    """Load a recipe file with its `extends:` parents merged underneath it."""
    if path in seen:
        cycle = " -> ".join(str(p) for p in (*seen, path))
        raise RecipeError(f"{path}: `extends` forms a cycle: {cycle}")
    data = _read_yaml(path)
    parent_ref = data.pop("extends", None)
    merged: dict[str, Any] = {}
    if parent_ref is not None:
        if not isinstance(parent_ref, str):
            raise RecipeError(f"{path}: `extends` must be a file name or recipe name")
        parent = (path.parent / parent_ref).resolve()
        if not parent.is_file():
            try:
                parent = find_recipe(parent_ref).path
            except RecipeError:
                raise RecipeError(
                    f"{path}: `extends: {parent_ref}` names no file next to it and no recipe"
                ) from None
        merged = _load_chain(parent, origins, (*seen, path))
    return _merge(merged, data, str(path), origins)


def parse_override(text: str) -> tuple[str, Any]:
    """Parse one `--set key.path=value`; the value is read as YAML (numbers, lists, null)."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key or any(not part for part in key.split(".")):
        raise RecipeError(f"--set {text!r}: expected KEY=VALUE, e.g. --set train.epochs=5")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return key, value


def nested_keys(values: dict[str, Any]) -> dict[str, Any]:
    """{"train.lr": 0.1, "model.kwargs.d_model": 64} -> {"train": {"lr": 0.1}, "model": ...}."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        node = out
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return out


def _nest(key: str, value: Any) -> dict[str, Any]:
    return nested_keys({key: value})


def set_key(
    data: dict[str, Any], key: str, value: Any, where: str, origins: dict[str, str]
) -> dict[str, Any]:
    """`data` with the dotted `key` set to `value` (mappings merged), recording `where`."""
    return _merge(data, _nest(key, value), where, origins)


def _describe_error(
    err: dict[str, Any], origins: dict[str, str], fallback: str, model: type[BaseModel]
) -> str:
    loc = [str(p) for p in err["loc"] if not str(p).startswith("function-")]
    # Generic models put the type parameter in the location ("Recipe[C1Data]"): drop such parts.
    loc = [p for p in loc if "[" not in p]
    dotted = ".".join(loc)
    source = fallback
    for i in range(len(loc), 0, -1):
        if ".".join(loc[:i]) in origins:
            source = origins[".".join(loc[:i])]
            break
    if err["type"] == "extra_forbidden":
        close = difflib.get_close_matches(loc[-1], _fields_at(model, loc[:-1]), n=1)
        hint = f" (did you mean '{'.'.join([*loc[:-1], close[0]])}'?)" if close else ""
        return f"{source}: unknown key '{dotted}'{hint}"
    if err["type"] == "missing":
        return f"{source}: missing required key '{dotted}'"
    got = err.get("input")
    shown = f" (got {got!r})" if not isinstance(got, dict | list) else ""
    return f"{source}: '{dotted}': {err['msg']}{shown}"


def _fields_at(model: type[BaseModel], path: list[str]) -> list[str]:
    """Field names of the (nested) model at `path`, for "did you mean" hints."""
    for part in path:
        field = model.model_fields.get(part)
        annotation = getattr(field, "annotation", None)
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return []
        model = annotation
    return list(model.model_fields)


def validate_recipe(data: dict[str, Any], origins: dict[str, str], fallback: str) -> Recipe:
    """Validate merged recipe data against the core schema and the competition's data model."""
    from toolkit.competitions import get_competition  # local: the registry imports competitions

    competition_name = data.get("competition")
    if not isinstance(competition_name, str):
        raise RecipeError(f"{fallback}: missing required key 'competition'")
    competition = get_competition(competition_name, where=origins.get("competition", fallback))
    model = Recipe[competition.data_config]  # type: ignore[name-defined]
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = [_describe_error(e, origins, fallback, model) for e in exc.errors()]
        raise RecipeError("; ".join(problems)) from None


def resolve_recipe(
    name_or_path: str,
    *,
    smoke: bool = False,
    overrides: list[str] | tuple[str, ...] = (),
    recipes_dir: Path | None = None,
) -> Recipe:
    """Load a recipe by name or path: extends chain, then its smoke block, then --set overrides."""
    entry = find_recipe(name_or_path, recipes_dir)
    origins: dict[str, str] = {}
    data = _load_chain(entry.path, origins)
    data["name"] = entry.name
    origins["name"] = str(entry.path)
    if smoke:
        block = data.get("smoke") or {}
        if not isinstance(block, dict):
            raise RecipeError(f"{origins.get('smoke', entry.path)}: `smoke` must be a mapping")
        if not block:
            raise RecipeError(f"{entry.path}: this recipe has no `smoke:` block to apply")
        smoke_origins: dict[str, str] = {}
        data = _merge(
            data, block, f"{origins.get('smoke', entry.path)} (smoke block)", smoke_origins
        )
        origins.update(smoke_origins)
        data["smoke_applied"] = True
    for text in overrides:
        key, value = parse_override(text)
        data = set_key(data, key, value, f"--set {key}", origins)
    return validate_recipe(data, origins, str(entry.path))


def load_resolved(path: Path) -> Recipe:
    """Load a recipe saved by a run (already resolved: no extends, smoke or overrides)."""
    data = _read_yaml(path)
    return validate_recipe(data, {}, str(path))


def dump_recipe(recipe: Recipe) -> str:
    """The resolved recipe as YAML, in schema order."""
    return yaml.safe_dump(recipe.model_dump(mode="json"), sort_keys=False, allow_unicode=True)


def apply_overrides(recipe: Recipe, overrides: list[str] | tuple[str, ...]) -> Recipe:
    """A resolved recipe with `--set key=value` overrides applied and validated again."""
    origins: dict[str, str] = {}
    data = recipe.model_dump(mode="json")
    for text in overrides:
        key, value = parse_override(text)
        data = set_key(data, key, value, f"--set {key}", origins)
    return validate_recipe(data, origins, f"the recipe of {recipe.name}")
