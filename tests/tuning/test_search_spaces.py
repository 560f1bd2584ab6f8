import dataclasses
import gc

import keras_tuner as kt
import numpy as np
import pytest
from tensorflow.python.framework import func_graph

from pipelines.tasks import TASKS
from tests.conftest import config_from_flags
from tuning.hypermodel import TaskHyperModel
from tuning.search_spaces import sample

SHAPES = {name: (28, 28, 1) for name in TASKS}
# rocket has nothing to tune
TUNED = sorted(name for name, task in TASKS.items() if task.search_space is not None)


@pytest.mark.parametrize("task_name", TUNED)
def test_every_space_names_only_its_builders_arguments(task_name):
    hparams = sample(TASKS[task_name].search_space, kt.HyperParameters())
    assert set(hparams) <= set(TASKS[task_name].hparams)


@pytest.mark.parametrize("task_name", TUNED)
def test_hypermodel_builds_the_tasks_own_model_compiled(task_name):
    config = config_from_flags(f"--task={task_name}")
    model = TaskHyperModel(TASKS[task_name], config, SHAPES[task_name], 10, fixed={}).build(kt.HyperParameters())
    default = TASKS[task_name].build_model(SHAPES[task_name], 10, **config.hparams)
    assert model.name == default.name and model.compiled
    if task_name != "gan":
        assert model.output_shape == (None, 10)


def test_dense_space_varies_depth_and_width():
    hp = kt.HyperParameters()
    hp.Fixed("hidden_layers", 3)
    hp.Fixed("hidden_units_1", 64)
    assert sample(TASKS["dense"].search_space, hp)["hidden_units"][1:2] == (64,)
    assert len(sample(TASKS["dense"].search_space, hp)["hidden_units"]) == 3


def test_fixed_hyperparameters_override_the_search_and_the_learning_rate():
    config = config_from_flags("--task=dense")
    hypermodel = TaskHyperModel(TASKS["dense"], config, (28, 28, 1), 10,
                                fixed={"hidden_units": (32, 16), "learning_rate": 0.005})
    hp = kt.HyperParameters()
    model = hypermodel.build(hp)
    assert not any(name.startswith("hidden_") for name in hp.values)
    assert [model.get_layer(f"hidden_{i}").units for i in range(2)] == [32, 16]
    assert abs(float(model.optimizer.learning_rate) - 0.005) < 1e-9


def test_given_model_flags_become_the_fixed_ones():
    config = config_from_flags("--task=recurrent", "--cell=gru", "--learning_rate=0.01")
    assert dict(config.fixed_hparams) == {"cell": "gru", "learning_rate": 0.01}
    assert dataclasses.asdict(config)["hparams"]["rnn_units"] == 128  # unset flags are not fixed


def _live_graphs() -> int:
    return sum(isinstance(o, func_graph.FuncGraph) for o in gc.get_objects())


def test_a_trial_frees_the_graphs_of_the_trials_before_it():
    """keras-tuner#395 and tensorflow#97697: each trained trial used to leave its train function's graph behind."""
    hypermodel = TaskHyperModel(TASKS["dense"], config_from_flags("--task=dense"), (28, 28, 1), 10,
                                fixed={"hidden_units": (8,)})
    x, y = np.zeros((64, 28, 28, 1), np.float32), np.arange(64) % 10
    graphs = []
    for _ in range(4):
        hypermodel.build(kt.HyperParameters()).fit(x, y, epochs=1, batch_size=32, verbose=0)
        gc.collect()
        graphs.append(_live_graphs())
    assert graphs[-1] <= graphs[0], graphs  # without the fix: grows by the train function's graphs every trial


@pytest.mark.parametrize("task_name", TUNED)
def test_every_space_defaults_to_its_builders_defaults(task_name):
    """The unflagged model is the space's default point: Bayesian search starts there, every oracle tries it."""
    hparams = sample(TASKS[task_name].search_space, kt.HyperParameters())
    assert hparams == {k: v for k, v in TASKS[task_name].default_hparams.items() if k in hparams}


def test_gan_space_keeps_the_image_side_divisible():
    assert len(sample(TASKS["gan"].search_space, kt.HyperParameters())["generator_widths"]) == 2  # 28 / 2 ** 2 = 7


def test_objective_direction_is_the_familys_own_or_keras_tuners_inference():
    from pipelines.errors import PipelineError
    from pipelines.stages.tune import objective
    gan, dense = TASKS["gan"].family, TASKS["dense"].family
    assert objective("val_frechet_distance", gan).direction == "min"
    assert objective("val_loss", dense).direction == "min" and objective("val_mae", dense).direction == "min"
    assert objective("val_accuracy", dense).direction == "max" and objective("val_auc", dense).direction == "max"
    with pytest.raises(PipelineError, match="--objective=val_fooness: KerasTuner cannot tell .* val_accuracy"):
        objective("val_fooness", dense)


def test_a_fixed_tuple_argument_is_not_sampled():
    """--hidden_units=32 given: its depth and widths are no hyperparameters, so no two trials repeat a model."""
    hp = kt.HyperParameters()
    assert sample(TASKS["dense"].search_space, hp, fixed={"hidden_units": (32,)}) == {"dropout": 0.0}
    assert set(hp.values) == {"dropout"}
