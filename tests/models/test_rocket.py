"""MiniRocket in Keras (models/rocket.py): its features against the paper's algorithm written here in plain NumPy
loops, its dilations and biases as the paper sets them, and a deterministic closed-form fit that classifies."""

import itertools

import keras
import numpy as np
import pytest

from models import rocket
from tests import series as made


def paper_features(x: np.ndarray, biases: list, dilations, per, masks) -> np.ndarray:
    """Dempster et al. 2021's transform for one z-normalised series [steps, channels], loop by loop: each of the
    84 kernels (−1 everywhere, 2 at three of nine positions) at each dilation, zero padding; the PPV over every
    step for kernels with even (dilation index + kernel index), over the unpadded steps otherwise."""
    steps = len(x)
    x = np.round(x / rocket.GRID) * rocket.GRID  # the layer's grid (the paper's series are already on one)
    out = []
    for d, dilation in enumerate(dilations):
        pad = 4 * dilation
        for j, twos in enumerate(itertools.combinations(range(9), 3)):
            weights = [2.0 if k in twos else -1.0 for k in range(9)]
            c = np.zeros(steps)
            for t in range(steps):
                for k in range(9):
                    at = t + (k - 4) * dilation
                    if 0 <= at < steps:
                        c[t] += weights[k] * x[at][masks[d][:, j] > 0].sum()
            window = c if (d + j) % 2 == 0 else c[pad:steps - pad]
            out += [np.mean(window > b) if len(window) else 0.0 for b in biases[d][j][:per[d]]]
    return np.array(out)


@pytest.mark.parametrize("channels,each", [(1, True), (3, True), (1, False), (3, False)])
def test_the_keras_features_are_the_papers(channels, each):
    """Each series standardised by itself (on GRID), or the raw series on its lattice (in units, the biases
    snapped to half-units): the paper's features of the series the layer reads."""
    rng = np.random.default_rng(0)
    train = (rng.normal(size=(8, 40, channels)) * 3 + 5).astype(np.float32)
    model = rocket.build_rocket_classifier((40, channels), 2, num_features=840,
                                           series_scale={"classify": True, "each": each, "mean": [5.0] * channels,
                                                         "std": [3.0] * channels, "low": float(train.min()),
                                                         "high": float(train.max())})
    layer = model.get_layer(rocket.FEATURES)
    normalized = keras.Model(model.inputs, layer.input).predict(train, verbose=0)
    normalized = layer.in_units(normalized) if layer.unit else normalized
    on_lattice = not each and channels == 1  # several channels keep a scale each
    assert bool(layer.unit) == on_lattice and (not on_lattice or np.array_equal(normalized, np.round(normalized)))
    layer.set_weights(layer.snapped(rocket.fit_biases(normalized, 40, 840)))
    found = keras.Model(model.inputs, layer.output).predict(train[:3], verbose=0)
    for i in range(3):
        expected = paper_features(normalized[i], layer.get_weights(), layer.dilations, layer.per, layer.masks)
        np.testing.assert_allclose(found[i], expected, atol=1e-6)
    assert found.shape == (3, layer.feature_count) and layer.feature_count == 84 * 10


def test_dilations_and_quantiles_follow_the_paper():
    dilations, per = rocket.dilations(150)
    assert dilations[0] == 1 and dilations[-1] <= (150 - 1) / 8 and np.all(np.diff(dilations) > 0)
    assert per.sum() == 10_000 // 84  # 119 biases a kernel, 9,996 features
    assert np.allclose(rocket.quantiles(3), [(k * (1 + 5 ** 0.5) / 2) % 1 for k in (1, 2, 3)])
    assert rocket.dilations(12)[0].tolist() == [1]  # a short series: one dilation, every bias on it


def test_the_fit_classifies_shapes_the_same_way_every_time():
    values, labels = made.shapes(150, steps=60, seed=3)
    classes = sorted(set(labels))
    x = values[..., None].astype(np.float32)
    y = np.array([classes.index(label) for label in labels])
    weights = []
    scale = {"classify": True, "each": True, "mean": [0.0], "std": [1.0]}
    for _ in range(2):
        model = rocket.build_rocket_classifier((60, 1), 3, series_scale=scale)
        fitted = rocket.fit(model, [(x[:100], y[:100])])
        weights.append(model.get_weights())
        accuracy = np.mean(np.argmax(model.predict(x[100:], verbose=0), 1) == y[100:])
        assert accuracy >= 0.9 and fitted["examples"] == 100 and fitted["alpha"] in rocket.ALPHAS
    for a, b in zip(*weights):
        np.testing.assert_array_equal(a, b)


