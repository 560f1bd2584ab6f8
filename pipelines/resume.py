"""The resume folder of an interrupted training: backup/<fingerprint>/, where Keras' BackupAndRestore keeps the
last finished epoch's state, so that the same command continues it and any other command starts over."""

import os

from pipelines import artifacts
from pipelines.config import describe_changes

SETTINGS = "settings.json"           # backup/<fingerprint>/settings.json: what the interrupted run was training
TRAINING_METADATA = "training_metadata.json"  # BackupAndRestore's record of the last epoch it backed up


def folder(root: str, key: str, stage_settings: dict, force: bool) -> tuple[str, bool]:
    """This config's resume folder, <root>/<fingerprint>/, and whether it holds a run to continue. Another
    config's interrupted run, a damaged backup, or --force start over, each said in one line."""
    mine = os.path.join(root, key)
    if force and os.path.exists(root):
        print("--force: starting training over")
        artifacts.remove(root)
    for other in sorted(os.listdir(root)) if os.path.isdir(root) else []:
        if other == key:
            continue
        try:
            change = describe_changes(artifacts.read_json(os.path.join(root, other, SETTINGS)), stage_settings)
        except (OSError, ValueError):
            change = "settings unknown"
        print(f"starting training over: the interrupted run in {root} had other settings ({change})")
        artifacts.remove(os.path.join(root, other))
    resumed = os.path.exists(os.path.join(mine, TRAINING_METADATA))
    if resumed:
        try:
            epoch = artifacts.read_json(os.path.join(mine, TRAINING_METADATA))["epoch"]
            print(f"resuming the interrupted training after epoch {epoch}")
        except (OSError, ValueError, KeyError, TypeError):
            print(f"starting training over: the interrupted run's state in {mine} is damaged")
            artifacts.remove(mine)
            resumed = False
    os.makedirs(mine, exist_ok=True)
    artifacts.write_json(os.path.join(mine, SETTINGS), stage_settings)
    return mine, resumed


def finish(folder: str, diverged: bool) -> None:
    """After fit: a diverged state is not worth resuming; the root goes when BackupAndRestore emptied it."""
    if diverged:
        artifacts.remove(folder)
    root = os.path.dirname(folder)
    if os.path.isdir(root) and not os.listdir(root):
        os.rmdir(root)
