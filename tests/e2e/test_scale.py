"""Data at its real size: memory bounded by the budget and the batch, not by the data set (a folder larger than the
budget trains in the memory a small one takes), and a table larger than the budget trains from disk."""

import json
import subprocess
import sys

import numpy as np
from PIL import Image

from benchmarks.scale import PEAK_RSS  # the script the benchmark measures a run's peak memory with
from pipelines import runner
from tests.conftest import ROOT, config_from_flags


def write_photos(root, per_class: int, side: int = 64) -> None:
    rng = np.random.default_rng(0)
    for c, tint in enumerate(((200, 40, 40), (40, 40, 200))):
        (root / f"class{c}").mkdir(parents=True)
        for i in range(per_class):
            pixels = np.clip(rng.normal(tint, 25, (side, side, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(root / f"class{c}" / f"{i:05d}.png", compress_level=1)


def peak_rss_mb(tmp_path, dataset, *flags: str) -> float:
    path = tmp_path / "rss"
    result = subprocess.run([sys.executable, "-c", PEAK_RSS, str(path), f"--dataset={dataset}", "--task=dense",
                             "--stages=train", "--epochs=1", "--hidden_units=16", f"--output_dir={tmp_path}/runs",
                             *flags], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return int(path.read_text()) / 1024


def test_a_folder_larger_than_the_memory_budget_trains_in_the_memory_a_small_one_takes(tmp_path):
    write_photos(tmp_path / "small", per_class=100)
    write_photos(tmp_path / "large", per_class=1500)  # 3,000 images: 147 MB as the float32 examples training reads
    budget = "--memory_budget_mb=4"
    small, large = peak_rss_mb(tmp_path, tmp_path / "small", budget), peak_rss_mb(tmp_path, tmp_path / "large", budget)
    print(f"peak RSS: {small:.0f} MB for 200 images, {large:.0f} MB for 3,000")
    assert large - small < 60, (small, large)  # held in memory, the large folder's examples alone would be 147 MB


def test_a_table_larger_than_the_memory_budget_trains_from_disk_sorted_by_label(tmp_path, capsys):
    rng = np.random.default_rng(0)
    x = rng.normal(0, 1, (50_000, 8))
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).astype(int)
    order = np.argsort(y, kind="stable")  # every 0 before every 1: a bounded shuffle must still mix them
    with open(tmp_path / "big.csv", "w") as f:
        f.write(",".join(f"x{i}" for i in range(8)) + ",label\n")
        f.writelines(",".join(f"{v:.3f}" for v in row) + f",{'yes' if t else 'no'}\n"
                     for row, t in zip(x[order], y[order]))
    # 36,000 train rows of 40 bytes are 1.4 MB: over the budget, once validation and test are held
    runner.run(config_from_flags(f"--dataset={tmp_path / 'big.csv'}", "--label_column=label", "--epochs=1",
                                 "--memory_budget_mb=1", "--stages=train,evaluate", f"--output_dir={tmp_path}"))
    assert "read from disk each epoch, shuffled by shard and within" in capsys.readouterr().out
    metrics = json.loads((tmp_path / "dense" / "metrics.json").read_text())
    assert metrics["test_accuracy"] > 0.95 and metrics["num_test_examples"] == 10_000
