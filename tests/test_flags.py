import pytest
from absl import flags

from tests.conftest import config_from_flags as parse
from pipelines.tasks import TASKS


def test_defaults_run_the_dense_seed_network_on_fashion_mnist():
    config = parse()
    assert (config.task, config.dataset, config.data_source) == ("dense", "fashion_mnist", "auto")
    assert config.stages == ("train", "evaluate", "export", "verify", "report")
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
    (["--task=perceptron"], "--task"),
    (["--dataset=coco"], "--dataset"),
    (["--stages=train,deploy"], "--stages"),
    (["--stages=export,train"], "in that order"),
    (["--stages=train,train"], "each once"),
    (["--stages="], "--stages"),
    (["--hidden_units=128,zero"], "integers from 1 to 16384"),
    (["--hidden_units=0"], "integers from 1 to 16384"),
    (["--hidden_units=100000000"], "integers from 1 to 16384"),
    (["--validation_split=nan"], "--validation_split must be a finite number"),
    (["--dropout=nan"], "--dropout must be a finite number"),
    (["--learning_rate=nan"], "--learning_rate must be a finite number"),
    (["--task=gan", "--discriminator_learning_rate=nan"], "must be a finite number"),
    (["--dataset=imdb_reviews"], "does not fit this --task"),
    (["--dataset=mnist", "--data_source=idx"], "Fashion-MNIST only"),
    (["--init_from=/no/such/model.keras"], "/no/such/model.keras does not exist: --init_from takes an earlier run's"),
    (["--init_from=setup.cfg"], "setup.cfg is neither a .keras, a .weights.h5 nor a keras.applications .h5 file"),
    (["--init_from=tests"], "tests is a folder without the config.json a KerasHub preset folder has"),
    (["--trainer=numpy", "--distribute=mirrored"], "--trainer=numpy trains from scratch, in one process"),
    (["--task=transformer", "--patch_size=0"], "--patch_size"),
    (["--distribute=everywhere"], "--distribute"),
    (["--cluster_timeout=0"], "--cluster_timeout"),
    (["--track=tensorboard"], "--track"),
    (["--tracking_uri=http://127.0.0.1:5000"], "--tracking_uri is where MLflow tracks: give --track=mlflow"),
    (["--track=wandb", "--tracking_uri=http://127.0.0.1:5000"], "give --track=mlflow with it"),
    (["--tracking_project=fashion"], "--tracking_project names where --track tracks"),
])
def test_bad_values_are_rejected_at_parse_time(args, problem):
    with pytest.raises(flags.Error, match=problem):
        parse(*args)


def test_flagfile_replays_a_saved_run(tmp_path):
    flagfile = tmp_path / "run.flags"
    flagfile.write_text("--epochs=3\n--hidden_units=64\n")
    config = parse(f"--flagfile={flagfile}")
    assert config.epochs == 3 and config.hparams["hidden_units"] == (64,)


@pytest.mark.parametrize("task", sorted(name for name, task in TASKS.items() if task.datasets))
def test_tflite_variants_default_to_the_tasks_own_and_the_flag_overrides_them(task):
    from pipelines.families.classifier import CLASSIFIER
    family = TASKS[task].family or CLASSIFIER  # what the default data set (Fashion-MNIST) makes the task
    assert parse(f"--task={task}").tflite_variants == TASKS[task].defaults("keras", family)["tflite_variants"]
    assert "int16x8" not in parse(f"--task={task}").tflite_variants  # every family but forecasters': int8
    assert parse(f"--task={task}", "--tflite_variants=int8,float32").tflite_variants == ("float32", "int8")


def test_label_smoothing_defaults_to_one_tenth_and_zero_turns_it_off():
    assert parse().label_smoothing == 0.1
    assert parse("--label_smoothing=0").label_smoothing == 0.0


def test_flags_given_on_the_command_line_are_recorded_as_explicit(tmp_path):
    flagfile = tmp_path / "run.flags"
    flagfile.write_text("--epochs=3\n")
    config = parse("--dropout=0.2", f"--flagfile={flagfile}")
    assert set(config.explicit) == {"dropout", "epochs"}


def test_hparams_file_values_are_range_checked_and_given_flags_win(tmp_path):
    from pipelines.errors import PipelineError
    best = tmp_path / "best.json"
    best.write_text('{"hparams": {"hidden_units": [64, 32], "dropout": 0.3}, "learning_rate": 0.01}')
    config = parse(f"--hparams_file={best}", "--dropout=0.1")
    assert dict(config.hparams) == {"hidden_units": (64, 32), "dropout": 0.1}  # the flag beats the file
    assert config.learning_rate == 0.01
    best.write_text('{"hparams": {"dropout": 1.5}, "learning_rate": 0.01}')
    with pytest.raises(PipelineError, match=r"best.json: dropout=1.5 is not a valid --dropout"):
        parse(f"--hparams_file={best}")
    best.write_text('{"hparams": {"hidden_units": [0]}}')
    with pytest.raises(PipelineError, match=r"hidden_units=\(0,\) is not a valid --hidden_units"):
        parse(f"--hparams_file={best}")


def test_an_idx_dir_that_is_not_a_folder_is_named_instead_of_falling_back_to_a_download(tmp_path):
    from pipelines.errors import PipelineError
    with pytest.raises(PipelineError, match=r"--idx_dir=.*/typo is not a folder"):
        parse(f"--idx_dir={tmp_path}/typo")


def test_every_classifier_ships_int8_by_default_and_int16x8_only_when_asked():
    for task in ("dense", "conv", "recurrent", "transformer"):
        assert "int8" in parse(f"--task={task}").tflite_variants
        assert "int16x8" not in parse(f"--task={task}").tflite_variants
    assert "int16x8" in parse("--task=recurrent", "--tflite_variants=float32,int16x8").tflite_variants


def test_a_forecaster_ships_the_mean_unless_asked_for_arima_alone(tmp_path):
    """--forecaster: the mean of the candidates by default, with or without --task; arima when asked."""
    from tests import series as made
    path = made.monthly_csv(tmp_path / "monthly.csv", made.seasonal(60))
    series = (f"--dataset={path}", "--time_column=month", "--label_column=passengers", "--horizon=3")
    assert parse(*series).forecaster == parse(*series, "--task=recurrent").forecaster == "mean"
    assert parse(*series, "--forecaster=arima").forecaster == "arima"
    from pipelines.errors import PipelineError
    with pytest.raises(PipelineError, match="--forecaster=arima says what a forecaster ships.*give --time_column"):
        parse(f"--dataset={path}", "--label_column=passengers", "--forecaster=arima")
