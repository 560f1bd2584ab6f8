import pytest

import dataclasses

from pipelines import runner
from pipelines.config import RunConfig
from pipelines.errors import PipelineError
from tests.conftest import config_from_flags


def config(tmp_path, stages) -> RunConfig:
    return dataclasses.replace(config_from_flags("--epochs=1", "--batch_size=8", "--hidden_units=8"),
                               output_dir=str(tmp_path), stages=stages, data_dir=str(tmp_path))


def test_a_stage_without_its_inputs_fails_before_any_work_and_says_which_stage_makes_them(tmp_path):
    with pytest.raises(PipelineError, match=r"stage export needs model.keras .* run --stages=train first"):
        runner.run(config(tmp_path, ("export", "verify")))
    assert not (tmp_path / "dense").exists()


def test_verify_alone_names_the_missing_export(tmp_path):
    (tmp_path / "dense").mkdir()
    (tmp_path / "dense" / "model.keras").write_text("")
    (tmp_path / "dense" / "config.json").write_text("{}")
    with pytest.raises(PipelineError, match=r"stage verify needs saved_model .* run --stages=export first"):
        runner.run(config(tmp_path, ("verify",)))


def test_unwritable_output_dir_is_one_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    bad = config(blocker, ("train",))
    with pytest.raises(PipelineError, match="cannot write to output dir .*writable --output_dir"):
        runner.run(bad)


def test_summary_lists_stage_seconds_result_and_artifacts():
    table = runner.format_summary([runner.StageRecord("train", 12.34, "val_accuracy=0.9", ("model.keras",))])
    header, row = table.splitlines()
    assert header.split() == ["stage", "seconds", "result", "artifacts"]
    assert row.split() == ["train", "12.3", "val_accuracy=0.9", "model.keras"]
