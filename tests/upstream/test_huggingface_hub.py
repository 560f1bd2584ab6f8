"""The Hugging Face Hub's offline switch (pipelines/upstream/huggingface_hub.py): an unreachable hub makes a hf://
preset fail in seconds, in one line, instead of five retries and a warning each."""

import time

import pytest

from pipelines.errors import PipelineError
from pipelines.tasks import TASKS
from pipelines.upstream import huggingface_hub as fence


def test_the_switch_is_the_module_constant_the_client_reads_and_it_is_restored():
    import huggingface_hub
    from huggingface_hub import constants
    assert huggingface_hub.__version__.startswith(fence.TESTED + ".")
    before = constants.HF_HUB_OFFLINE
    with fence.offline_unless_reachable("hf://someone/model"):
        assert constants.is_offline_mode()  # this machine reaches no hub
    assert constants.HF_HUB_OFFLINE == before
    with fence.offline_unless_reachable("bert_tiny_en_uncased"):  # not a hf:// handle: left as it is
        assert constants.HF_HUB_OFFLINE == before


def test_an_unreachable_hf_preset_is_one_line_within_seconds(capfd):
    start = time.perf_counter()
    with pytest.raises(PipelineError, match="init_from=hf://google/bert_tiny: the KerasHub preset did not load"):
        TASKS["transformer"].build_from_preset("hf://google/bert_tiny", (1,), 2, (), "text")
    assert time.perf_counter() - start < 10
    assert "Retrying" not in capfd.readouterr().err
