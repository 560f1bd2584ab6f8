"""A pretrained image backbone from KerasHub, fine-tuned as a classifier of your images (`--init_from=<preset>`):
MediaPipe Model Maker's image classifier on current Keras.

A preset (a name such as `mobilenet_v3_small_100_imagenet`, a `kaggle://` or `hf://` handle, or a folder
`save_to_preset` wrote) brings a backbone, its trained weights and its own image preprocessing (an ImageConverter:
the size it was trained at and its scaling). The model takes the data's pixels, 0..255, as every image model here:

    pixels → [augmentation, training only, --augment] → gray to RGB → the preset's ImageConverter (resize, scale)
           → backbone (its batch norm frozen: always in inference mode) → FineTuneGate → average pool → dropout → logits

Training runs in two phases (Model Maker's and keras-io's transfer-learning recipe): for the first `frozen_share`
of the run's epochs only the head learns; then the top `unfrozen_fraction` of the backbone's layers learns too, at
BACKBONE_RATE times the head's learning rate, the rest staying as pretrained. The phase is the FineTuneGate's
variable, set at each epoch's start by the FineTunePhase callback (pipelines/stages/train.py adds it for a model
that has a gate), so a resumed run continues in its phase; FineTuneAdam reads it: its steps on the backbone's
variables are scaled by BACKBONE_RATE × the gate, 0 while frozen. (Gradients reach the backbone in both phases, so
its Adam moments are warm when it starts to learn: zeroed gradients would leave them at 0, and Adam's bias
correction, far into training by then, would make its first steps several times the rate.)
"""

import os
import re
from typing import Any

import keras
from keras import layers, ops

from models import BuildError
from models.pretrained import failed_to_load, import_keras_hub
from pipelines.upstream.keras import variable_key

FROZEN_SHARE = 0.5        # the head alone learns for this share of the run's epochs …
UNFROZEN_FRACTION = 0.25  # … then this share of the backbone's layers (its top) learns too …
BACKBONE_RATE = 0.1       # … at this share of the head's learning rate


# keras.applications networks a weights file may hold (what its name says, compacted) → the constructor and
# whether it takes pixels 0..255 itself (its rescaling inside) or wants them in [-1, 1].
APPLICATIONS = {
    "mobilenetv3small": ("MobileNetV3Small", "pixels"),
    "mobilenetv3large": ("MobileNetV3Large", "pixels"),
    "mobilenetv2": ("MobileNetV2", "minus_one_to_one"),
    "efficientnetb0": ("EfficientNetB0", "pixels"),
    "efficientnetb1": ("EfficientNetB1", "pixels"),
    "efficientnetb2": ("EfficientNetB2", "pixels"),
}
SIZES = (96, 128, 160, 192, 224, 240, 260)  # a size in a weights file's name (else 224, the networks' default)


def is_application_weights(path: str) -> bool:
    """A keras.applications weights file (`mobilenet_v3_small…no_top.h5`), as Keras downloads them."""
    return path.endswith(".h5") and not path.endswith(".weights.h5")


def load_application(path: str) -> tuple[keras.Model, keras.Model]:
    """The keras.applications network the file's name names, without its top, loaded with the file's weights, and
    its preprocessing (resize to its size, its scaling), or a one-line BuildError."""
    name = os.path.basename(path).lower()
    compact = re.sub(r"[^a-z0-9]", "", name)
    found = [key for key in APPLICATIONS if key in compact]
    if not found:
        raise BuildError(f"init_from={path}", "the file's name names none of the keras.applications networks read "
                         f"here ({', '.join(c for c, _ in APPLICATIONS.values())}): name it as Keras does, "
                         "e.g. weights_mobilenet_v3_small_224_1.0_float_no_top_v2.h5")
    constructor, scaling = APPLICATIONS[found[0]]
    size = next((s for s in SIZES if re.search(rf"(^|[^0-9]){s}([^0-9]|$)", name)), 224)
    options = {"minimalistic": True} if "minimalistic" in name else {}
    alpha = re.search(r"_(0\.\d+|1\.0)(_|$)", name)
    if alpha and "mobilenet" in found[0]:
        options["alpha"] = float(alpha.group(1))
    try:
        backbone = getattr(keras.applications, constructor)(input_shape=(size, size, 3), include_top=False,
                                                            weights=path, **options)
    except Exception as e:  # a file of another network, or with its top
        raise BuildError(f"init_from={path}", f"{constructor} did not load it ({type(e).__name__}: "
                         f"{' '.join(str(e).split())[:160]}): give the network's no_top weights file") from None
    steps = [layers.Resizing(size, size, crop_to_aspect_ratio=True, name="resize")]
    if scaling == "minus_one_to_one":
        steps.append(layers.Rescaling(1 / 127.5, offset=-1.0, name="scale"))
    return backbone, keras.Sequential(steps, name=f"{constructor.lower()}_preprocessing")


def load_image_preset(preset: str) -> tuple[Any, Any]:
    """The preset's backbone and its ImageConverter, or a one-line BuildError (offline, a name fails within a
    second; a text preset is not an image model)."""
    keras_hub = import_keras_hub()
    try:
        backbone = keras_hub.models.Backbone.from_preset(preset)
        converter = keras_hub.layers.ImageConverter.from_preset(preset)
    except Exception as e:  # requests' ConnectionError, KerasHub's ValueError for a preset without an image converter
        raise failed_to_load(preset, e, "an image model with an ImageConverter") from None
    if len(backbone.output.shape) != 4:
        raise BuildError(f"init_from={preset}", f"its backbone outputs {tuple(backbone.output.shape)}, not a feature "
                                                "map: give an image backbone preset")
    return backbone, converter


