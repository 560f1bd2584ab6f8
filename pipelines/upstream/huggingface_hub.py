"""Hugging Face Hub internals: its offline switch, whose only knob is a module constant read at import."""

import contextlib
import socket
import urllib.parse

from pipelines.upstream import require

TESTED = "2.4"
HF_SCHEME = "hf://"


def _reachable(endpoint: str) -> bool:
    """Whether the hub's host has an address: offline, the lookup fails in milliseconds."""
    host = urllib.parse.urlparse(endpoint).hostname or endpoint
    try:
        socket.getaddrinfo(host, 443)
        return True
    except OSError:
        return False


@contextlib.contextmanager
def offline_unless_reachable(preset: str):
    """A hf:// preset is read from the local Hugging Face cache alone when the hub cannot be reached: offline, the
    hub's client retries each file five times over 25 s and warns at each; in offline mode it takes the cached files
    or fails at once. Anything else, and a reachable hub, are left as they are."""
    if not preset.startswith(HF_SCHEME):
        yield
        return
    with hub_offline_unless_reachable():
        yield


@contextlib.contextmanager
def hub_offline_unless_reachable():
    """The hub's client in offline mode (the local cache alone) while the hub cannot be reached; yields the mode."""
    import huggingface_hub
    from huggingface_hub import constants
    require("huggingface_hub", huggingface_hub.__version__, TESTED, "huggingface_hub")
    saved = constants.HF_HUB_OFFLINE
    constants.HF_HUB_OFFLINE = saved or not _reachable(constants.ENDPOINT)
    try:
        yield constants.HF_HUB_OFFLINE
    finally:
        constants.HF_HUB_OFFLINE = saved
