"""Hugging Face Datasets internals: its offline switch (copied from the hub's into its own config when it loads,
so setting the environment variable later does nothing) and a data set's fingerprint (private: the hash `datasets`
keys its own cache by, changed by any change to the data)."""

import contextlib

from pipelines.upstream import huggingface_hub, require

TESTED = "5.2"


def _check() -> None:
    import datasets
    require("Hugging Face Datasets", datasets.__version__, TESTED, "datasets")


@contextlib.contextmanager
def offline_unless_reachable():
    """`datasets` reads the local cache alone while the hub cannot be reached: a name it has not cached fails at
    once instead of after retries."""
    from datasets import config
    _check()
    with huggingface_hub.hub_offline_unless_reachable() as offline:
        saved = config.HF_HUB_OFFLINE, config.HF_DATASETS_OFFLINE
        config.HF_HUB_OFFLINE = config.HF_DATASETS_OFFLINE = saved[0] or offline
        try:
            yield
        finally:
            config.HF_HUB_OFFLINE, config.HF_DATASETS_OFFLINE = saved


def fingerprint(dataset) -> str:
    """A datasets.Dataset's fingerprint."""
    _check()
    return dataset._fingerprint
