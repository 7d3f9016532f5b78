"""`toolkit hpo`: the `hpo:` block's validation, storage and study errors, pruning, a smoke study
that a second call continues, a killed trial retried, and `hpo show`'s best recipe, which runs."""

from __future__ import annotations

import json
import time
from pathlib import Path
from types import SimpleNamespace

import optuna
import pytest
import yaml

from toolkit.config.recipes import resolve_recipe
from toolkit.config.search_space import SearchRange
from toolkit.hpo.search import HpoError, TrialMonitor, metric_key, suggest

RECIPE = "eeg2025/c1-s4-hpo"
STUDY = "runs/eeg2025/c1-s4-hpo/hpo/c1-s4-hpo-smoke"


def write_recipe(root: Path, hpo: dict) -> Path:
    path = root / "mine" / "bad.yaml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(yaml.safe_dump({"extends": RECIPE, "hpo": hpo}))
    return path


def error_line(result) -> str:
    lines = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert result.exit_code == 2 and len(lines) == 1, result.output
    return lines[0]


@pytest.mark.parametrize(
    "space,expected",
    [
        ({"train.gradient_clip_val": {"log_uniform": [1.0, 0.1]}},
         "'hpo.space.train.gradient_clip_val': Value error, empty range log_uniform: [1.0, 0.1]"),
        ({"model.kwargs.n_heads": {"int": [3, 3]}}, "empty range int: [3, 3]"),
        ({"train.accumulate_grad_batches": {"choice": []}}, "`choice` lists no value"),
        ({"train.gradient_clip_val": {"loguniform": [0.1, 1]}},
         "unknown key 'hpo.space.train.gradient_clip_val.loguniform'"),
        ({"train.lrr": {"uniform": [0.1, 0.2]}}, "hpo.space: 'train.lrr' = 0.1 is not a valid"),
        ({"model.kwargs.dropout": {"uniform": [0.0, 2.0]}}, "'model.kwargs.dropout' = 2.0"),
    ],
)  # fmt: skip
def test_bad_hpo_block_is_one_line(toolkit, space, expected):
    path = write_recipe(toolkit.root, {"space": space})
    line = error_line(toolkit("hpo", str(path)))  # (a smoke block would replace the space)
    assert expected in line and str(path) in line
    assert not (toolkit.root / "runs").exists() or not any((toolkit.root / "runs").rglob("*.db"))


def test_unknown_recipe_key_in_space_names_the_schema_problem(toolkit):
    path = write_recipe(toolkit.root, {"space": {"train.lrr": {"uniform": [0.1, 0.2]}}})
    assert "unknown key 'train.lrr'" in error_line(toolkit("hpo", str(path)))


def test_a_model_argument_the_model_refuses_is_caught_before_any_trial(toolkit):
    path = write_recipe(toolkit.root, {"space": {"model.kwargs.d_modle": {"choice": [8]}}})
    line = error_line(toolkit("hpo", str(path), "--smoke"))
    assert "hpo.space: 'model.kwargs.d_modle' = 8" in line
    assert "unexpected keyword argument 'd_modle'" in line
    assert not (toolkit.root / "runs").exists()


@pytest.mark.parametrize("url", ["nosuchdb://host/x", "sqlite:///{root}/afile/study.db"])
def test_storage_that_cannot_be_opened_is_one_line(toolkit, url):
    (toolkit.root / "afile").write_text("not a folder")
    url = url.format(root=toolkit.root)
    line = error_line(toolkit("hpo", RECIPE, "--smoke", "--storage", url))
    assert f"--storage {url}: cannot open it" in line


def test_study_with_the_other_direction_is_refused(toolkit):
    url = f"sqlite:///{toolkit.root / 'other.db'}"
    optuna.create_study(storage=url, study_name="shared", direction="maximize")
    line = error_line(toolkit("hpo", RECIPE, "--smoke", "--storage", url, "--study", "shared"))
    assert "exists with direction maximize, not minimize" in line


