"""Artifact names, atomic writes, content hashes and the folder lock: one source of truth for what a run leaves in
<output_dir>/<task>/ and how it is written.

Every artifact is written under a temporary name unique to its writer and renamed into place only once complete,
so a crash or a failed stage never leaves a half-written file where a good one was. One process writes a task
folder at a time (`TaskLock`).
"""

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import shutil
import stat
import uuid
from typing import Any, Iterator

from pipelines.errors import PipelineError

CONFIG = "config.json"          # the resolved settings the trained model was made with (train → later stages)
FINGERPRINTS = "fingerprints.json"  # per stage: its settings, its inputs' and outputs' content hashes
TUNING = "tuning"               # KerasTuner's state: an interrupted sweep continues from it
TRIALS_CSV = "trials.csv"       # one row per trial: id, status, objective, epochs, seconds, hyperparameters
TRIALS_PNG = "trials.png"       # the objective per trial
BEST_HPARAMS = "best_hparams.json"  # the best trial's builder arguments and learning rate (tune → train)
MODEL = "model.keras"           # the trained Keras model (train → evaluate, export, verify)
HISTORY = "history.json"        # per-epoch training curves
CHECKPOINTS = "checkpoints"     # per-epoch weights
BACKUP = "backup"               # backup/<train fingerprint>/: mid-training state for resuming (BackupAndRestore)
LOGS = "logs"                   # TensorBoard event files
METRICS = "metrics.json"        # test-split metrics of the Keras model (a classifier's per class too)
CURVES_PNG = "training_curves.png"     # history.json drawn: each measure's train and validation curves
CONFUSION_PNG = "confusion_matrix.png"  # a classifier's: counts and row-normalised
MISCLASSIFIED_PNG = "misclassified.png"  # an image classifier's surest test errors, with true and predicted names
PREDICTIONS_PNG = "predictions.png"    # a regressor's: predicted vs true, and residuals
REPORT = "report.md"            # the run in one page: config, data, curves, per-class table, exports, files
SAVED_MODEL = "saved_model"     # SavedModel with a serving_default signature
LABELS = "labels.txt"           # line i names class i, beside the TFLite files
VERIFY = "export_report.json"   # per export: parity with Keras, test accuracy, size, latency; pass or fail
VERIFY_MD = "export_report.md"  # the same as a table
PREDICTIONS = "predictions.csv"  # the predict stage's answers for --predict_input, one row per example
PREDICTION_SCORES = "predictions.scores.json"  # … scored, when the new examples hold their labels
LOCK = ".lock"                  # held by the one process writing the folder; names it

# Folders of state and diagnostics that no later stage reads: kept or cleared by their stage, never hashed.
UNHASHED = frozenset({TUNING, CHECKPOINTS, BACKUP, LOGS})


_TMP_MARK = ".tmp-"


def _tmp(path: str) -> str:
    """A temporary name beside `path`, unique to this writer (process and call)."""
    head, tail = os.path.split(path)
    root, dot, ext = tail.partition(".")
    # Keep the whole extension: Keras decides the format from it (`model.keras`, `epoch_001.weights.h5`).
    return os.path.join(head, f".{root}{_TMP_MARK}{os.getpid()}-{uuid.uuid4().hex[:8]}{dot}{ext}")


def remove(path: str) -> None:
    """Removes a file or folder if it is there."""
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
    elif os.path.lexists(path):
        os.remove(path)


@contextlib.contextmanager
def atomic_path(path: str) -> Iterator[str]:
    """Yields a temporary path to write a file or folder to; on success it replaces `path`, on error it goes away."""
    tmp = _tmp(path)
    try:
        yield tmp
        if os.path.isdir(tmp) and os.path.isdir(path):
            # os.replace cannot swap over a non-empty folder: move the old one aside first.
            old = _tmp(path)
            os.replace(path, old)
            os.replace(tmp, path)
            remove(old)
        else:
            os.replace(tmp, path)
    finally:
        remove(tmp)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def clear_dead_temporaries(path: str) -> None:
    """The temporary files a killed writer of `path` left beside it (SIGKILL runs no cleanup): those whose process
    is gone. A live writer's are its own."""
    head, tail = os.path.split(os.path.abspath(path))
    prefix = f".{tail.partition('.')[0]}{_TMP_MARK}"
    try:
        names = [name for name in os.listdir(head) if name.startswith(prefix)]
    except OSError:
        return
    for name in names:
        pid = name[len(prefix):].split("-")[0]
        if pid.isdigit() and not _alive(int(pid)):
            remove(os.path.join(head, name))


def _cannot_write(flag: str, path: str, e: OSError) -> PipelineError:
    return PipelineError(f"cannot write {flag}={path} ({e.strerror or e}): choose another path; nothing was written "
                         "over what was there")


@contextlib.contextmanager
def user_output(path: str, flag: str = "--output") -> Iterator:
    """A text file a user named, opened for writing through what the name is: a link's target, a device or a pipe
    written in place (/dev/stdout, a FIFO a reader waits on), a regular file replaced whole or not at all (a failure
    leaves an earlier one as it was). Every failure to write it is one line naming the flag."""
    real = os.path.realpath(path)
    if os.path.isdir(real):
        raise PipelineError(f"{flag}={path} is a folder: give a file name in it, such as "
                            f"{os.path.join(path, 'predictions.csv')}")
    try:
        if not is_regular_or_new(real):
            with open(real, "w", newline="") as f:  # a device or a pipe: it cannot be replaced, only written
                yield f
            return
        os.makedirs(os.path.dirname(real) or ".", exist_ok=True)
        clear_dead_temporaries(real)
        with atomic_path(real) as tmp:
            with open(tmp, "w", newline="") as f:
                yield f
    except OSError as e:
        raise _cannot_write(flag, path, e) from None


