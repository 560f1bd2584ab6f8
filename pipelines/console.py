"""What a run prints: the package's own lines, Keras' progress, and none of the native libraries' chatter.

TensorFlow, its TFLite converter and the LiteRT interpreter write to file descriptor 2 from C++: start-up INFO
lines (oneDNN, "Could not find cuda drivers"), a cuInit error on a machine without a GPU, the converter's
"fully_quantize: 0, …" and LiteRT's "Created TensorFlow Lite XNNPACK delegate". Much of it is printed before
TF_CPP_MIN_LOG_LEVEL is read, so the variable alone does not silence it. Around the calls that print it,
`native_chatter_hidden` sends descriptor 2 to a temporary file and replays what is not chatter. A user who sets
TF_CPP_MIN_LOG_LEVEL to 0 or 1, or gives --verbosity, gets all of it, unfiltered.
"""

import contextlib
import logging
import os
import re
import sys
import tempfile

# The user asked for TensorFlow's INFO or WARNING lines (a level below 2), or for --verbosity: every native line
# is theirs to see.
VERBOSE = os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2").strip() in ("0", "1") or any(
    arg == "-v" or arg.startswith(("--verbosity", "-v=")) for arg in sys.argv[1:])

CHATTER = re.compile("|".join((
    r"^WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR",
    r"^[IW]\d{4} [\d:.]+ +\d+ [\w.]+:\d+\]",              # native INFO and WARNING lines (absl's format)
    r"^E\d{4} .*(cuInit|cuda_platform|cuda_executor|cuda_diagnostics|cudart)",  # probing a GPU that is not there
    r"^To enable the following instructions: .* rebuild TensorFlow",  # the second line of a CPU-feature note
    r"^fully_quantize: \d+, inference_type: \d+",            # the int8 converter's settings
    r"^INFO: (Created|Initialized) TensorFlow Lite",         # LiteRT's runtime and XNNPACK delegate
)))


def is_chatter(line: str) -> bool:
    return bool(CHATTER.match(line))


@contextlib.contextmanager
def native_chatter_hidden():
    """Descriptor 2 goes to a temporary file while the block runs; what is not chatter is written back after."""
    if VERBOSE:
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            kept = [line for line in capture.read().decode(errors="replace").splitlines(keepends=True)
                    if not is_chatter(line)]
            if kept:
                sys.stderr.write("".join(kept))
                sys.stderr.flush()


def start_tensorflow() -> None:
    """Imports TensorFlow and lets it look for GPUs (where CUDA's probing prints) with its chatter hidden, and
    keeps its Python logger to errors: the SavedModel writer warns of collections it does not serialize."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with native_chatter_hidden():
        import tensorflow as tf
        tf.config.list_physical_devices("GPU")
    if not VERBOSE:
        tf.get_logger().setLevel(logging.ERROR)


def parse_flags(argv: list[str], module: str) -> list[str]:
    """absl's flags_parser for a program whose flags `module` defines: a bad flag is one line instead of absl's
    two-line FATAL message, and --helpshort lists that module's flags (the program is argv[0])."""
    from absl import flags
    for flag in flags.FLAGS.get_flags_for_module(module):
        flags.FLAGS.register_key_flag_for_module(argv[0], flag)
    try:
        return flags.FLAGS(argv)
    except flags.Error as e:
        # absl prefixes a multi-flag check's message with every flag it read ("flags a=1, b=2: ..."): drop it.
        message = re.sub(r"^flags (\w+=[^,:]*(, )?)+: ", "", str(e))
        print(f"error: {message} (see --helpshort)", file=sys.stderr)
        sys.exit(2)
