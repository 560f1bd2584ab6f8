"""Sequence classification against aeon's MiniRocket (`python -m benchmarks.sequences`; part of `make bench`).

The UCR/UEA sets that ship in aeon's wheel (univariate and multivariate), with their official splits, written as a
user's files by benchmarks/aeon_minirocket.py in aeon's own venv (`make aeon`), which also scores aeon's
MiniRocket and 1-NN on them. dlpipe runs on each file as a user runs it, with no --task: `dlpipe
--dataset=<name>_TRAIN.tsv --test_dataset=<name>_TEST.tsv --label_column=0` (a long file: `--series_id_column=id
--time_column=t --label_column=label`), train and evaluate, then export and verify. Reported: test accuracy of
each, the seconds of dlpipe's train + evaluate stages against MiniRocket's fit + predict on the same 2 cores, and
the 8-bit files' top-1 agreement with Keras on the test series (dynamic range / int8, then float16's; "left out"
when verify left one out of what ships for missing its limit).
Results go to benchmarks/out/sequences.json and sequences.md.
"""

import json
import os
import subprocess
import sys
import tempfile
import time

from benchmarks import config_of
from pipelines import artifacts, runner

OUT = os.path.join(os.path.dirname(__file__), "out")
# The fully convolutional network's published test accuracy (Wang et al. 2017's FCN, as Fawaz et al. 2019 ran it:
# the mean of their runs in hfawaz/dl-4-tsc's results/results-ucr-128.csv, UCR archive 2018, five runs; JapaneseVowels
# from results-mts.csv, ten runs). Their results have no BasicMotions.
PUBLISHED_FCN = {"GunPoint": 1.000, "ItalyPowerDemand": 0.963, "ArrowHead": 0.843, "OSULeaf": 0.979, "ACSF1": 0.898,
                 "JapaneseVowels": 0.993, "PickupGestureWiimoteZ": 0.744}
AEON_PYTHON = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), ".venv-aeon", "bin",
                           "python")


def reference(folder: str) -> dict:
    script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "aeon_minirocket.py")
    result = subprocess.run([AEON_PYTHON, script, folder], capture_output=True, text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def run_dlpipe(folder: str, name: str, entry: dict) -> tuple[dict, float]:
    train, test = entry["files"]["TRAIN"], entry["files"]["TEST"]
    layout = (["--label_column=0"] if train.endswith(".tsv") else  # a long file's classes may be numbers
              ["--series_id_column=id", "--time_column=t", "--label_column=label", "--problem=classification"])
    output = os.path.join(folder, "runs", name)
    start = time.perf_counter()
    flags = (f"--dataset={train}", f"--test_dataset={test}", *layout, f"--output_dir={output}")
    runner.run(config_of(*flags, "--stages=train,evaluate"))
    seconds = time.perf_counter() - start
    runner.run(config_of(*flags, "--stages=train,evaluate,export,verify"))  # train and evaluate reused
    task = next(d for d in os.listdir(output) if not d.startswith("."))
    exports = json.load(open(os.path.join(output, task, artifacts.VERIFY)))["exports"]

    def agreement(row: dict) -> str:
        measured = f"{row['top1_agreement']:.3f}" if "top1_agreement" in row else ""
        return ", ".join(filter(None, (measured, "left out" if row.get("left_out") else "")))
    bits = {variant: agreement(exports[variant]) if variant in exports else "none"
            for variant in ("dynamic_range", "int8", "float16")}
    return {**json.load(open(os.path.join(output, task, "metrics.json"))), "task": task, "bits": bits}, seconds


def main(names: list[str]) -> None:
    with tempfile.TemporaryDirectory() as folder:
        sets = reference(folder)
        rows = {}
        for name, entry in sets.items():
            if names and name not in names:
                continue
            metrics, seconds = run_dlpipe(folder, name, entry)
            rows[name] = {**{k: entry[k] for k in ("channels", "steps", "train", "test", "minirocket", "one_nn",
                                                   "minirocket_seconds")},
                          "dlpipe": metrics["test_accuracy"], "task": metrics["task"], "dlpipe_seconds": seconds,
                          "agreement_8_bits": metrics["bits"]}
            print(name, rows[name], flush=True)
    lines = ["| set | channels × steps | train / test | dlpipe (task) | MiniRocket (aeon) | 1-NN | FCN (published) | "
             "dlpipe s | MiniRocket s | agree with Keras (dynamic range / int8 / float16) |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for name, r in rows.items():
        fcn = f"{PUBLISHED_FCN[name]:.3f}" if name in PUBLISHED_FCN else "—"
        lines.append(f"| {name} | {r['channels']} × {r['steps']} | {r['train']} / {r['test']} | {r['dlpipe']:.3f} "
                     f"({r['task']}) | {r['minirocket']:.3f} | {r['one_nn']:.3f} | {fcn} | {r['dlpipe_seconds']:.1f} | "
                     f"{r['minirocket_seconds']:.1f} | {' / '.join(r['agreement_8_bits'].values())} |")
    if rows:
        mean = {k: sum(r[k] for r in rows.values()) / len(rows) for k in ("dlpipe", "minirocket", "one_nn")}
        lines.append(f"| mean | | | {mean['dlpipe']:.3f} | {mean['minirocket']:.3f} | {mean['one_nn']:.3f} | | | | |")
    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(OUT, "sequences.json"), "w") as f:
        json.dump(rows, f, indent=1)
    with open(os.path.join(OUT, "sequences.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main(sys.argv[1:])
