"""The upstream internals dlpipe uses, fenced: one module per upstream (tensorflow, keras, keras_tuner, tfds, datasets,
huggingface_hub, sklearn), each the only place its private API is touched, each with the version it was written and
tested against.

A private API can change in any release. `require(name, installed, tested)` makes a changed upstream one line
naming the version to install instead of a traceback deep in a run, and tests/upstream/ fails when an upstream
changes underneath a use (a symbol gone, a patched function's source changed). Where a public API does the job,
it is used instead, and nothing here is.
"""

from pipelines.errors import PipelineError


def require(upstream: str, installed: str, tested: str, package: str) -> None:
    """One line when `installed` is not the `tested` release series (major.minor, or the exact version)."""
    if installed != tested and not installed.startswith(tested + "."):
        raise PipelineError(f"{upstream} {installed} is installed, and dlpipe's use of its internals was written for "
                            f"{tested}: install {package}=={tested}{'.*' if tested.count('.') == 1 else ''} (the "
                            "version setup.cfg pins)")
