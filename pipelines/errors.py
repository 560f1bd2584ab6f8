"""The one error type for problems a user can fix (principle 8 of DESIGN.md)."""


class PipelineError(Exception):
    """A problem with the user's input, data or artifacts.

    The message names the problem and the fix; the entry point prints it as one line and exits non-zero.
    """
