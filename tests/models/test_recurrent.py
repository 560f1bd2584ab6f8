import numpy as np
import pytest

from models.recurrent import CELLS, adapt_vocabulary, build_recurrent_classifier


@pytest.mark.parametrize("cell", list(CELLS))
def test_every_cell_is_unrolled_so_tflite_needs_no_flex_ops(cell):
    model = build_recurrent_classifier((28, 28, 1), 10, cell=cell, rnn_layers=2, bidirectional=True)
    recurrent = [layer.forward_layer for layer in model.layers if layer.name.startswith("bidirectional_")]
    assert [type(layer) for layer in recurrent] == [CELLS[cell]] * 2
    assert all(layer.unroll for layer in recurrent)
    assert recurrent[0].return_sequences and not recurrent[1].return_sequences


def test_image_model_reads_an_images_rows_as_steps():
    model = build_recurrent_classifier((28, 28, 3), 10, rnn_units=16)
    assert model.input_shape == (None, 28, 28, 3) and model.output_shape == (None, 10)
    assert model.get_layer("rows").output.shape == (None, 28, 84)  # 28 steps of a row's 28 × 3 values
    assert model.get_layer("gru_0").units == 16


def test_text_model_takes_strings_and_holds_a_token_id_model():
    vocabulary = ("good", "bad", "movie")
    model = build_recurrent_classifier((), 2, vocabulary=vocabulary, sequence_length=6, rnn_units=8)
    assert model.input.dtype == "string" and model.output_shape == (None, 2)
    ids = model.get_layer("vectorize")(np.array(["Good movie, BAD plot!"]))
    np.testing.assert_array_equal(ids, [[2, 4, 3, 1, 0, 0]])  # 0 pads, 1 is out of vocabulary
    token_model = model.get_layer("token_classifier")
    assert token_model.input_shape == (None, 6)
    assert token_model.get_layer("embedding").input_dim == len(vocabulary) + 2


def test_vocabulary_is_adapted_most_frequent_first_without_special_tokens():
    vocabulary = adapt_vocabulary(np.array(["a b b", "b c c c"]))
    assert vocabulary[:2] == ("c", "b") and set(vocabulary) == {"a", "b", "c"}


@pytest.mark.parametrize("cell", list(CELLS))
def test_each_cell_stacked_and_bidirectional_converts_to_builtin_ops_and_runs_in_litert(tmp_path, cell):
    """What the export stage does to a recurrent model, without training one: SavedModel → TFLite builtin ops →
    LiteRT, whose answer matches Keras'."""
    from ai_edge_litert.interpreter import Interpreter

    from pipelines.shipping import with_uint8_pixels
    from pipelines.exporters import convert_tflite as convert
    from pipelines.stages.export import export_saved_model
    model = with_uint8_pixels(build_recurrent_classifier((8, 8, 1), 10, cell=cell, rnn_layers=2, bidirectional=True,
                                                         rnn_units=8))
    export_saved_model(model, str(tmp_path / "saved_model"))
    flatbuffer = convert(str(tmp_path / "saved_model"), "float32")
    assert b"Flex" not in flatbuffer  # Flex ops are custom ops named Flex…; LiteRT's pip interpreter has none
    runner = Interpreter(model_content=flatbuffer).get_signature_runner("serving_default")
    image = np.random.default_rng(0).integers(0, 256, (1, 8, 8, 1), dtype=np.uint8)
    (logits,) = runner(image=image).values()
    np.testing.assert_allclose(logits, model(image), atol=1e-4)
