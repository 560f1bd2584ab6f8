"""Side-by-side ratio benchmarks (`make bench`; not run by CI)."""


def config_of(*args: str):
    """The RunConfig the command line would build from these flags (a benchmark is a script: it owns the process's
    flags, parsed afresh each time)."""
    from absl import flags

    from pipelines.flags import to_config
    flags.FLAGS.unparse_flags()
    flags.FLAGS(["dlpipe", *args])
    return to_config()