@keras.saving.register_keras_serializable(package="dlpipe")
class FineTuneGate(layers.Layer):
    """The identity, holding the training phase: `open` is 0 while the backbone below it is frozen and 1 once its
    top learns (FineTuneAdam reads it). `frozen_share`: of the run's epochs, those before FineTunePhase opens it."""

    def __init__(self, frozen_share: float = FROZEN_SHARE, **kwargs):
        super().__init__(**kwargs)
        self.frozen_share = frozen_share

    def build(self, input_shape):
        self.open = self.add_weight(shape=(), initializer="zeros", trainable=False, name="open")

    def call(self, x):
        return x

    def get_config(self):
        return {**super().get_config(), "frozen_share": self.frozen_share}


class FineTunePhase(keras.callbacks.Callback):
    """At each epoch's start, opens every FineTuneGate of the model whose epoch has come (its share of the fit's
    epochs is over) and keeps the others shut, printing each switch."""

    def on_epoch_begin(self, epoch, logs=None):
        for gate in gates(self.model):
            is_open = epoch >= max(1, int(self.params["epochs"] * gate.frozen_share))
            if bool(ops.convert_to_numpy(gate.open)) != is_open:
                gate.open.assign(float(is_open))
                print(f"epoch {epoch + 1}: the backbone's top layers {'learn' if is_open else 'stay frozen'}"
                      " from here", flush=True)

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:  # history.json shows the phase of every epoch: 0 frozen, 1 the top learning
            logs["fine_tune_phase"] = float(max(float(ops.convert_to_numpy(g.open)) for g in gates(self.model)))


def gates(model: keras.Model) -> list[FineTuneGate]:
    return [layer for layer in model.layers if isinstance(layer, FineTuneGate)]


@keras.saving.register_keras_serializable(package="dlpipe")
class FineTuneAdam(keras.optimizers.Adam):
    """Adam whose steps on a backbone's variables are BACKBONE_RATE × the gate's phase times the rate (0 while
    frozen); `attach` names the model whose gate and backbone they are."""

    def __init__(self, *args, backbone_rate: float = BACKBONE_RATE, **kwargs):
        super().__init__(*args, **kwargs)
        self.backbone_rate = backbone_rate
        self.backbone_keys, self.phase = frozenset(), None

    def attach(self, model: keras.Model) -> "FineTuneAdam":
        (gate,) = gates(model)
        self.phase = gate.open
        # The optimizer's own key of a variable (what its update_step is handed is the backend's variable, which
        # Keras' base class, as every custom optimizer's update_step, looks its slots up by): a private method, fenced.
        self.backbone_keys = frozenset(variable_key(self, v) for layer in model.layers if isinstance(layer, keras.Model)
                                       for v in layer.trainable_variables)
        return self

    def update_step(self, gradient, variable, learning_rate):
        if variable_key(self, variable) in self.backbone_keys:
            learning_rate = learning_rate * self.backbone_rate * ops.cast(self.phase, "float32")
        super().update_step(gradient, variable, learning_rate)

    def get_config(self):
        return {**super().get_config(), "backbone_rate": self.backbone_rate}


def _every_layer(layer) -> list:
    """The layer and those inside it, at any depth (a backbone's blocks may be models of their own)."""
    return [layer] + [inner for child in getattr(layer, "layers", []) for inner in _every_layer(child)]


def build_preset_image_classifier(input_shape, num_classes: int, *, preset: str, dropout: float = 0.1,
                                  augment: str = "none", frozen_share: float = FROZEN_SHARE,
                                  unfrozen_fraction: float = UNFROZEN_FRACTION) -> keras.Model:
    """Pixels [H, W, C] 0..255 → logits; the preset (or a keras.applications weights file) fixes the backbone and
    its preprocessing."""
    backbone, converter = load_application(preset) if is_application_weights(preset) else load_image_preset(preset)
    weighted = [layer for layer in backbone.layers if layer.weights]
    for layer in weighted[:len(weighted) - round(len(weighted) * unfrozen_fraction)]:
        layer.trainable = False  # the lower part stays as pretrained
    for layer in _every_layer(backbone):  # batch norm keeps its pretrained statistics, in inference mode
        if isinstance(layer, layers.BatchNormalization):
            layer.trainable = False
    pixels = keras.Input(shape=tuple(input_shape), name="pixels")
    x = pixels
    if augment != "none":
        x = layers.RandomFlip("horizontal", name="random_flip")(x)
    if augment == "flip_translate":
        x = layers.RandomTranslation(0.1, 0.1, fill_mode="reflect", name="random_translation")(x)
    if input_shape[-1] == 1:
        x = layers.Concatenate(name="gray_to_rgb")([x, x, x])
    x = converter(x)
    features = backbone(x)
    x = FineTuneGate(frozen_share, name="fine_tune_gate")(features)
    x = layers.GlobalAveragePooling2D(name="pool")(x)
    x = layers.Dropout(dropout, name="head_dropout")(x)
    logits = layers.Dense(num_classes, name="logits")(x)
    return keras.Model(pixels, logits, name="pretrained_image_classifier")