def test_a_forecast_is_not_what_the_rocket_builds():
    from models import BuildError
    with pytest.raises(BuildError, match="rocket classifies sequences"):
        rocket.build_rocket_classifier((24, 1), 12, series_scale={"mean": [0.0], "std": [1.0]})


def test_the_head_is_split_into_two_kernels_each_held_by_8_bits_that_add_up_to_the_ridges():
    kernel = np.random.default_rng(0).normal(size=(500, 3)) * np.logspace(-4, 1, 500)[:, None]  # weights that span
    coarse, rest = rocket.split_kernel(kernel)
    np.testing.assert_array_equal(coarse + rest, kernel)
    step = np.abs(coarse).max(axis=0) / 127  # per class, 8-bit symmetric steps of its largest weight: exact
    np.testing.assert_allclose(coarse / step, np.round(coarse / step), atol=1e-6)
    one_kernel = np.round(kernel / (np.abs(kernel).max(0) / 127)) * (np.abs(kernel).max(0) / 127)
    step = np.abs(rest).max(axis=0) / 127
    two_kernels = coarse + np.round(rest / step) * step
    assert np.abs(two_kernels - kernel).max() < np.abs(one_kernel - kernel).max() / 100


def _fitted_shapes(steps: int = 40, num_features: int = rocket.NUM_FEATURES):
    values, labels = made.shapes(60, steps=steps, seed=3)
    classes = sorted(set(labels))
    x = values[..., None].astype(np.float32)
    model = rocket.build_rocket_classifier((steps, 1), 3, num_features=num_features,
                                           series_scale={"classify": True, "each": True})
    rocket.fit(model, [(x, np.array([classes.index(label) for label in labels]))])
    return model, x


def test_the_int8_form_drops_the_grid_saturates_and_keeps_every_weight():
    from pipelines.shipping import for_int8
    model, x = _fitted_shapes()
    int8 = for_int8(model)
    layer, int8_layer = model.get_layer(rocket.FEATURES), int8.get_layer(rocket.FEATURES)
    assert layer.grid and not layer.saturate and int8_layer.saturate and not int8_layer.grid
    for a, b in zip(model.get_weights(), int8.get_weights()):
        np.testing.assert_array_equal(a, b)
    # Off the grid by at most 2^-11 a value, the features move only where an output sits within that of a bias.
    assert np.mean(np.argmax(model.predict(x, verbose=0), 1) == np.argmax(int8.predict(x, verbose=0), 1)) >= 0.95
    # Saturated, the same features as the plain form without the grid (in float, a sign flips only within
    # float rounding of a bias).
    plain = rocket.MiniRocket.from_config({**layer.get_config(), "grid": False})
    plain.build(None)
    plain.set_weights(layer.get_weights())
    normalized = keras.Model(model.inputs, layer.input).predict(x, verbose=0)
    assert np.mean(plain(normalized).numpy() != int8_layer(normalized).numpy()) < 1e-4


@pytest.mark.parametrize("channels", [1, 3])
def test_the_kernels_are_exact_in_8_bits_per_channel(channels):
    """A quantized convolution's weights are 127 symmetric steps of each output channel's largest: with the zero
    channel's weight, −1 and 2 are whole steps (−63, 126), so the 8-bit kernels still sum to zero (the dynamic-range
    file's, the int8 file's)."""
    layer, int8 = rocket.MiniRocket(40, channels, 840), rocket.MiniRocket(40, channels, 840, saturate=True)
    assert layer.zero_channel == (channels > 1) and int8.zero_channel  # a univariate kernel stays float (756)
    for d in range(len(layer.dilations)):
        if layer.zero_channel:
            steps = layer._kernel(d) / (np.abs(layer._kernel(d)).max(axis=(0, 1)) / 127)
            np.testing.assert_allclose(steps, np.round(steps), atol=1e-4)
        kernel = int8._kernel(d, int(int8.per[d]))  # [9, channels + 1, 84 · biases]: the int8 form's
        steps = kernel / (np.abs(kernel).max(axis=(0, 1)) / 127)
        np.testing.assert_allclose(steps, np.round(steps), atol=1e-4)
        np.testing.assert_allclose(kernel[:, :-1].sum(axis=(0, 1)), 0, atol=1e-3)


