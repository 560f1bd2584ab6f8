import json

import pytest

from pipelines.errors import PipelineError
from pipelines.tasks import TASKS
from tests.conftest import config_from_flags


def test_builder_signatures_hold_the_default_hyperparameters():
    assert TASKS["dense"].default_hparams == {"hidden_units": (128,), "dropout": 0.0}
    assert TASKS["recurrent"].default_hparams["cell"] == "gru"


def test_hparams_file_with_unknown_keys_names_them(tmp_path):
    path = tmp_path / "best_hparams.json"
    path.write_text(json.dumps({"hparams": {"hidden_units": [64], "cell": "gru"}, "learning_rate": 0.01}))
    with pytest.raises(PipelineError, match="does not take: cell"):
        TASKS["dense"].read_hparams_file(str(path))


def test_hparams_file_that_is_not_json_is_one_clear_error(tmp_path):
    path = tmp_path / "best_hparams.json"
    path.write_text("{not json")
    with pytest.raises(PipelineError, match="cannot read hyperparameters from .*--stages=tune"):
        TASKS["dense"].read_hparams_file(str(path))


def test_hparams_file_lists_become_builder_tuples(tmp_path):
    path = tmp_path / "best_hparams.json"
    path.write_text(json.dumps({"hparams": {"hidden_units": [64, 32]}, "learning_rate": 0.01}))
    assert TASKS["dense"].read_hparams_file(str(path)) == ({"hidden_units": (64, 32)}, 0.01)


def test_export_names_a_variant_the_defaults_left_out_only_when_the_defaults_chose():
    from pipelines.context import Context
    from pipelines.stages.export import left_out_by_default

    def left_out(*flags):
        config = config_from_flags("--task=recurrent", *flags)
        return left_out_by_default(Context(config, TASKS["recurrent"]))
    assert list(left_out()) == ["int16x8"] and left_out()["int16x8"].startswith("a classifier's int8 file holds")
    assert left_out("--tflite_variants=float32") == {}
    assert "int16x8" not in config_from_flags("--task=recurrent").tflite_variants
