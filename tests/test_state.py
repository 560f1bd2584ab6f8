"""Every artifact belongs to the config that made it: fingerprints, resume, sweeps, the folder lock, damaged and
stale files. Small in-process runs on offline Fashion-MNIST."""

import dataclasses
import json
import os
import shutil

import pytest

from pipelines import artifacts, runner, state
from pipelines.config import NOT_IDENTITY, RunConfig
from pipelines.errors import PipelineError
from pipelines.health import EpochCheckpoint
from pipelines.stages import STAGES
from tests.conftest import config_from_flags

# ONNX is left out where it is not the subject (test_dense_pipeline and test_clients cover it): a second a run.
SMALL = ("--task=dense", "--max_train_examples=600", "--max_test_examples=200", "--tflite_variants=float32",
         "--hidden_units=16", "--noonnx")


def run(tmp_path, *flags):
    return runner.run(config_from_flags(*SMALL, f"--output_dir={tmp_path}", *flags))


def results(records):
    return {r.stage: r.result for r in records}


TRAINED = ("--epochs=1", "--stages=train,evaluate,export")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One SMALL run trained, evaluated and exported (TRAINED), for the tests that start from a trained folder."""
    output_dir = tmp_path_factory.mktemp("trained")
    run(output_dir, *TRAINED)
    # The guard that keeps the tests' "train is not reused" from passing vacuously: a run on a copy (another
    # --output_dir, which is not part of the run's identity) reuses the copied model.
    guard = tmp_path_factory.mktemp("guard")
    shutil.copytree(output_dir / "dense", guard / "dense")
    assert results(run(guard, "--epochs=1", "--stages=train"))["train"] == "reused"
    return output_dir / "dense"


def copy_of(trained, tmp_path):
    """tmp_path as a folder the TRAINED run left, as if run there."""
    shutil.copytree(trained, tmp_path / "dense")


# Fingerprints


def test_every_config_field_is_in_some_stages_fingerprint_and_every_ignore_names_a_field():
    fields = {f.name for f in dataclasses.fields(RunConfig)}
    config = config_from_flags()
    counted = set().union(*(state.settings(config, name) for name in STAGES))
    assert fields - NOT_IDENTITY == counted
    for stage in STAGES.values():
        assert set(stage.ignores) <= fields, stage.name


@pytest.mark.parametrize("flag,stages", [
    ("--discriminator_learning_rate=0.001", {"tune", "train", "evaluate", "export", "verify"}),
    ("--max_test_examples=100", {"evaluate", "verify"}),
    ("--tflite_variants=float16", {"export", "verify"}),
    ("--max_trials=3", {"tune"}),
    ("--predict_input=new.csv", {"predict"}),
])
def test_a_changed_flag_changes_the_fingerprint_of_the_stages_it_reaches(flag, stages):
    before, after = config_from_flags("--task=gan"), config_from_flags("--task=gan", flag)
    changed = {name for name in STAGES if state.fingerprint(before, name, {}) != state.fingerprint(after, name, {})}
    assert changed == stages


def test_a_truncated_model_is_neither_reused_nor_exported(trained, tmp_path):
    copy_of(trained, tmp_path)
    model = tmp_path / "dense" / "model.keras"
    model.write_bytes(model.read_bytes()[:1000])
    with pytest.raises(PipelineError, match="model.keras in .* is not the one stage train wrote .* --stages=train"):
        run(tmp_path, "--epochs=1", "--stages=export")
    assert results(run(tmp_path, "--epochs=1", "--stages=train"))["train"] != "reused"


def test_a_model_swapped_after_the_check_is_not_exported_and_the_good_saved_model_stays(
        trained, tmp_path, monkeypatch):
    """Export hashes the bytes it loads: a model.keras replaced between the runner's check and the stage's load
    (another run, a user's copy) is refused instead of exported over the good saved_model."""
    run(tmp_path / "other", "--epochs=1", "--stages=train", "--hidden_units=8")
    copy_of(trained, tmp_path)
    task_dir = tmp_path / "dense"
    before = artifacts.content_hash(task_dir / "saved_model")
    original = state.Records.hashes

    def hashes_then_swap(self, names):
        hashes = original(self, names)
        if artifacts.MODEL in names:  # the stage's inputs are hashed: now another model takes the file's place
            (task_dir / "model.keras").write_bytes((tmp_path / "other" / "dense" / "model.keras").read_bytes())
        return hashes
    monkeypatch.setattr(state.Records, "hashes", hashes_then_swap)
    with pytest.raises(PipelineError, match="model.keras was replaced while this run read it"):
        run(tmp_path, "--epochs=1", "--stages=export", "--force")
    assert artifacts.content_hash(task_dir / "saved_model") == before


def test_a_file_deleted_from_the_saved_model_is_named_before_verify(trained, tmp_path):
    copy_of(trained, tmp_path)
    os.remove(tmp_path / "dense" / "saved_model" / "fingerprint.pb")
    with pytest.raises(PipelineError, match="saved_model in .* is not the one stage export wrote"):
        run(tmp_path, "--epochs=1", "--stages=verify")
    assert results(run(tmp_path, "--epochs=1", "--stages=export,verify"))["export"] != "reused"


def test_a_deleted_variant_file_is_exported_again_instead_of_looping(trained, tmp_path):
    copy_of(trained, tmp_path)
    run(tmp_path, "--epochs=1", "--stages=export", "--tflite_variants=float32,float16")
    os.remove(tmp_path / "dense" / "model_float16.tflite")
    done = run(tmp_path, "--epochs=1", "--stages=export,verify", "--tflite_variants=float32,float16")
    assert results(done)["export"] != "reused" and (tmp_path / "dense" / "model_float16.tflite").exists()


def test_a_damaged_fingerprints_file_reruns_the_stages_instead_of_failing(trained, tmp_path, capsys):
    copy_of(trained, tmp_path)
    (tmp_path / "dense" / "fingerprints.json").write_text("{not json")
    assert results(run(tmp_path, "--epochs=1", "--stages=train"))["train"] != "reused"
    assert "fingerprints.json is damaged: every stage runs again" in capsys.readouterr().out


# Stale files


def test_fewer_variants_leave_no_file_of_the_old_ones(trained, tmp_path):
    copy_of(trained, tmp_path)
    run(tmp_path, "--epochs=1", "--stages=export", "--tflite_variants=float32,float16,dynamic_range")
    run(tmp_path, "--epochs=1", "--stages=export")
    assert sorted(p.name for p in (tmp_path / "dense").glob("*.tflite")) == ["model.tflite"]


def test_retraining_removes_what_later_stages_made_from_the_old_model(trained, tmp_path, capsys):
    copy_of(trained, tmp_path)
    run(tmp_path, "--epochs=2", "--stages=train")
    task_dir = tmp_path / "dense"
    assert not (task_dir / "metrics.json").exists() and not (task_dir / "model.tflite").exists()
    assert not (task_dir / "saved_model").exists()
    assert "removed the outputs of evaluate, export" in capsys.readouterr().out
    assert sorted(os.listdir(task_dir / "checkpoints")) == ["epoch_001.weights.h5", "epoch_002.weights.h5"]


def test_a_killed_runs_temporary_files_are_cleared_by_the_next(trained, tmp_path):
    copy_of(trained, tmp_path)
    task_dir = tmp_path / "dense"
    (task_dir / ".model.tmp-99999-abcdef12.keras").write_bytes(b"half")
    os.makedirs(task_dir / ".scratch.tmp-99999-abcdef12" / "int8")
    run(tmp_path, "--epochs=1", "--stages=train")
    assert not [p for p in os.listdir(task_dir) if ".tmp-" in p]


# The trained model's settings


def test_later_stages_alone_use_the_trained_models_settings(tmp_path):
    run(tmp_path, "--epochs=1", "--stages=train", "--hidden_units=24", "--max_train_examples=500")
    done = runner.run(config_from_flags("--task=dense", f"--output_dir={tmp_path}", "--stages=evaluate",
                                        "--max_test_examples=200"))
    assert results(done)["evaluate"].startswith("test_accuracy=")
    config = json.loads((tmp_path / "dense" / "config.json").read_text())
    assert config["hparams"]["hidden_units"] == [24] and config["max_train_examples"] == 500


def test_a_reused_train_hands_on_the_settings_it_resolved_so_later_stages_keep_their_keys(tmp_path):
    """Train resolves settings (a sweep's hyperparameters, a small set's epochs) and records them; reused, it hands
    the recorded ones on, or the stages after it would be keyed by the defaults and made again."""
    given = config_from_flags(f"--output_dir={tmp_path}", "--epochs=2")
    resolved = dataclasses.replace(given, epochs=7, learning_rate=0.0123, hparams={**given.hparams, "dropout": 0.3})
    os.makedirs(given.task_dir)
    records = state.Records(given)
    records.record("train", "key", resolved, {}, ())
    handed_on = state.Records(given).resolved("train", given)
    assert (handed_on.epochs, handed_on.learning_rate, handed_on.hparams["dropout"]) == (7, 0.0123, 0.3)
    assert state.settings(handed_on, "evaluate") == state.settings(resolved, "evaluate")


def test_a_flag_that_contradicts_the_trained_model_is_one_line(trained, tmp_path):
    copy_of(trained, tmp_path)
    with pytest.raises(PipelineError, match=r"trained with --hidden_units=16, not 32: drop --hidden_units"):
        runner.run(config_from_flags(*SMALL[:-1], "--hidden_units=32", f"--output_dir={tmp_path}",
                                     "--stages=export"))
    with pytest.raises(PipelineError, match=r"trained with --max_train_examples=600, not 700"):
        run(tmp_path, "--stages=evaluate", "--max_train_examples=700")


# Resume


def interrupt_after_epoch(monkeypatch, epoch: int):
    """Stops training the way Ctrl-C does, after the given epoch's state was backed up."""
    original = EpochCheckpoint.on_epoch_end

    def stop(self, index, logs=None):
        original(self, index, logs)
        if index + 1 == epoch:
            raise KeyboardInterrupt
    monkeypatch.setattr(EpochCheckpoint, "on_epoch_end", stop)


def test_the_same_command_resumes_and_a_changed_one_starts_over(tmp_path, monkeypatch, capsys):
    with monkeypatch.context() as m:
        interrupt_after_epoch(m, 2)
        with pytest.raises(KeyboardInterrupt):
            run(tmp_path, "--epochs=3", "--stages=train")
    assert os.listdir(tmp_path / "dense" / "backup")
    run(tmp_path, "--epochs=3", "--stages=train", "--learning_rate=0.002")
    out = capsys.readouterr().out
    assert "starting training over: the interrupted run in" in out and "--learning_rate 0.003 → 0.002" in out
    assert len(json.loads((tmp_path / "dense" / "history.json").read_text())["loss"]) == 3

    with monkeypatch.context() as m:
        interrupt_after_epoch(m, 2)
        with pytest.raises(KeyboardInterrupt):
            run(tmp_path, "--epochs=3", "--stages=train")
    capsys.readouterr()
    run(tmp_path, "--epochs=3", "--stages=train")
    out = capsys.readouterr().out
    assert "resuming the interrupted training after epoch 2" in out
    assert "Epoch 3/3" in out and "Epoch 1/3" not in out
    assert len(json.loads((tmp_path / "dense" / "history.json").read_text())["loss"]) == 3  # the curves span both
    assert not (tmp_path / "dense" / "backup").exists()


def test_a_damaged_backup_and_force_start_over(tmp_path, monkeypatch, capsys):
    with monkeypatch.context() as m:
        interrupt_after_epoch(m, 1)
        with pytest.raises(KeyboardInterrupt):
            run(tmp_path, "--epochs=2", "--stages=train")
    (state,) = (tmp_path / "dense" / "backup").iterdir()
    (state / "training_metadata.json").write_text("{trunc")
    run(tmp_path, "--epochs=2", "--stages=train")
    assert "the interrupted run's state in" in capsys.readouterr().out
    assert len(json.loads((tmp_path / "dense" / "history.json").read_text())["loss"]) == 2


# One writer per folder


def test_a_second_run_in_a_locked_folder_fails_at_once_naming_the_holder(tmp_path):
    (tmp_path / "dense").mkdir()
    with artifacts.TaskLock(str(tmp_path / "dense")):
        with pytest.raises(PipelineError, match=rf"dense is in use by another dlpipe run \(pid {os.getpid()}\)"):
            run(tmp_path, "--stages=train")
    assert not (tmp_path / "dense" / "model.keras").exists()


def test_temporary_names_are_unique_per_writer(tmp_path):
    path = str(tmp_path / "model.keras")
    with artifacts.atomic_path(path) as first, artifacts.atomic_path(path) as second:
        assert first != second and first.endswith(".keras") and second.endswith(".keras")
        for tmp, text in ((first, "first"), (second, "second")):
            with open(tmp, "w") as f:
                f.write(text)
    assert open(path).read() == "first"  # the last to finish wins whole; neither wrote into the other's file
