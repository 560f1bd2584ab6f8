import pytest
import tensorflow as tf

from pipelines.context import Context
from pipelines.data.pipeline import Inputs
from pipelines.families.generator import MIN_TRAIN_STEPS
from pipelines.stages.train import resolve_epochs
from pipelines.tasks import TASKS
from tests.conftest import config_from_flags


def small_data_context(*flags: str, train: int = 576, batch: int = 64) -> Context:
    config = config_from_flags(*flags)
    ctx = Context(config, TASKS[config.task])
    split = tf.data.Dataset.range(train).batch(batch)
    ctx.__dict__["inputs"] = Inputs(train=split, validation=split, test=split, num_train=train, num_validation=0,
                                    num_test=0, batch_size=batch, examples=split.unbatch())
    return ctx


def test_a_gan_on_a_small_folder_makes_the_task_s_steps_by_passes_an_epoch():
    resolved = resolve_epochs(small_data_context("--task=gan"))  # 576 pictures: 9 steps a pass
    assert resolved.config.epochs == TASKS["gan"].epochs
    assert resolved.inputs.passes == 23 and resolved.inputs.steps_per_epoch * resolved.config.epochs >= MIN_TRAIN_STEPS


@pytest.mark.parametrize("epochs", [1, 15])
def test_more_or_fewer_gan_epochs_keep_an_epoch_s_passes_so_fifteen_train_longer_than_ten(epochs):
    resolved = resolve_epochs(small_data_context("--task=gan", f"--epochs={epochs}"))
    assert resolved.config.epochs == epochs and resolved.inputs.passes == 23  # 15 epochs: 3,105 steps, not 135


def test_passes_per_epoch_overrides_the_family_s_rule():
    resolved = resolve_epochs(small_data_context("--task=gan", "--epochs=2", "--passes_per_epoch=1"))
    assert resolved.inputs.passes == 1 and resolved.inputs.steps_per_epoch == 9
    assert resolve_epochs(small_data_context("--task=dense", "--passes_per_epoch=3", train=640)).inputs.passes == 3


def test_a_classifier_on_a_small_table_trains_more_epochs_unless_told():
    resolved = resolve_epochs(small_data_context("--task=dense", train=128))  # 2 steps an epoch: 50 for 100 steps
    assert resolved.config.epochs == 50 and resolved.inputs.passes == 1
    assert resolve_epochs(small_data_context("--task=dense", "--epochs=2", train=128)).config.epochs == 2
