"""The first data sets a learner brings are small: a 150-row table, a 442-row regression table, ten photos a
class. The default pipeline trains them long enough to learn and ships them through verify, which judges the
exports' agreement with Keras on every input there is (test examples alone are a few dozen)."""

import json

import numpy as np
from PIL import Image

from pipelines import runner
from tests.conftest import config_from_flags


def write_flowers(path, rows: int = 150, seed: int = 0) -> None:
    """Three species told apart by petal size, as in Fisher's iris table."""
    rng = np.random.default_rng(seed)
    with open(path, "w") as f:
        f.write("sepal length,sepal width,petal length,petal width,species\n")
        for i in range(rows):
            species = i % 3
            petal = 1.5 + 2.0 * species + rng.normal(0, 0.35, 2)
            sepal = 5.0 + 0.6 * species + rng.normal(0, 0.4, 2)
            name = ("setosa", "versicolor", "virginica")[species]
            f.write(f"{sepal[0]:.1f},{sepal[1]:.1f},{petal[0]:.1f},{petal[1] / 3:.1f},{name}\n")


def write_progression(path, rows: int = 442, seed: int = 0) -> None:
    """A disease-progression score linear in ten standardised measurements plus noise, as in the diabetes table."""
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 0.05, (rows, 10))
    y = 150 + x @ rng.normal(0, 400, 10) + rng.normal(0, 50, rows)
    with open(path, "w") as f:
        f.write(",".join(f"s{i}" for i in range(10)) + ",progression\n")
        for features, target in zip(x, y):
            f.write(",".join(f"{v:.5f}" for v in features) + f",{target:.0f}\n")


def default_run(tmp_path, dataset, *flags):
    runner.run(config_from_flags(f"--dataset={dataset}", f"--output_dir={tmp_path}", *flags))
    task_dir = tmp_path / "dense"
    return tuple(json.loads((task_dir / name).read_text())
                 for name in ("metrics.json", "export_report.json", "config.json"))


def test_a_150_row_table_trains_100_steps_and_every_export_verifies(tmp_path):
    write_flowers(tmp_path / "flowers.csv")
    metrics, exports, trained = default_run(tmp_path, tmp_path / "flowers.csv", "--label_column=species")
    assert metrics["num_test_examples"] == 30 and exports["passed"]
    assert exports["judged_examples"] == 150  # the 30 test examples and the 120 others, unlabelled
    assert set(exports["exports"]) >= {"float32", "dynamic_range", "float16", "int8", "onnx"}
    assert trained["epochs"] == 100  # 108 rows: one step an epoch
    assert metrics["test_accuracy"] >= metrics["baseline_logistic_accuracy"] - 0.1
    low, high = metrics["test_accuracy_interval"]
    assert low < metrics["test_accuracy"] <= high and high - low > 0.1  # 30 examples say this little


def test_a_442_row_regression_table_verifies_by_value(tmp_path):
    write_progression(tmp_path / "progression.csv")
    metrics, exports, _ = default_run(tmp_path, tmp_path / "progression.csv", "--label_column=progression")
    assert metrics["num_test_examples"] == 88 and exports["passed"] and exports["judged_examples"] == 442
    assert metrics["test_rmse"] < 1.3 * metrics["baseline_linear_rmse"]
    assert metrics["baseline_gradient_boosting_rmse"] > 0 and "baseline_gradient_boosting_r2" in metrics


def test_a_folder_of_ten_images_a_class_verifies(tmp_path):
    rng = np.random.default_rng(0)
    for c, level in enumerate((40, 130, 220)):
        (tmp_path / "photos" / f"class{c}").mkdir(parents=True)
        for i in range(10):
            pixels = np.clip(rng.normal(level, 10, (16, 16)), 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(tmp_path / "photos" / f"class{c}" / f"{i}.png")
    metrics, exports, _ = default_run(tmp_path, tmp_path / "photos")
    assert metrics["num_test_examples"] == 6 and exports["passed"] and exports["judged_examples"] == 30
    assert metrics["test_accuracy"] >= 0.5  # chance is a third
