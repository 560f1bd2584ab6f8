"""--init_from: training starts from an earlier model's weights (every family's `initialize` unless it declares
its own), layer by layer where the names and shapes match, so a model for other classes keeps the body and starts
its head fresh: fine-tuning on another data set."""

import keras

from models import pretrained
from pipelines.errors import PipelineError


def _units(model: keras.Model) -> dict[str, keras.layers.Layer]:
    """The model's weighted layers by path: a nested model is entered (a text model's token_classifier), any other
    layer is one unit with all its weights (attention's projections inside it stay its own)."""
    units = {}
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            units.update({f"{layer.name}/{name}": unit for name, unit in _units(layer).items()})
        elif layer.weights:
            units[layer.name] = layer
    return units


def initialize_by_layer(model: keras.Model, path: str) -> str:
    """--init_from: the saved model's weights, layer by layer where the names and shapes match; the others (a head
    for another number of classes) keep their fresh initialisation. Returns what was loaded, for the log."""
    try:
        if path.endswith(".weights.h5"):  # no layer names to match: Keras' own loading, by structure
            model.load_weights(path, skip_mismatch=True)
            return f"weights from {path}, where their shapes fit"
        source = pretrained.load_model(path)
    except Exception as e:  # Keras raises ValueError, OSError, zipfile errors … for what it cannot read
        raise PipelineError(f"cannot load --init_from={path} ({type(e).__name__}): give the model.keras of an "
                            "earlier run") from None
    theirs, loaded, fresh = _units(source), [], []
    for name, layer in _units(model).items():
        other = theirs.get(name)
        if other is not None and [w.shape for w in other.weights] == [w.shape for w in layer.weights]:
            layer.set_weights(other.get_weights())
            loaded.append(name)
        else:
            fresh.append(name)
    if not loaded:
        raise PipelineError(f"no layer of {path} fits the {model.name} model (none has the same name and shapes): "
                            "--init_from takes a model of the same task")
    return (f"initialised {len(loaded)} of {len(loaded) + len(fresh)} layers from {path}"
            + (f"; starting fresh: {', '.join(fresh)}" if fresh else ""))
