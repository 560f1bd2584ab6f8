"""Hugging Face Datasets' internals (pipelines/upstream/datasets.py): a data set's fingerprint changes with its
data, and the offline switch is the config constant `datasets` reads, restored after."""

import pytest

from pipelines.upstream import datasets as fence

datasets = pytest.importorskip("datasets")


def test_the_fingerprint_is_the_data_sets_own_and_follows_its_data():
    assert datasets.__version__.startswith(fence.TESTED + ".")
    a = datasets.Dataset.from_dict({"x": [1, 2, 3]})
    assert fence.fingerprint(a) == fence.fingerprint(datasets.Dataset.from_dict({"x": [1, 2, 3]}))
    assert fence.fingerprint(a) != fence.fingerprint(datasets.Dataset.from_dict({"x": [1, 2, 4]}))


def test_the_offline_switch_is_set_while_the_hub_is_unreachable_and_restored():
    from datasets import config
    before = config.HF_HUB_OFFLINE, config.HF_DATASETS_OFFLINE
    with fence.offline_unless_reachable():
        assert config.HF_HUB_OFFLINE and config.HF_DATASETS_OFFLINE  # this machine reaches no hub
    assert (config.HF_HUB_OFFLINE, config.HF_DATASETS_OFFLINE) == before
