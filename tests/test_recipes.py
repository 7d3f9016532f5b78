"""Recipe loading: extends, smoke blocks, --set overrides, and one-line errors naming the source."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from toolkit.config.durations import format_duration, parse_duration
from toolkit.config.recipes import find_recipe, list_recipes, parse_override, resolve_recipe
from toolkit.errors import RecipeError

BASE = """\
competition: eeg2025
description: a base
data: {source: synthetic, val_fraction: 0.25}
model: {name: EEGNeX, kwargs: {filter_1: 8}}
train: {epochs: 20, lr: 0.001}
smoke:
  train: {epochs: 2}
  data: {synthetic: {subjects: 4}}
"""


@pytest.fixture
def recipe_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "mycomp"
    folder.mkdir()
    (folder / "_base.yaml").write_text(BASE)
    (folder / "child.yaml").write_text("extends: _base.yaml\ntrain: {epochs: 30}\n")
    return folder


def test_extends_merges_child_over_parent(recipe_dir: Path):
    recipe = resolve_recipe(str(recipe_dir / "child.yaml"))
    assert recipe.train.epochs == 30
    assert recipe.train.lr == 0.001
    assert recipe.data.val_fraction == 0.25
    assert recipe.model.kwargs == {"filter_1": 8}
    assert not recipe.smoke_applied


def test_smoke_then_set_overrides_apply_in_order(recipe_dir: Path):
    recipe = resolve_recipe(
        str(recipe_dir / "child.yaml"),
        smoke=True,
        overrides=["train.epochs=3", "data.source=/some/where", "train.time_budget=1h30m"],
    )
    assert recipe.smoke_applied
    assert recipe.data.synthetic.subjects == 4  # from the smoke block
    assert recipe.train.epochs == 3  # --set wins over the smoke block
    assert recipe.data.source == "/some/where"
    assert recipe.train.time_budget == timedelta(hours=1, minutes=30)


def test_unknown_key_names_key_file_and_suggestion(recipe_dir: Path):
    bad = recipe_dir / "typo.yaml"
    bad.write_text("extends: _base.yaml\ntrain: {epohcs: 3}\n")
    with pytest.raises(RecipeError) as err:
        resolve_recipe(str(bad))
    message = str(err.value)
    assert "unknown key 'train.epohcs'" in message
    assert str(bad) in message
    assert "did you mean 'train.epochs'" in message
    assert "\n" not in message


def test_wrong_type_names_key_and_source(recipe_dir: Path):
    with pytest.raises(RecipeError, match=r"--set train.epochs: 'train.epochs'.*integer"):
        resolve_recipe(str(recipe_dir / "child.yaml"), overrides=["train.epochs=ten"])


def test_error_in_parent_names_the_parent_file(recipe_dir: Path):
    (recipe_dir / "_base.yaml").write_text(BASE.replace("val_fraction: 0.25", "val_fraction: 2"))
    with pytest.raises(RecipeError, match=r"_base\.yaml: 'data.val_fraction'"):
        resolve_recipe(str(recipe_dir / "child.yaml"))


def test_malformed_yaml_names_file_and_line(recipe_dir: Path):
    bad = recipe_dir / "broken.yaml"
    bad.write_text("competition: eeg2025\ntrain: {epochs: 3\nmodel: x\n")
    with pytest.raises(RecipeError, match=r"broken\.yaml:\d+: malformed YAML"):
        resolve_recipe(str(bad))


def test_unknown_competition_and_cycle(recipe_dir: Path):
    (recipe_dir / "other.yaml").write_text("competition: eeg2024\nmodel: {name: X}\ndata: {}\n")
    with pytest.raises(RecipeError, match=r"unknown competition 'eeg2024'.*eeg2025"):
        resolve_recipe(str(recipe_dir / "other.yaml"))
    (recipe_dir / "a.yaml").write_text("extends: b.yaml\n")
    (recipe_dir / "b.yaml").write_text("extends: a.yaml\n")
    with pytest.raises(RecipeError, match="cycle"):
        resolve_recipe(str(recipe_dir / "a.yaml"))


def test_unknown_recipe_name_suggests_closest():
    with pytest.raises(RecipeError, match="Did you mean eeg2025/c1-baseline"):
        find_recipe("eeg2025/c1-basline")


def test_builtin_recipes_resolve_from_any_directory(tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    names = [e.name for e in list_recipes()]
    assert "eeg2025/c1-baseline" in names
    assert not any(n.split("/")[1].startswith("_") for n in names)
    assert resolve_recipe("eeg2025/c1-baseline").name == "eeg2025/c1-baseline"


def test_every_builtin_recipe_has_a_valid_smoke_block():
    for entry in list_recipes():
        recipe = resolve_recipe(entry.name, smoke=True)
        assert recipe.smoke_applied
        # Every data source the smoke block leaves is synthetic (no network, no local data).
        sources = {k: v for k, v in recipe.data.model_dump().items() if "source" in k}
        assert sources, entry.name
        for key, value in sources.items():
            values = value if isinstance(value, list) else [value]
            assert values and set(values) == {"synthetic"}, (entry.name, key, value)


@pytest.mark.parametrize("text", ["novalue", "=3", "a..b=1"])
def test_bad_override_syntax(text: str):
    with pytest.raises(RecipeError, match="KEY=VALUE"):
        parse_override(text)


def test_override_values_are_yaml():
    assert parse_override("train.epochs=5") == ("train.epochs", 5)
    assert parse_override("data.releases=[R1, R2]") == ("data.releases", ["R1", "R2"])
    assert parse_override("train.gradient_clip_val=null") == ("train.gradient_clip_val", None)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("7h", 25200), ("30min", 1800), ("1h30m", 5400), (90, 90), ("45s", 45), ("1.5s", 1.5),
     ("0.001s", 0.001)],
)
def test_durations(text, seconds):
    assert parse_duration(text).total_seconds() == seconds
    assert parse_duration(format_duration(parse_duration(text))).total_seconds() == seconds


def test_bad_duration():
    with pytest.raises(ValueError, match="cannot read duration"):
        parse_duration("seven hours")
