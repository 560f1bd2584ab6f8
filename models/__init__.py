"""Keras functional model builders, one module per family: pure functions from shapes and hyperparameters."""
