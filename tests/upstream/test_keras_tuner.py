"""KerasTuner and TensorFlow Datasets internals behind pipelines/upstream/: each test fails when the upstream
changes underneath a use."""

import keras_tuner as kt
import pytest

from pipelines.upstream import keras_tuner as kt_internals
from pipelines.upstream import tfds as tfds_internals


def test_the_direction_of_a_metric_is_inferred_from_its_name():
    assert (kt_internals.metric_direction("val_loss"), kt_internals.metric_direction("val_auc")) == ("min", "max")
    assert kt_internals.metric_direction("val_fooness") is None


def test_failed_trials_stay_quiet():
    from keras_tuner.src import config
    config.DEBUG = True
    kt_internals.quiet_failures()
    assert config.DEBUG is False


def test_a_tuner_class_runs_on_an_oracle_of_ours(tmp_path):
    class Tuner(kt.RandomSearch):
        def __init__(self, oracle, **kwargs):
            kt_internals.init_with_oracle(self, oracle, **kwargs)
    oracle = kt.oracles.RandomSearchOracle(objective="val_loss", max_trials=1)
    tuner = Tuner(oracle, hypermodel=lambda hp: None, directory=str(tmp_path), project_name="p")
    assert tuner.oracle is oracle


def test_tfds_download_retries_are_lowered_for_the_block_and_restored():
    from tensorflow_datasets.core.download import downloader
    before = downloader.MAX_RETRIES
    with tfds_internals.few_download_retries(1):
        assert downloader.MAX_RETRIES == 1
    assert downloader.MAX_RETRIES == before


def test_trial_statuses_are_the_ones_a_trial_reports():
    status = kt_internals.trial_status()
    assert {"RUNNING", "COMPLETED", "FAILED", "INVALID"} <= {s for s in dir(status) if s.isupper()}
    assert kt.engine.trial.Trial(kt.HyperParameters(), status=status.COMPLETED).status == "COMPLETED"


def test_an_unknown_tfds_name_raises_the_error_the_fence_names():
    import tensorflow_datasets as tfds
    with pytest.raises(tfds_internals.dataset_not_found_error()):
        tfds.builder("no_such_data_set_here", try_gcs=False)