def is_regular_or_new(path: str) -> bool:
    """Whether `path` names a regular file or nothing yet (not a device, pipe or folder): where files may be put
    beside it."""
    real = os.path.realpath(path)
    return not os.path.exists(real) or stat.S_ISREG(os.stat(real).st_mode)


def scratch_dir(folder: str) -> str:
    """A new temporary folder in `folder` (a stage's working files); TaskLock clears any a killed run left."""
    path = _tmp(os.path.join(folder, "scratch"))
    os.makedirs(path)
    return path


# What a write needs beside its own bytes: TensorFlow's and h5py's writers fail badly on a full disk (h5py crashed
# the process once), so the space is checked before them.
SPACE_MARGIN = 16 << 20


def free_bytes(folder: str) -> int:
    return shutil.disk_usage(folder).free


def require_space(folder: str, needed: int, what: str) -> None:
    """One line naming the full disk, before a write of about `needed` bytes that would not fit."""
    free = free_bytes(folder)
    if free < needed + SPACE_MARGIN:
        raise PipelineError(f"the disk holding {folder} is full: {free / 2**20:.1f} MB free, and {what} needs about "
                            f"{(needed + SPACE_MARGIN) / 2**20:.1f} MB: free disk space or choose another "
                            "--output_dir; earlier artifacts are intact")


def write_json(path: str, obj: Any) -> None:
    with atomic_path(path) as tmp, open(tmp, "w") as f:
        json.dump(obj, f, indent=2, sort_keys=True)
        f.write("\n")


def write_text(path: str, text: str) -> None:
    with atomic_path(path) as tmp, open(tmp, "w") as f:
        f.write(text)


def read_json(path: str) -> Any:
    with open(path) as f:
        return json.load(f)


def content_hash(path: str) -> str | None:
    """SHA-256 of a file, or of a folder's relative paths and file contents; None when `path` is missing."""
    if not os.path.lexists(path):
        return None
    digest = hashlib.sha256()
    if os.path.isdir(path):
        for root, dirs, files in os.walk(path):
            dirs.sort()
            for name in sorted(files):
                full = os.path.join(root, name)
                digest.update(os.path.relpath(full, path).encode() + b"\0")
                digest.update(bytes.fromhex(content_hash(full)))
        return digest.hexdigest()
    return file_sha256(path)


def file_sha256(path: str) -> str:
    """SHA-256 of a file's bytes, read a megabyte at a time."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class TaskLock:
    """A lock on a task folder. A run holds it alone (exclusive): a second run in the same folder fails at once,
    naming the holder. Readers (dlpipe-predict) share it (`shared`): many at once, and no run while they read. The
    kernel releases it when the holder exits, even when killed, so a lock is never left stale."""

    def __init__(self, task_dir: str, shared: bool = False):
        self.task_dir, self.shared = task_dir, shared
        self.path = os.path.join(task_dir, LOCK)
        self._file = None

    def __enter__(self) -> "TaskLock":
        try:
            self._file = open(self.path, "a+")
        except OSError as e:
            if not self.shared:
                raise
            # A folder a reader cannot write to (read-only media, another user's run): nothing can change it
            # under this reader unless its owner runs, which a read-only reader cannot prevent anyway.
            if e.errno in (errno.EACCES, errno.EROFS, errno.EPERM):
                return self
            raise
        try:
            fcntl.flock(self._file, (fcntl.LOCK_SH if self.shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
        except OSError as e:
            if e.errno not in (errno.EAGAIN, errno.EACCES):
                raise
            raise self._busy() from None
        if self.shared:
            return self
        self._file.seek(0)
        self._file.truncate()
        self._file.write(f"pid {os.getpid()}")
        self._file.flush()
        self._clear_leftovers()
        return self

    def _busy(self) -> PipelineError:
        """Who holds the lock, in one line: a run (its pid is in the file), or only readers."""
        self._file.seek(0)
        holder = self._file.read().strip() or "another process"
        try:  # a shared lock is granted when only readers hold it
            readers = not self.shared and fcntl.flock(self._file, fcntl.LOCK_SH | fcntl.LOCK_NB) is None
        except OSError:
            readers = False
        self._file.close()
        if self.shared:
            return PipelineError(f"{self.task_dir} is being written by a dlpipe run ({holder}): wait for it to end, "
                                 "then predict from what it wrote")
        if readers:
            return PipelineError(f"{self.task_dir} is being read by dlpipe-predict: wait for it to end, or give this "
                                 "run another --output_dir")
        return PipelineError(f"{self.task_dir} is in use by another dlpipe run ({holder}): wait for it to end, or "
                             "give this run another --output_dir")

    def _clear_leftovers(self) -> None:
        """Temporary files and scratch folders of killed runs: with the lock held, no live writer owns them."""
        for root, dirs, files in os.walk(self.task_dir):
            for name in [*dirs, *files]:
                if name.startswith(".") and _TMP_MARK in name:
                    remove(os.path.join(root, name))
            dirs[:] = [d for d in dirs if d != TUNING]  # KerasTuner's own files

    def __exit__(self, *exc) -> None:
        if self._file is not None:
            self._file.close()  # closing releases the lock
