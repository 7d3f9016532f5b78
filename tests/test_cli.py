"""The CLI as users call it: help, recipes, doctor, settings precedence, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from toolkit.config.settings import get_settings


@pytest.mark.parametrize(
    "command",
    [[], ["run"], ["train"], ["export"], ["bundle"], ["verify"], ["doctor"], ["recipes", "list"],
     ["recipes", "show"], ["data", "synth"]],
)  # fmt: skip
def test_every_command_has_help(toolkit, command):
    result = toolkit(*command, "--help")
    assert result.exit_code == 0
    assert "Usage" in result.output


def test_recipes_list_shows_name_competition_stage_description(toolkit):
    result = toolkit("recipes", "list")
    assert result.exit_code == 0, result.output
    assert "eeg2025/c1-baseline" in result.output
    assert "Challenge 1 baseline" in result.output


def test_recipes_list_shows_the_eight_eeg2025_stages_with_expected_scores(toolkit):
    result = toolkit("recipes", "list")
    rows = {line.split("│")[1].strip(): line for line in result.output.splitlines() if "│" in line}
    stages = {
        "c1-stage1-r1-20subj": ("1", "0.980"), "c2-stage1-r1-20subj": ("1", "1.000"),
        "c1-stage2-r1-100subj": ("2", "0.950"), "c2-stage2-r1-100subj": ("2", "0.995"),
        "c1-stage3-per-release-ensemble": ("3", "0.930"),
        "c2-stage3-per-release-ensemble": ("3", "0.990"),
        "c1-stage4-240subj-5seeds": ("4", "0.910"), "c2-stage4-240subj-5seeds": ("4", "0.985"),
    }  # fmt: skip
    for stem, (stage, expected) in stages.items():
        cells = [c.strip() for c in rows[f"eeg2025/{stem}"].split("│")]
        assert cells[3:5] == [stage, expected], cells


def test_recipes_show_prints_resolved_yaml_with_overrides(toolkit):
    result = toolkit("recipes", "show", "eeg2025/c1-baseline", "--smoke", "--set", "train.lr=0.5")
    assert result.exit_code == 0, result.output
    assert "lr: 0.5" in result.output
    assert "source: synthetic" in result.output
    assert "smoke_applied: true" in result.output


def test_unknown_recipe_is_one_line_with_suggestion(toolkit):
    result = toolkit("run", "eeg2025/c1-baselin", "--smoke")
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1
    assert "Did you mean eeg2025/c1-baseline" in lines[0]


def test_unknown_key_via_set_is_clear(toolkit):
    result = toolkit("train", "eeg2025/c1-baseline", "--smoke", "--set", "train.epoch=3")
    assert result.exit_code == 2
    assert "--set train.epoch: unknown key 'train.epoch' (did you mean 'train.epochs'?)" in (
        result.output
    )


def test_missing_data_directory_is_clear(toolkit):
    result = toolkit("train", "eeg2025/c1-baseline")
    assert result.exit_code == 2
    assert "data.source=hbn/cmi_bids_R1: no such folder" in result.output
    (run,) = (toolkit.root / "runs" / "eeg2025" / "c1-baseline").iterdir()
    assert json.loads((run / "status.json").read_text())["state"] == "failed"
    assert not list(run.rglob("*.ckpt"))


def test_resume_without_an_interrupted_run_is_clear(toolkit):
    result = toolkit("train", "eeg2025/c1-baseline", "--smoke", "--resume")
    assert result.exit_code == 2
    assert "nothing to resume" in result.output


def test_doctor_reports_versions_cuda_and_paths(toolkit):
    result = toolkit("doctor")
    assert result.exit_code == 0, result.output
    assert "torch" in result.output and "2.14.1" in result.output
    assert "cuda" in result.output
    assert str(toolkit.root / "runs") in result.output
    assert "eeg2025" in result.output


def test_settings_precedence(tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for key in ("TOOLKIT_SEED", "TOOLKIT_RUNS_DIR", "TOOLKIT_S3__ENDPOINT_URL"):
        monkeypatch.delenv(key, raising=False)
    assert get_settings().runs_dir == tmp_path / "runs"  # default, under the current folder
    (tmp_path / ".env").write_text("TOOLKIT_SEED=3\nTOOLKIT_S3__ENDPOINT_URL=http://127.0.0.1:9\n")
    settings = get_settings()
    assert settings.seed == 3
    assert settings.s3.endpoint_url == "http://127.0.0.1:9"
    monkeypatch.setenv("TOOLKIT_SEED", "4")
    assert get_settings().seed == 4  # environment beats .env
    assert get_settings(seed=5).seed == 5  # CLI flags beat the environment


def test_data_synth_writes_bids_root(toolkit):
    result = toolkit("data", "synth", "eeg2025", "bids", "--subjects", "2")
    assert result.exit_code == 0, result.output
    root = toolkit.root / "bids"
    assert (root / "participants.tsv").is_file()
    assert len(list(root.glob("sub-NDAR*/eeg/*_task-contrastChangeDetection_run-1_eeg.set"))) == 2
