"""Keras functional model builders, one module per family: pure functions from shapes and hyperparameters."""

# BatchNormalization's moving statistics follow each batch by this much. Keras' default 0.99 leaves them far
# from the data after short runs (the model then scores near chance in inference mode; docs/tasks.md). Every
# builder's BatchNormalization uses it.
BN_MOMENTUM = 0.9


class BuildError(ValueError):
    """A builder argument that cannot make a model for the given input: `argument` names it, the message says why
    and what would fit."""

    def __init__(self, argument: str, problem: str):
        super().__init__(f"{argument}: {problem}")
        self.argument = argument
