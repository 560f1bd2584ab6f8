"""Fine-tuning a KerasHub preset on your own text (--init_from=<preset>): a preset folder the test writes (what a
preset name downloads has the same layout) through train, evaluate, export, verify and dlpipe-serve; and the
offline failure of a preset name, in one line."""

import json
import shutil

import numpy as np
import pytest
import tensorflow as tf
from ai_edge_litert.interpreter import Interpreter

from pipelines import metadata, runner
from tests.loopback import serving
from tests.conftest import (assert_one_line_error, cli_in_process, config_from_flags, write_reviews,
                            write_tiny_preset)
from tests.e2e.test_server import call

FLAGS = ("--task=transformer", "--epochs=12", "--batch_size=16", "--sequence_length=16", "--test_split=0.4",
         "--learning_rate=3e-3", "--tflite_variants=float32")


@pytest.fixture(scope="module")
def fine_tuned(tmp_path_factory):
    root = tmp_path_factory.mktemp("pretrained")
    write_reviews(root / "reviews")
    vocabulary = write_tiny_preset(root / "preset")
    args = (*FLAGS, f"--init_from={root / 'preset'}", f"--dataset={root / 'reviews'}", f"--output_dir={root / 'runs'}")
    records = runner.run(config_from_flags(*args))
    return root, args, vocabulary, records


def test_a_preset_fine_tunes_on_a_text_folder_and_ships_with_its_own_vocabulary(fine_tuned):
    root, _, vocabulary, records = fine_tuned
    task_dir = root / "runs" / "transformer"
    assert [r.stage for r in records] == ["train", "evaluate", "export", "verify", "report"]
    assert json.loads((task_dir / "metrics.json").read_text())["test_accuracy"] > 0.8  # the signal words decide
    report = json.loads((task_dir / "export_report.json").read_text())
    assert report["passed"] and report["exports"]["onnx"]["max_abs_diff"] <= 1e-4
    assert b"Flex" not in (task_dir / "model.tflite").read_bytes()  # the encoder in builtin ops
    (detail,) = Interpreter(model_path=str(task_dir / "model.tflite")).get_input_details()
    assert tuple(detail["shape_signature"][1:]) == (16,) and detail["dtype"] == np.int32
    # The app looks its WordPiece ids up in the preset's own vocabulary, packed in the file.
    info, packed = metadata.read_metadata((task_dir / "model.tflite").read_bytes())
    assert packed["vocab.txt"].decode().split("\n")[:-1] == vocabulary
    assert b"BertTokenizer" in info.subgraphMetadata[0].inputTensorMetadata[0].description


def test_the_run_belongs_to_the_presets_contents(fine_tuned):
    root, args, _, _ = fine_tuned
    assert {r.result for r in runner.run(config_from_flags(*args, "--stages=train"))} == {"reused"}
    copy = root / "copy"
    shutil.copytree(root / "preset", copy)
    flags = [a for a in args if not a.startswith(("--init_from", "--output_dir"))]
    flags += [f"--init_from={copy}", f"--output_dir={root / 'copy_runs'}", "--epochs=1", "--stages=train"]
    assert [r.result for r in runner.run(config_from_flags(*flags))] != ["reused"]
    assert [r.result for r in runner.run(config_from_flags(*flags))] == ["reused"]
    shutil.rmtree(copy)
    write_tiny_preset(copy, seed=1)  # the same folder and architecture, other weights: another run
    assert [r.result for r in runner.run(config_from_flags(*flags))] != ["reused"]


def test_dlpipe_serve_answers_text_with_label_names(fine_tuned):
    root, _, _, _ = fine_tuned
    texts = ["a great and moving film", "slow dull plot"]
    with serving(root / "runs") as base:
        status, answer = call(f"{base}/v1/models/transformer:predict", {"instances": texts})
    assert status == 200, answer
    serve = tf.saved_model.load(str(root / "runs" / "transformer" / "saved_model")).signatures["serving_default"]
    (expected,) = serve(text=tf.constant(texts)).values()
    np.testing.assert_allclose(answer["predictions"], expected.numpy(), atol=1e-5)
    assert [c["label"] for c in answer["classifications"]] == ["positive", "negative"]


def test_a_preset_name_offline_is_one_line_that_says_it_needs_the_network(tmp_path):
    write_reviews(tmp_path / "reviews", per_class=5)
    result = cli_in_process("--task=transformer", "--init_from=bert_tiny_en_uncased",
                            f"--dataset={tmp_path / 'reviews'}", f"--output_dir={tmp_path / 'runs'}", "--stages=train")
    assert_one_line_error(result, "--init_from=bert_tiny_en_uncased", "network access")


@pytest.mark.parametrize("flags, fragments", [
    (("--task=transformer", "--model_width=32"), ("--model_width", "fixes the model's architecture",
                                                  "--sequence_length, --dropout")),
    (("--task=recurrent",), ("--task=recurrent cannot start from a KerasHub preset", "--task=transformer")),
    (("--task=transformer", "--dataset=fashion_mnist"), ("--task=transformer fine-tunes text presets",
                                                         "holds image examples: use --task=conv")),
    (("--task=transformer", "--stages=tune,train"), ("fixes the architecture the tune stage searches",)),
])
def test_what_a_preset_cannot_do_is_one_line(fine_tuned, flags, fragments, tmp_path):
    root, _, _, _ = fine_tuned
    defaults = {"--dataset": f"--dataset={root / 'reviews'}", "--stages": "--stages=train"}
    given = {f.split("=")[0] for f in flags}
    result = cli_in_process(*flags, *(flag for name, flag in defaults.items() if name not in given),
                            f"--init_from={root / 'preset'}", f"--output_dir={tmp_path}")
    assert_one_line_error(result, *fragments)
