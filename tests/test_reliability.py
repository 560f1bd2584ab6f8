"""Numerical health, determinism and write failures, on small in-process runs."""

import errno
import json

import numpy as np
import pytest

import keras
from pipelines import artifacts, runner
from pipelines.errors import PipelineError
from pipelines.health import EpochCheckpoint, StopOnDivergence
from tests.conftest import config_from_flags

SMALL = ("--task=dense", "--max_train_examples=600", "--max_test_examples=200", "--tflite_variants=float32",
         "--noonnx")


def test_non_finite_loss_stops_training_at_once_and_names_epoch_step_and_last_finite_loss():
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile("sgd", "mse")
    x = np.ones((64, 2), "float32")
    x[40:] = np.nan  # the 6th batch of 8 poisons the loss
    health = StopOnDivergence()
    history = model.fit(x, np.ones(64), batch_size=8, epochs=3, callbacks=[health], verbose=0, shuffle=False)
    assert len(history.history["loss"]) == 1  # stopped in the first epoch
    with pytest.raises(PipelineError, match=r"loss became nan at epoch 1, step 6 \(last sound loss [0-9.e-]+\)"
                                            r".*--learning_rate or set --clip_norm"):
        health.raise_if_failed()


def test_a_finite_loss_ten_thousand_times_its_first_counts_as_diverged():
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1, kernel_initializer="ones")])
    model.compile(keras.optimizers.SGD(0.0), "mse")  # nothing learns: the loss is the data's
    x = np.ones((64, 1), "float32")
    x[32:] = 1e4  # finite; Keras logs the running mean: 2e7 after a loss of 1 four times
    health = StopOnDivergence()
    model.fit(x, np.zeros(64), batch_size=8, epochs=2, callbacks=[health], verbose=0, shuffle=False)
    with pytest.raises(PipelineError, match=r"loss became 2e\+07 at epoch 1, step 5 \(last sound loss 1\)"):
        health.raise_if_failed()


def test_a_loss_never_finite_says_so_and_a_step_past_the_epoch_is_not_reported():
    """A 2-step epoch at 32 steps per execution once reported "step 32 (last sound loss none)"."""
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    model.compile("sgd", "mse", steps_per_execution=32)
    health = StopOnDivergence()
    model.fit(np.full((16, 1), 1e30, "float32"), np.full(16, 1e30), batch_size=8, epochs=1, callbacks=[health],
              verbose=0)
    with pytest.raises(PipelineError, match=r"training failed with no sound loss logged: the loss was inf at epoch "
                                            r"1, step 2, the first step logged; a value too large for float32"):
        health.raise_if_failed()


def test_a_huge_learning_rate_fails_the_run_and_keeps_the_previous_model(tmp_path):
    good = config_from_flags(*SMALL, "--epochs=1", f"--output_dir={tmp_path}", "--stages=train")
    runner.run(good)
    before = (tmp_path / "dense" / "model.keras").read_bytes()
    diverging = config_from_flags(*SMALL, "--epochs=2", f"--output_dir={tmp_path}", "--stages=train",
                                  "--learning_rate=1e6", "--hidden_units=1024,1024,1024,1024")
    with pytest.raises(PipelineError, match="training (diverged: loss became|failed with no sound loss logged: the "
                                            "loss was) [^ ]+ at epoch 1"):
        runner.run(diverging)
    assert (tmp_path / "dense" / "model.keras").read_bytes() == before
    assert not (tmp_path / "dense" / "checkpoints").exists()  # the diverged epoch 1 wrote no checkpoint
    assert not (tmp_path / "dense" / "backup").exists()  # nor a state to resume
    assert [r.result for r in runner.run(good)] == ["reused"]  # the failed run cost the good one nothing


def test_clip_norm_reaches_the_optimizer():
    from pipelines.families.classifier import compile_classifier
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    compile_classifier(model, config_from_flags("--clip_norm=1.5"))
    assert model.optimizer.global_clipnorm == 1.5


def test_deterministic_runs_give_identical_metrics(tmp_path):
    metrics = []
    for run in ("a", "b"):
        runner.run(config_from_flags(*SMALL, "--epochs=2", "--deterministic", "--dropout=0.3",
                                     f"--output_dir={tmp_path / run}", "--stages=train,evaluate"))
        metrics.append(json.loads((tmp_path / run / "dense" / "metrics.json").read_text()))
    # Everything but the seconds: the speeds are measurements of the machine, not of the model.
    speeds = {"examples_per_second", "gflop_per_second", "train_examples_per_second", "train_gflop_per_second"}
    assert metrics[0]["train_flops_per_example"] > 0 and "train_gflop_per_second" in metrics[0]

    def results(record):
        return {k: v for k, v in record.items() if k not in speeds}
    assert results(metrics[0]) == results(metrics[1])
    histories = [json.loads((tmp_path / run / "dense" / "history.json").read_text()) for run in ("a", "b")]
    assert results(histories[0]) == results(histories[1])
    from tensorflow.python.framework import config as tf_config
    assert not tf_config.is_op_determinism_enabled()  # a process-wide switch: not leaked into later tests