def test_the_int8_file_holds_which_side_of_its_bias_each_output_is_better_than_the_plain_form(tmp_path):
    """Each form of the features alone converted to an int8 file as export does, fed series that 8 bits hold
    exactly (multiples of 1/32 from −4 to 127/32, the calibrated range): the saturated form's features are the
    paper's within one 8-bit step of their mean (1/255), where the plain form's 8-bit outputs and biases move them
    more."""
    from ai_edge_litert.interpreter import Interpreter

    from pipelines.exporters import convert_tflite
    x = np.random.default_rng(0).integers(-128, 128, (40, 40, 1)).astype(np.float32) / 32
    x[0, :2, 0] = -4.0, 127 / 32
    config = {"steps": 40, "channels": 1, "num_features": 840, "grid": False}
    # Biases halfway between two of the outputs' values (multiples of 1/32): no output is within rounding of one.
    biases = [np.round(b * 32) / 32 + 1 / 64 for b in rocket.fit_biases(x, 40, 840)]
    largest = {}
    for form in ("plain", "saturated"):
        window = keras.Input((40, 1), name="window")
        layer = rocket.MiniRocket(**config, saturate=form == "saturated", name=rocket.FEATURES)
        model = keras.Model(window, layer(window))
        layer.set_weights(biases)
        model.export(str(tmp_path / form), verbose=False)
        representative = [{"window": x[i:i + 1]} for i in range(len(x))]
        runner = Interpreter(model_content=convert_tflite(str(tmp_path / form), "int8", representative,
                                                          ("float32", "float32"))).get_signature_runner()
        found = np.concatenate([next(iter(runner(window=x[i:i + 1]).values())) for i in range(len(x))])
        largest[form] = np.abs(found - rocket.features(x, biases, 840)).max()
    assert largest["saturated"] <= 1 / 255 + 1e-6 < largest["plain"] / 2, largest


@pytest.mark.parametrize("low,high", [(-1.35, 12.43), (0.0, 1e6), (-3e-3, 1e-3), (5.0, 9.0), (0.0, 0.0)])
def test_the_lattice_holds_the_train_range_in_8_bits_and_its_reciprocal_in_float16(low, high):
    unit, zero_point = rocket.lattice(low, high)
    reciprocal = np.float32(1 / unit)  # what every file multiplies by
    assert float(np.float16(reciprocal)) == float(reciprocal) and abs(float(reciprocal) * unit - 1) < 1e-12
    assert -128 <= zero_point <= 127 and isinstance(zero_point, int)
    low, high = min(low, 0.0), max(high, 0.0)
    assert (-128 - zero_point) * unit <= low and (127 - zero_point) * unit >= high
    assert high == low or (high - low) / unit > 253  # the finest: every 8-bit level but one or two used
    # An integer-valued series: at most one of the lattice's integers lands half-way between two units.
    integers = np.arange(np.ceil((-128 - zero_point) * unit), np.floor((127 - zero_point) * unit) + 1)
    assert np.sum((integers * float(reciprocal)) % 1 == 0.5) <= 1


def float16_and_int8(model: keras.Model, layer, x: np.ndarray, folder) -> dict:
    """The model's float16 and int8 files in LiteRT (exported.TFLiteModel), the int8 file calibrated as export
    calibrates it: on the series as its app gives them (`int8_input`), widened to the lattice's range."""
    from pipelines.exported import TFLiteModel
    from pipelines.exporters import convert_tflite
    from pipelines.shipping import for_int8, with_range
    model.export(str(folder / "plain"), verbose=False)
    for_int8(model).export(str(folder / "int8"), verbose=False)
    widened = with_range(*layer.input_range)({"window": layer.int8_input(x)})["window"]
    files = {"float16": convert_tflite(str(folder / "plain"), "float16"),
             "int8": convert_tflite(str(folder / "int8"), "int8", [{"window": w[None]} for w in widened],
                                    ("int8", "float32"))}
    for name, flatbuffer in files.items():
        (folder / f"{name}.tflite").write_bytes(flatbuffer)
    return {name: TFLiteModel(str(folder / f"{name}.tflite")) for name in files}


