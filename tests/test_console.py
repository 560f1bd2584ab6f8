"""The native libraries' chatter is hidden from a run's output; everything else written to stderr is kept."""

import os
import sys

from pipelines import console


def test_known_chatter_is_recognised_and_other_lines_are_not():
    for line in ("WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
                 "I0000 00:00:1796172041.459222    9276 cudart_stub.cc:31] Could not find cuda drivers on your "
                 "machine, GPU will not be used.",
                 "E0000 00:00:1796172048.673453    9276 cuda_platform.cc:52] failed call to cuInit: INTERNAL",
                 "fully_quantize: 0, inference_type: 6, input_inference_type: UINT8, output_inference_type: UINT8",
                 "INFO: Created TensorFlow Lite XNNPACK delegate for CPU."):
        assert console.is_chatter(line), line
    for line in ("error: stage train failed", "E0000 00:00:1.0 1 op_kernel.cc:1] OOM when allocating tensor",
                 "Epoch 1/2", "Traceback (most recent call last):"):
        assert not console.is_chatter(line), line


def test_native_output_is_filtered_and_the_rest_kept(capfd, monkeypatch):
    monkeypatch.setattr(console, "VERBOSE", False)
    with console.native_chatter_hidden():
        os.write(2, b"INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\n")
        os.write(2, b"a real warning\n")
        print("from Python", file=sys.stderr)
    assert sorted(capfd.readouterr().err.splitlines()) == ["a real warning", "from Python"]


def test_a_user_who_asks_for_the_logs_gets_them_unfiltered(capfd, monkeypatch):
    monkeypatch.setattr(console, "VERBOSE", True)
    with console.native_chatter_hidden():
        os.write(2, b"INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\n")
    assert "XNNPACK" in capfd.readouterr().err
