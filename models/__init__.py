"""Keras functional model builders, one module per family: pure functions from shapes and hyperparameters."""


class BuildError(ValueError):
    """A builder argument that cannot make a model for the given input: `argument` names it, the message says why
    and what would fit."""

    def __init__(self, argument: str, problem: str):
        super().__init__(f"{argument}: {problem}")
        self.argument = argument