def test_suggest_uses_every_kind_of_range():
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    trial = study.ask()
    spaces = {
        "a": {"uniform": [0.0, 0.5]},
        "b": {"log_uniform": [1e-5, 1e-2]},
        "c": {"int": [2, 8], "step": 2},
        "d": {"log_int": [16, 128]},
        "e": {"choice": ["x", "y"]},
    }
    got = {k: suggest(trial, k, SearchRange.model_validate(v)) for k, v in spaces.items()}
    assert 0 <= got["a"] <= 0.5 and 1e-5 <= got["b"] <= 1e-2
    assert got["c"] in (2, 4, 6, 8) and 16 <= got["d"] <= 128 and got["e"] in ("x", "y")
    dist = trial.distributions
    assert dist["b"].log and dist["d"].log and dist["c"].step == 2
    assert SearchRange.model_validate({"int": [2, 8]}).model_dump(mode="json") == {"int": [2, 8]}
    assert metric_key("val/mae") == "val_mae"


class _AlwaysPrune(optuna.pruners.BasePruner):
    def prune(self, study, trial) -> bool:
        return True


def _trainer(fn: str, **metrics) -> SimpleNamespace:
    import torch

    return SimpleNamespace(
        sanity_checking=False,
        state=SimpleNamespace(fn=fn),
        current_epoch=3,
        callback_metrics={k: torch.tensor(v) for k, v in metrics.items()},
    )


def test_pruning_reports_the_validation_metric_and_prunes():
    study = optuna.create_study(pruner=_AlwaysPrune())
    trial = study.ask()
    monitor = TrialMonitor("val_score", trial)
    with pytest.raises(optuna.TrialPruned, match="epoch 3"):
        monitor.on_validation_end(_trainer("fit", val_score=0.7, val_loss=0.1), None)
    assert study.trials[0].intermediate_values == {3: pytest.approx(0.7)}
    assert monitor.pruned_at == 3
    # The final validation of the best checkpoint is the result, never a pruning report.
    after = TrialMonitor("val_score", study.ask())
    after.on_validation_end(_trainer("validate", val_score=0.5), None)
    assert after.final == pytest.approx(0.5) and study.trials[1].intermediate_values == {}
    with pytest.raises(HpoError, match=r"--metric val_mae: not logged .*val_loss, val_score"):
        TrialMonitor("val_mae", None).on_validation_end(
            _trainer("fit", val_score=0.7, val_loss=0.1), None
        )


def _trial_params(run: Path) -> dict:
    recipe = yaml.safe_load((run / "recipe.yaml").read_text())
    return {
        "model.kwargs.d_model": recipe["model"]["kwargs"]["d_model"],
        "train.lr": recipe["train"]["lr"],
        "train.epochs": recipe["train"]["epochs"],
    }