def test_on_its_lattice_every_file_computes_the_features_keras_does(tmp_path):
    """Spikes over long quiet stretches, as ACSF1's appliances draw power: one 8-bit scale for every series rounds
    the quiet stretches' detail away, which the features of series scaled in float (and rounded only by the int8
    file's input) depend on (ACSF1's int8 file agreed with Keras on 74–80% of test series). On the lattice the
    model computes on what the int8 file's input holds: its calibrated scale and zero point are the lattice's, an
    app's quantization of a raw series is the layer's rounding, and the int8 file's features are Keras' within one
    8-bit step of their mean (1/255); the float16 file's are Keras' (its reciprocal is float16's: every
    comparison the same)."""
    from pipelines.shipping import with_range
    rng = np.random.default_rng(0)
    x = (rng.normal(size=(40, 60, 1)) * 0.05 + 1.7).astype(np.float32)
    x[::3, 20:26] += 9.0
    unit, zero_point = rocket.lattice(x.min(), x.max())
    window = keras.Input((60, 1), name="window")
    layer = rocket.MiniRocket(60, 1, 840, unit=unit, zero_point=zero_point, center=round(float(x.mean()) / unit),
                              name=rocket.FEATURES)
    model = keras.Model(window, layer(window))
    layer.set_weights(layer.snapped(rocket.fit_biases(layer.in_units(x), 60, 840)))
    expected = model.predict(x, verbose=0)
    np.testing.assert_array_equal(expected, rocket.features(layer.in_units(x), layer.get_weights(), 840))
    widened = with_range(*layer.input_range)({"window": x})["window"]
    assert widened[0].min() == layer.input_range[0] and widened[0].max() == layer.input_range[1]
    clients = float16_and_int8(model, layer, x, tmp_path)
    found = {name: client({"window": x}) for name, client in clients.items()}
    scale, zero = clients["int8"].inputs["window"]["quantization"]
    assert zero == zero_point and abs(scale / unit - 1) < 1e-6
    np.testing.assert_allclose(found["float16"], expected, atol=1e-6)  # the same counts (a mean's rounding apart)
    assert np.abs(found["int8"] - expected).max() <= 1 / 255 + 1e-6
    # Off the lattice (the series rounded by the int8 file alone), its features would move by far more.
    off = rocket.features((x - x.mean()) / unit, layer.get_weights(), 840)
    assert np.abs(off - expected).max() > 10 / 255


def test_a_shorter_series_is_computed_on_its_own_steps_in_every_file(tmp_path):
    """Series of different lengths, NaN past their end (the archive's variable-length sets): each one's features
    are the paper's on its own steps (not on a flat tail), in Keras; a finite value below the train range is a
    value (clipped), not missing; the int8 file, whose app writes the lowest code past a series' end
    (`int8_input`), computes them within two 8-bit steps on average, and the float16 file the same counts."""
    rng = np.random.default_rng(0)
    x = np.cumsum(rng.normal(size=(30, 60, 1)), axis=1).astype(np.float32)
    lengths = rng.integers(3, 61, len(x))
    lengths[:2] = 60, 3
    for i, length in enumerate(lengths):
        x[i, length:] = np.nan
    held = x[~np.isnan(x)]
    model = rocket.build_rocket_classifier((60, 1), 2, num_features=840, series_scale={
        "classify": True, "mean": [float(held.mean())], "std": [1.0], "low": float(held.min()),
        "high": float(held.max()), "masked": True})
    layer = model.get_layer(rocket.FEATURES)
    units, valid = layer.in_units(x), layer.valid_steps(x)
    np.testing.assert_array_equal(valid.sum(axis=1), lengths)
    assert layer.masked and layer._unit_range[0] == -127 - layer.zero_point  # −128 is kept for the missing
    layer.set_weights(layer.snapped(rocket.fit_biases(units, 60, 840, valid=valid)))
    features = keras.Model(model.inputs, layer.output)
    expected = features.predict(x, verbose=0)
    for i in (0, 1, 2, 3):
        own = paper_features(units[i, :lengths[i]], layer.get_weights(), layer.dilations, layer.per, layer.masks)
        np.testing.assert_allclose(expected[i], own, atol=1e-6)
    low = x[:1].copy()
    low[0, 10] = np.nanmin(x) - 50 * layer.unit  # far below the train range, inside the series
    clipped = low.copy()
    clipped[0, 10] = (-127 - layer.zero_point) * layer.unit
    assert layer.valid_steps(low)[0, 10] and layer.in_units(low)[0, 10, 0] == layer.in_units(clipped)[0, 10, 0]
    np.testing.assert_array_equal(features.predict(low, verbose=0), features.predict(clipped, verbose=0))
    assert layer.int8_input(low)[0, 10, 0] == np.float32(clipped[0, 10, 0])
    flat = np.where(valid[..., None], units, units[np.arange(len(x)), lengths - 1][:, None])
    assert np.abs(rocket.features(flat, layer.get_weights(), 840) - expected).max() > 0.2  # a flat tail differs
    # An app gives the int8 file the lowest code past a series' end (the shipment's `to_quantizable_inputs`).
    found = {name: client({"window": layer.int8_input(x) if name == "int8" else x})
             for name, client in float16_and_int8(features, layer, x, tmp_path).items()}
    np.testing.assert_allclose(found["float16"], expected, atol=1e-6)
    # A share of a series' steps is a quotient of two 8-bit means there: a few steps (an unpadded kernel on a short
    # series) make it coarse, their mean stays within two 8-bit steps.
    error = np.abs(found["int8"] - expected)
    assert error.mean(axis=1).max() <= 2 / 255 and error.max() <= 0.06, (error.mean(axis=1), error.max())
