import pytest
from absl import flags

from pipelines.flags import config_from_args as parse
from pipelines.tasks import TASKS


def test_defaults_run_the_dense_seed_network_on_fashion_mnist():
    config = parse()
    assert (config.task, config.dataset, config.data_source) == ("dense", "fashion_mnist", "auto")
    assert config.stages == ("train", "evaluate", "export", "verify")
    assert dict(config.hparams) == {"hidden_units": (128,), "dropout": 0.0}
    assert config.task_dir == "runs/dense"


def test_builder_hyperparameters_come_from_their_flags():
    config = parse("--hidden_units=256,64", "--dropout=0.2", "--stages=export,verify", "--output_dir=/x")
    assert dict(config.hparams) == {"hidden_units": (256, 64), "dropout": 0.2}
    assert config.stages == ("export", "verify") and config.task_dir == "/x/dense"


@pytest.mark.parametrize("args,problem", [
    (["--epochs=0"], "--epochs"),
    (["--batch_size=-3"], "--batch_size"),
    (["--learning_rate=0"], "--learning_rate"),
    (["--validation_split=0.9"], "--validation_split"),
    (["--task=transformer"], "--task"),
    (["--dataset=coco"], "--dataset"),
    (["--stages=train,deploy"], "--stages"),
    (["--stages=export,train"], "in that order"),
    (["--stages=train,train"], "each once"),
    (["--stages="], "--stages"),
    (["--hidden_units=128,zero"], "positive integers"),
    (["--hidden_units=0"], "positive integers"),
    (["--dataset=imdb_reviews"], "does not fit this --task"),
    (["--dataset=mnist", "--data_source=idx"], "Fashion-MNIST only"),
])
def test_bad_values_are_rejected_at_parse_time(args, problem):
    with pytest.raises(flags.Error, match=problem):
        parse(*args)


def test_flagfile_replays_a_saved_run(tmp_path):
    flagfile = tmp_path / "run.flags"
    flagfile.write_text("--epochs=3\n--hidden_units=64\n")
    config = parse(f"--flagfile={flagfile}")
    assert config.epochs == 3 and config.hparams["hidden_units"] == (64,)


@pytest.mark.parametrize("task", sorted(TASKS))
def test_tflite_variants_default_to_the_tasks_own_and_the_flag_overrides_them(task):
    assert parse(f"--task={task}").tflite_variants == TASKS[task].tflite_variants
    assert parse(f"--task={task}", "--tflite_variants=int8,float32").tflite_variants == ("float32", "int8")


def test_label_smoothing_defaults_to_one_tenth_and_zero_turns_it_off():
    assert parse().label_smoothing == 0.1
    assert parse("--label_smoothing=0").label_smoothing == 0.0