@pytest.mark.slow
def test_smoke_study_continues_and_its_best_recipe_runs(toolkit):
    first = toolkit("hpo", RECIPE, "--smoke")
    assert first.exit_code == 0, first.output
    folder = toolkit.root / STUDY
    storage = f"sqlite:///{folder / 'study.db'}"
    study = optuna.load_study(study_name="c1-s4-hpo-smoke", storage=storage)
    assert [t.state.name for t in study.trials] == ["COMPLETE"] * 3
    for trial in study.trials:
        run = Path(trial.user_attrs["run"])
        assert run == folder / f"trial-{trial.number}"
        params = _trial_params(run)
        assert params["model.kwargs.d_model"] == trial.params["model.kwargs.d_model"]
        assert params["train.lr"] == pytest.approx(trial.params["train.lr"])
        assert params["train.epochs"] == 1  # hpo.epochs of the smoke block
        metrics = json.loads((run / "metrics.json").read_text())
        assert trial.value == pytest.approx(metrics["val_nrmse"])

    again = toolkit("hpo", RECIPE, "--smoke")  # the same command: the study is complete
    assert "already 3 finished trials" in again.output
    more = toolkit("hpo", RECIPE, "--smoke", "--trials", "4", "--pruning")
    assert more.exit_code == 0, more.output
    study = optuna.load_study(study_name="c1-s4-hpo-smoke", storage=storage)
    assert len(study.trials) == 4 and (folder / "trial-3" / "metrics.json").is_file()
    assert study.trials[3].intermediate_values  # pruning read the per-epoch validation metric
    assert len({tuple(sorted(t.params.items())) for t in study.trials}) == 4

    show = toolkit("hpo", "show", "c1-s4-hpo-smoke")
    assert show.exit_code == 0, show.output
    for png in ("history.png", "parallel.png"):
        assert (folder / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    best_trial = study.best_trial
    best = folder / "best.yaml"
    data = yaml.safe_load(best.read_text())
    assert data["extends"] == RECIPE and set(data) == {"extends", "smoke"}
    assert data["smoke"]["train"]["lr"] == pytest.approx(best_trial.params["train.lr"])
    assert f"best run: {folder / f'trial-{best_trial.number}'}" in show.output

    resolved = resolve_recipe(str(best), smoke=True)
    assert resolved.model.kwargs["d_model"] == best_trial.params["model.kwargs.d_model"]
    trained = toolkit("train", str(best), "--smoke", "--set", "train.epochs=1")
    assert trained.exit_code == 0, trained.output
    (run,) = (toolkit.root / "runs" / "c1-s4-hpo-smoke" / "best").iterdir()
    assert _trial_params(run)["train.lr"] == pytest.approx(best_trial.params["train.lr"])


@pytest.mark.slow
def test_a_killed_trial_is_failed_and_retried_with_its_parameters(toolkit):
    """A worker killed mid-trial leaves a RUNNING trial whose heartbeat stops: the next call
    fails it after the grace period and runs its parameters again."""
    folder = toolkit.root / STUDY
    folder.mkdir(parents=True)
    storage = optuna.storages.RDBStorage(
        f"sqlite:///{folder / 'study.db'}", heartbeat_interval=1, grace_period=2
    )
    study = optuna.create_study(storage=storage, study_name="c1-s4-hpo-smoke")
    killed = study.ask()
    space = resolve_recipe(RECIPE, smoke=True).hpo.space
    params = {key: suggest(killed, key, spec) for key, spec in space.items()}
    storage.record_heartbeat(killed._trial_id)
    time.sleep(2.5)
    sets = ["--set", "hpo.heartbeat_interval=1", "--set", "hpo.grace_period=2"]
    result = toolkit("hpo", RECIPE, "--smoke", "--trials", "1", *sets)
    assert result.exit_code == 0, result.output
    study = optuna.load_study(study_name="c1-s4-hpo-smoke", storage=storage)
    assert [t.state.name for t in study.trials] == ["FAIL", "COMPLETE"]
    retried = study.trials[1]
    assert retried.params == pytest.approx(params)
    assert retried.system_attrs["failed_trial"] == killed.number
    assert _trial_params(folder / "trial-1")["train.lr"] == pytest.approx(params["train.lr"])


def test_hpo_help_lists_search_and_show(toolkit):
    result = toolkit("hpo", "--help")
    assert result.exit_code == 0 and "search" in result.output and "show" in result.output
    for args in (("hpo", "show", "--help"), ("hpo", RECIPE, "--help")):
        result = toolkit(*args)
        assert result.exit_code == 0 and "Usage" in result.output, args
    assert "--pruning" in toolkit("hpo", RECIPE, "--help").output


def test_show_of_an_unknown_study_is_one_line(toolkit):
    assert "no study 'nope'" in error_line(toolkit("hpo", "show", "nope"))


@pytest.mark.slow
def test_a_metric_training_does_not_log_stops_the_search_in_one_line(toolkit):
    result = toolkit("hpo", RECIPE, "--smoke", "--metric", "val/mae", "--trials", "2")
    line = error_line(result)
    assert "--metric val_mae: not logged by this recipe (logged: val_loss, val_nrmse" in line
    assert "Traceback" not in result.output
    folder = toolkit.root / STUDY
    assert sorted(p.name for p in folder.glob("trial-*")) == ["trial-0"]  # no second trial
