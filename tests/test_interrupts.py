"""Ctrl-C and SIGTERM (pipelines/interrupts.py): raised where the program stands, except in training, where a signal
waits for the running step to end; a second one is raised at once."""

import os
import signal
import time

import pytest

from pipelines import interrupts


@pytest.fixture
def handlers():
    saved = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    interrupts.install()
    yield
    signal.signal(signal.SIGINT, saved[0])
    signal.signal(signal.SIGTERM, saved[1])
    interrupts._pending.clear()


def send(signum: int) -> None:
    os.kill(os.getpid(), signum)
    time.sleep(0.01)  # Python runs the handler at its next bytecode


def test_a_signal_in_training_waits_for_the_step_end(handlers):
    steps = []
    with pytest.raises(KeyboardInterrupt):
        with interrupts.at_step_ends():
            send(signal.SIGINT)
            steps.append("the step ran on")
            interrupts.AtStepEnd().on_train_batch_end(0)
            steps.append("never")
    assert steps == ["the step ran on"]
    with pytest.raises(interrupts.Terminated):  # one that waits past the last step is raised as training ends
        with interrupts.at_step_ends():
            send(signal.SIGTERM)


def test_a_second_signal_is_raised_at_once_and_outside_training_the_first(handlers):
    with pytest.raises(interrupts.Terminated):
        with interrupts.at_step_ends():
            send(signal.SIGINT)
            send(signal.SIGTERM)
            pytest.fail("the second signal did not stop the step")
    interrupts._pending.clear()
    with pytest.raises(KeyboardInterrupt):
        send(signal.SIGINT)
