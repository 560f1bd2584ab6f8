"""Fine-tuning a KerasHub image backbone on your own photos (--init_from=<image preset>): a preset folder the test
writes with save_to_preset (what a preset name downloads has the same layout), a folder of coloured shapes, the
two training phases, every export verified, MediaPipe's ImageClassifier, dlpipe-serve and dlpipe-predict; and
what a preset cannot do, one line each."""

import json

import h5py
import numpy as np
import pytest
from PIL import Image

from pipelines import prediction, runner
from pipelines.families import Asked
from tests.conftest import assert_one_line_error, cli_in_process, config_from_flags, write_image_preset
from tests.e2e.test_clients import classify
from tests.e2e.test_server import call
from tests.loopback import serving
from tests.pictures import write_pictures

EPOCHS = 4


@pytest.fixture(scope="module")
def fine_tuned(tmp_path_factory):
    root = tmp_path_factory.mktemp("transfer")
    write_image_preset(root / "preset")
    # The preset's backbone has random weights: the classes are told by their colours, and at a rate that moves a
    # head in the 28 steps of four epochs (at the default rate the loss did not fall on the AVX2 kind).
    write_pictures(root / "shapes", 150, 32, classes=True, tinted=True)
    runner.run(config_from_flags("--task=conv", f"--init_from={root / 'preset'}", f"--dataset={root / 'shapes'}",
                                 f"--output_dir={root / 'runs'}", f"--epochs={EPOCHS}", "--batch_size=16",
                                 "--learning_rate=3e-2",
                                 "--tflite_variants=float32,int8", "--onnx"))
    return root, root / "runs" / "conv"


def weights(path, part: str) -> list[np.ndarray]:
    """Every array stored under a layer whose path names `part`, from an epoch's checkpoint."""
    found = []
    with h5py.File(path, "r") as f:
        f.visititems(lambda name, item: found.append(item[()]) if isinstance(item, h5py.Dataset) and part in name
                     else None)
    return found


def test_the_backbone_is_frozen_for_half_the_epochs_then_its_top_learns(fine_tuned):
    _, task_dir = fine_tuned
    history = json.loads((task_dir / "history.json").read_text())
    assert history["fine_tune_phase"] == [0, 0, 1, 1]
    epochs = [task_dir / "checkpoints" / f"epoch_{e:03d}.weights.h5" for e in range(1, EPOCHS + 1)]
    backbone, head = [weights(p, "res_net_backbone") for p in epochs], [weights(p, "layers/dense/") for p in epochs]
    assert backbone[0] and head[0]

    def changed(a, b):
        return any(not np.array_equal(x, y) for x, y in zip(a, b))
    assert changed(head[0], head[1]) and not changed(backbone[0], backbone[1])  # frozen: the head alone learns
    assert changed(backbone[1], backbone[2])  # then the top of the backbone


def test_every_export_verifies_with_the_presets_preprocessing_inside(fine_tuned):
    _, task_dir = fine_tuned
    report = json.loads((task_dir / "export_report.json").read_text())
    assert report["passed"] and {"float32", "int8", "onnx", "savedmodel"} <= set(report["exports"])
    history = json.loads((task_dir / "history.json").read_text())
    assert history["loss"][-1] < 0.97 * history["loss"][0]  # it learns


def test_mediapipe_loads_the_float_and_int8_files_with_their_labels(fine_tuned, mediapipe_python):
    root, task_dir = fine_tuned
    paths = sorted(str(p) for p in (root / "shapes" / "disc").iterdir())[:6]
    for name in ("model.tflite", "model_int8.tflite"):
        names = classify(mediapipe_python, "mediapipe_classify.py", task_dir / name, paths)
        assert set(names) <= {"disc", "square", "triangle"}


def test_dlpipe_serve_and_predict_answer_photos_of_any_size(fine_tuned, tmp_path):
    root, task_dir = fine_tuned
    big = tmp_path / "photos"
    big.mkdir()
    Image.open(next((root / "shapes" / "square").iterdir())).resize((97, 61)).save(big / "odd.png")
    summary = prediction.predict_file(prediction.open_run(str(task_dir)), str(big), str(tmp_path / "p.csv"), Asked())
    assert summary.examples == 1
    pixels = np.asarray(Image.open(big / "odd.png").resize((32, 32)))[None].tolist()
    with serving(root / "runs") as base:
        status, answer = call(f"{base}/v1/models/conv:predict", {"instances": pixels})
    assert status == 200 and answer["classifications"][0]["label"] in {"disc", "square", "triangle"}


def test_an_image_preset_name_offline_is_one_line_that_says_it_needs_the_network(tmp_path):
    write_pictures(tmp_path / "shapes", 12, 32, classes=True)
    result = cli_in_process("--task=conv", "--init_from=mobilenet_v3_small_100_imagenet",
                            f"--dataset={tmp_path / 'shapes'}", f"--output_dir={tmp_path / 'runs'}", "--stages=train")
    assert_one_line_error(result, "--init_from=mobilenet_v3_small_100_imagenet", "network access")


@pytest.mark.parametrize("flags, fragments", [
    (("--task=conv", "--conv_filters=8"), ("--conv_filters", "fixes the model's architecture", "--dropout, --augment")),
    (("--task=transformer",), ("--task=transformer fine-tunes text presets", "use --task=conv")),
])
def test_what_an_image_preset_cannot_do_is_one_line(fine_tuned, flags, fragments, tmp_path):
    root, _ = fine_tuned
    result = cli_in_process(*flags, f"--dataset={root / 'shapes'}", "--stages=train", f"--init_from={root / 'preset'}",
                            f"--output_dir={tmp_path}")
    assert_one_line_error(result, *fragments)


def test_a_text_preset_given_to_the_image_task_is_one_line(tmp_path):
    from tests.conftest import write_tiny_preset
    write_tiny_preset(tmp_path / "bert")
    write_pictures(tmp_path / "shapes", 12, 32, classes=True)
    result = cli_in_process("--task=conv", f"--init_from={tmp_path / 'bert'}", f"--dataset={tmp_path / 'shapes'}",
                            "--stages=train", f"--output_dir={tmp_path / 'runs'}")
    assert_one_line_error(result, "an image model with an ImageConverter")
