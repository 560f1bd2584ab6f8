"""The KerasHub preset builder (models/pretrained.py) on a preset folder the test writes: its weights and tokenizer
are what the model starts from, and what cannot be a preset is said in one line."""

import os
import subprocess
import sys

import numpy as np
import pytest

from models import BuildError, pretrained
from tests.conftest import ROOT, write_tiny_preset


@pytest.fixture(scope="module")
def preset(tmp_path_factory):
    path = tmp_path_factory.mktemp("preset")
    return path, write_tiny_preset(path)


def encoder_of(model):
    return model.get_layer("token_classifier").get_layer("preset_classifier").get_layer("bert_backbone")


def test_the_model_starts_from_the_presets_weights(preset):
    import keras_hub
    path, _ = preset
    model = pretrained.build_preset_text_classifier((), 3, preset=str(path), sequence_length=16)
    saved = keras_hub.models.Backbone.from_preset(str(path))
    for ours, theirs in zip(encoder_of(model).weights, saved.weights, strict=True):
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
    assert model.output.shape == (None, 3)


def test_the_presets_tokenizer_packs_ids_that_the_vocabulary_names(preset):
    path, vocabulary = preset
    model = pretrained.build_preset_text_classifier((), 2, preset=str(path), sequence_length=12)
    tokenize = model.get_layer("tokenize")
    ids = tokenize(np.array(["Great plot.", "the cast was dull"])).numpy()
    assert ids.shape == (2, 12) and ids.dtype == np.int32
    words = [[vocabulary[i] for i in row if i != tokenize.pad_id] for row in ids]
    assert words == [["[CLS]", "great", "plot", ".", "[SEP]"], ["[CLS]", "the", "cast", "was", "dull", "[SEP]"]]
    assert tokenize.vocabulary() == vocabulary
    assert "BertTokenizer" in tokenize.describe() and "12" in tokenize.describe()


def test_the_sequence_length_stops_at_what_the_encoder_was_trained_for(preset):
    path, _ = preset
    model = pretrained.build_preset_text_classifier((), 2, preset=str(path), sequence_length=500)
    assert model.get_layer("token_classifier").input.shape == (None, 64)


def test_a_saved_model_loads_in_a_process_that_never_imported_keras_hub(preset, tmp_path):
    path, _ = preset
    model = pretrained.build_preset_text_classifier((), 2, preset=str(path), sequence_length=12)
    model.save(tmp_path / "model.keras")
    expected = model.predict(np.array(["fun film"], dtype=object), verbose=0)
    script = ("import sys, numpy as np\nfrom models import pretrained\n"
              f"m = pretrained.load_model({str(tmp_path / 'model.keras')!r})\n"
              "assert 'keras_hub' in sys.modules\n"
              "print(repr(m.predict(np.array(['fun film'], dtype=object), verbose=0).tolist()))")
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    np.testing.assert_allclose(eval(out.stdout.strip().splitlines()[-1]), expected, atol=1e-6)


def test_an_unreachable_preset_is_one_line_that_says_what_it_needs():
    with pytest.raises(BuildError) as error:  # offline here: KerasHub's download fails at once
        pretrained.build_preset_text_classifier((), 2, preset="bert_tiny_en_uncased")
    message = str(error.value)
    assert "\n" not in message and message.startswith("init_from=bert_tiny_en_uncased: the KerasHub preset did "
                                                      "not load") and "network access" in message


@pytest.mark.parametrize("value, problem", [
    ("bert_tiny_en_uncased", None),
    ("kaggle://keras/bert/keras/bert_tiny_en_uncased/2", None),
    ("hf://google-bert/bert-base-uncased", None),
    ("bad name!", "is not a KerasHub preset handle"),
    (os.path.join("no", "such", "folder"), "does not exist"),
    (os.path.join(ROOT, "tests"), "without the config.json"),
    (os.path.join(ROOT, "setup.cfg"), "neither a .keras, a .weights.h5 nor a keras.applications .h5 file"),
])
def test_what_can_name_a_preset(value, problem):
    assert pretrained.is_preset(value)
    found = pretrained.preset_problem(value)
    assert (found is None) if problem is None else (problem in found)
    assert not pretrained.is_preset("runs/conv/model.keras") and not pretrained.is_preset("w.weights.h5")
