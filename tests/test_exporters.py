"""Export targets are records (pipelines/exporters.py): a target defined in this file alone is written, verified
and reported; a default run leaves out an optional file that misses its limit, says why and ships the rest, and the
same command then reuses its stages; a run that named its variants fails instead. Small in-process dense runs on
offline Fashion-MNIST."""

import json

import pytest

from pipelines import exporters, prediction, runner
from pipelines.errors import PipelineError
from pipelines.exported import TFLiteModel
from pipelines.families import classifier
from tests.conftest import config_from_flags

SMALL = ("--task=dense", "--max_train_examples=600", "--max_test_examples=200", "--hidden_units=16", "--noonnx",
         "--epochs=1")


def results(records) -> dict[str, str]:
    return {r.stage: r.result for r in records}


def test_every_target_is_asked_for_by_its_own_flag_and_found_by_its_file():
    config = config_from_flags("--tflite_variants=int8,float32", "--onnx")
    assert [t.name for t in exporters.asked(config)] == ["float32", "int8", "onnx"]
    assert [t.name for t in exporters.asked(config_from_flags("--tflite_variants=float16", "--noonnx"))] == [
        "float16"]
    assert exporters.by_file("model_int8.tflite").quantized_inputs and exporters.by_file("model.keras") is None
    assert [t.name for t in exporters.TARGETS.values() if not t.optional] == ["float32", "onnx"]


def test_a_target_defined_here_is_exported_verified_and_reported(tmp_path, monkeypatch):
    copy = exporters.Target(name="float32_copy", file="model_copy.tflite", note="a second float32 TFLite file",
                            client="LiteRT", write=lambda job: exporters.TARGETS["float32"].write(job),
                            open=TFLiteModel, wanted=lambda config: True)
    monkeypatch.setitem(exporters.TARGETS, copy.name, copy)
    runner.run(config_from_flags(*SMALL, "--tflite_variants=float32", f"--output_dir={tmp_path}",
                                 "--stages=train,export,verify,report"))
    task_dir = tmp_path / "dense"
    exports = json.loads((task_dir / "export_report.json").read_text())
    assert exports["passed"] and set(exports["exports"]) == {"keras", "savedmodel", "float32", "float32_copy"}
    assert exports["exports"]["float32_copy"]["max_abs_diff"] < 1e-4
    assert "| float32_copy |" in (task_dir / "export_report.md").read_text()
    assert "| [model_copy.tflite](model_copy.tflite) | a second float32 TFLite file, with metadata" in (
        task_dir / "report.md").read_text()
    answers = prediction.open_run(str(task_dir), "model_copy.tflite")
    assert answers.model_name == "model_copy.tflite"


def test_a_default_run_leaves_out_an_optional_file_that_misses_its_limit_and_ships_the_rest(
        tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(classifier.CLASSIFIER_LIMITS, "int8", ("max_abs_diff", 0.0))  # no int8 file meets it
    flags = (*SMALL, f"--output_dir={tmp_path}", "--stages=train,export,verify,report")  # the default variants
    records = results(runner.run(config_from_flags(*flags)))
    task_dir = tmp_path / "dense"
    assert records["verify"].endswith("3 exports passed, 1 left out")
    shipped = sorted(p.name for p in task_dir.glob("*.tflite"))
    assert shipped == ["model.tflite", "model_dynamic_range.tflite", "model_float16.tflite"]
    row = json.loads((task_dir / "export_report.json").read_text())["exports"]["int8"]
    assert row["shipped"] is False and row["left_out"].startswith("max_abs_diff ") and "against its limit 0" in \
        row["left_out"]
    assert "warning: model_int8.tflite is left out of what ships: max_abs_diff" in capsys.readouterr().out
    assert "int8 is left out of what ships: max_abs_diff" in (task_dir / "report.md").read_text()
    assert "| int8 |" in (task_dir / "export_report.md").read_text() and "| left out |" in (
        task_dir / "export_report.md").read_text()
    with pytest.raises(PipelineError, match="model_int8.tflite was left out of what .* ships: verify measured "
                                            "max_abs_diff"):
        prediction.open_run(str(task_dir), "model_int8.tflite")
    again = results(runner.run(config_from_flags(*flags)))
    assert again["export"] == again["verify"] == "reused"
    with pytest.raises(PipelineError, match="exports miss their limits: int8 .*drop the variant"):
        runner.run(config_from_flags(*flags, "--tflite_variants=float32,int8", "--stages=export,verify"))


def test_a_float_file_that_misses_its_limit_fails_even_a_default_run(tmp_path, monkeypatch):
    monkeypatch.setitem(classifier.CLASSIFIER_LIMITS, "float", ("max_abs_diff", -1.0))
    with pytest.raises(PipelineError, match="exports miss their limits: float32 .*float files must match Keras"):
        runner.run(config_from_flags(*SMALL, f"--output_dir={tmp_path}", "--stages=train,export,verify"))
