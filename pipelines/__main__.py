"""Entry point: parse flags → RunConfig → runner. `dlpipe --helpshort` lists the flags."""

import os
import sys

from pipelines import console

console.start_tensorflow()  # first: its start-up chatter is hidden only around its import

from absl import app, flags, logging  # noqa: E402

from pipelines import flags as pipeline_flags  # noqa: E402
from pipelines import interrupts, runner  # noqa: E402
from pipelines.distribution import WorkerLost  # noqa: E402
from pipelines.errors import PipelineError  # noqa: E402


def main(argv: list[str]) -> None:
    interrupts.install()
    if not flags.FLAGS["verbosity"].present:
        logging.set_verbosity(logging.WARNING)  # Python INFO lines bury the progress output; --verbosity shows them
    try:
        if len(argv) > 1:
            raise PipelineError(f"unexpected arguments {' '.join(argv[1:])}: flags are written --name=value")
        runner.run(pipeline_flags.to_config())
    except WorkerLost as e:
        print(f"error: {e}", file=sys.stderr)
        _exit_now(1)
    except PipelineError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt as e:
        how, code = ("terminated (SIGTERM)", 143) if isinstance(e, interrupts.Terminated) else ("interrupted", 130)
        print(f"error: {how}; finished artifacts are intact, and the same command resumes training or a sweep "
              "where it stopped", file=sys.stderr)
        # Exit without the interpreter's teardown: the stack has unwound (locks released, temporary files gone),
        # but TensorFlow's threads may still be in the interrupted step, and tearing the interpreter down under
        # them can crash it.
        _exit_now(code)


def _exit_now(code: int) -> None:
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def run() -> None:
    app.run(main, flags_parser=pipeline_flags.parse)


if __name__ == "__main__":
    run()