def test_up_to_date_stages_are_reused_changed_ones_rerun_and_force_reruns_all(tmp_path, capsys):
    base = (*SMALL, "--epochs=1", f"--output_dir={tmp_path}", "--stages=train,evaluate")
    runner.run(config_from_flags(*base))
    assert [r.result for r in runner.run(config_from_flags(*base))] == ["reused", "reused"]
    changed = runner.run(config_from_flags(*base, "--max_test_examples=100"))  # evaluate's data changed
    assert changed[0].result == "reused" and changed[1].result.startswith("test_accuracy=")
    assert json.loads((tmp_path / "dense" / "metrics.json").read_text())["num_test_examples"] == 100
    assert all(r.result != "reused" for r in runner.run(config_from_flags(*base, "--force")))
    retrained = runner.run(config_from_flags(*base, "--epochs=2"))  # train changed, so evaluate's input did
    assert all(r.result != "reused" for r in retrained)


def test_disk_full_while_writing_fails_in_one_line_and_keeps_the_previous_artifacts(tmp_path, monkeypatch):
    config = config_from_flags(*SMALL, "--epochs=1", f"--output_dir={tmp_path}", "--stages=train,evaluate")
    runner.run(config)
    before = (tmp_path / "dense" / "metrics.json").read_text()
    real_write_json = artifacts.write_json

    def disk_full(path, obj):
        if path.endswith(artifacts.METRICS):
            with artifacts.atomic_path(path) as tmp, open(tmp, "w") as f:
                f.write("{")
                raise OSError(errno.ENOSPC, "No space left on device", tmp)
        real_write_json(path, obj)
    monkeypatch.setattr(artifacts, "write_json", disk_full)
    with pytest.raises(PipelineError, match="stage evaluate failed on .*metrics.*No space left on device.*free disk"):
        runner.run(config_from_flags(*SMALL, "--epochs=1", f"--output_dir={tmp_path}", "--stages=evaluate",
                                     "--force"))
    assert (tmp_path / "dense" / "metrics.json").read_text() == before
    assert not [p for p in (tmp_path / "dense").iterdir() if ".tmp" in p.name]


def test_gradient_norm_per_epoch_reaches_history_tensorboard_and_metrics(tmp_path):
    runner.run(config_from_flags(*SMALL, "--epochs=2", f"--output_dir={tmp_path}", "--stages=train,evaluate"))
    norms = json.loads((tmp_path / "dense" / "history.json").read_text())["grad_norm"]
    assert len(norms) == 2 and all(n > 0 for n in norms)
    assert json.loads((tmp_path / "dense" / "metrics.json").read_text())["train_grad_norm_per_epoch"] == norms
    import tensorflow as tf
    events = [str(p) for p in (tmp_path / "dense" / "logs" / "train").iterdir()]
    tags = {v.tag for e in tf.compat.v1.train.summary_iterator(events[0]) for v in e.summary.value}
    assert "epoch_grad_norm" in tags


def test_a_read_error_mid_stage_is_not_reported_as_a_full_disk():
    from pipelines.runner import _os_error
    message = str(_os_error("export", OSError(errno.EIO, "Input/output error", "/runs/dense/model.keras"), "/runs"))
    assert "model.keras (Input/output error)" in message and "disk space" not in message
    assert "make it writable" in str(_os_error("train", OSError(errno.EACCES, "Permission denied", "/x"), "/x"))


def test_each_epochs_checkpoint_holds_the_model_and_optimizer_state_at_that_epoch(tmp_path):
    """The checkpoint is a copy of the resume state's weights file: it must be that epoch's, not the previous one's."""
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile("adam", "mse")
    seen = {}

    class Record(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            seen[epoch + 1] = [v.numpy().copy() for v in self.model.variables + self.model.optimizer.variables]
    backup = str(tmp_path / "backup")
    callbacks = [keras.callbacks.BackupAndRestore(backup),
                 EpochCheckpoint(str(tmp_path / "checkpoints"), StopOnDivergence(),
                                 state=str(tmp_path / "backup" / "latest.weights.h5")), Record()]
    model.fit(np.ones((32, 2), "float32"), np.ones(32), batch_size=8, epochs=2, callbacks=callbacks, verbose=0)
    for epoch in (1, 2):
        restored = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
        restored.compile("adam", "mse")
        restored.optimizer.build(restored.trainable_variables)
        restored.load_weights(tmp_path / "checkpoints" / f"epoch_00{epoch}.weights.h5")
        for got, expected in zip(restored.variables + restored.optimizer.variables, seen[epoch]):
            np.testing.assert_array_equal(got.numpy(), expected)
