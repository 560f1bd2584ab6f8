"""A shipped file opened as an app opens it, behind one interface (ExportedModel): a TFLite file in the LiteRT
interpreter (ai-edge-litert, builtin ops, no Flex delegate: what a phone runs); each export target (exporters.py)
names the client that opens its files. Every client takes a batch of named inputs in real values (an integer input
is quantized with the file's own scale and zero point, as an app does) and returns the output in real values; each
says how its inputs are quantized and what is wrong with its metadata, if anything. Verify measures through it,
and dlpipe-predict predicts through it; the Keras model itself is called the same way (keras_predict).
"""

from typing import Protocol

import numpy as np

from pipelines import metadata

Batch = dict[str, np.ndarray]  # a batch of model inputs, keyed by input name
# Examples run through a model at once: a file's activations for a 224-pixel backbone take megabytes an example
# (LiteRT allocates every intermediate tensor for the batch it is resized to: 1,024 EfficientNet-B0 inputs took
# 19 GB), so memory is bounded by this and not by how many examples are asked about.
CHUNK = 64


def in_chunks(run, batch: Batch) -> np.ndarray:
    """run(part) on CHUNK examples of the batch at a time, the outputs joined."""
    count = len(next(iter(batch.values())))
    return np.concatenate([run({name: value[begin:begin + CHUNK] for name, value in batch.items()})
                           for begin in range(0, count, CHUNK)]) if count else run(batch)


# Outputs a file may give beside its answer, by name: a forecast's interval bounds (forecaster.with_bounds). Every
# client returns the answer (its one other output); `named` returns every output by name.
BESIDE = ("lower", "upper")


def answer_of(outputs: dict):
    """The answer among outputs by name: the only one, or the one not BESIDE it."""
    if len(outputs) == 1:
        return next(iter(outputs.values()))
    (value,) = [value for name, value in outputs.items() if name not in BESIDE]
    return value


def named_in_chunks(run, batch: Batch) -> dict[str, np.ndarray]:
    """run(part) → outputs by name, on CHUNK examples at a time, each output joined."""
    count = len(next(iter(batch.values())))
    parts = [run({name: value[begin:begin + CHUNK] for name, value in batch.items()})
             for begin in range(0, max(count, 1), CHUNK)]
    return {name: np.concatenate([part[name] for part in parts]) for name in parts[0]}


def softmax(logits: np.ndarray) -> np.ndarray:
    """Probabilities from logits, along the last axis (what a classifier's files output, and dlpipe-serve answers)."""
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


def _keras_outputs(model, batch: Batch):
    """Keras' predict on a batch, CHUNK examples at a time: its output, or its outputs by name."""
    import tensorflow as tf  # through tf.data: Keras' predict cannot take NumPy string (object) arrays, text inputs
    inputs = batch if len(batch) > 1 else next(iter(batch.values()))
    return model.predict(tf.data.Dataset.from_tensor_slices(inputs).batch(CHUNK), verbose=0)


def keras_predict(model, batch: Batch) -> np.ndarray:
    """The Keras model itself on a batch, as the reference the exported files are held to."""
    return _keras_outputs(model, batch).astype(np.float64)


def keras_named(model, batch: Batch) -> dict[str, np.ndarray]:
    """A Keras model of outputs by name (a forecaster with its bounds) on a batch: each output by name."""
    return {name: np.asarray(value, np.float64) for name, value in _keras_outputs(model, batch).items()}


class ExportedModel(Protocol):
    inputs: dict    # input name → what the file says of it
    outputs: list   # output names

    def __call__(self, batch: Batch) -> np.ndarray: ...  # the answer (answer_of)

    def named(self, batch: Batch) -> dict[str, np.ndarray]: ...  # every output by name

    def input_quantization(self) -> dict: ...

    def metadata_problem(self, packed: dict[str, bytes]) -> str | None: ...


class TFLiteModel:
    """One TFLite file behind its serving_default signature, taking and returning real (dequantized) values."""

    def __init__(self, path: str):
        from ai_edge_litert.interpreter import Interpreter
        self.path = path
        self.runner = Interpreter(model_path=path).get_signature_runner("serving_default")
        self.inputs, self.outputs = self.runner.get_input_details(), list(self.runner.get_output_details())
        self._output_details = self.runner.get_output_details()

    @staticmethod
    def _scale(detail) -> tuple[float, int]:
        scale, zero_point = detail["quantization"]
        return (scale, zero_point) if detail["dtype"] in (np.int8, np.uint8) and scale else (0.0, 0)

    def __call__(self, batch: Batch) -> np.ndarray:
        return in_chunks(lambda part: answer_of(self._run(part)), batch)

    def named(self, batch: Batch) -> dict[str, np.ndarray]:
        return named_in_chunks(self._run, batch)

    def _run(self, batch: Batch) -> dict[str, np.ndarray]:
        feed = {}
        for name, value in batch.items():
            scale, zero_point = self._scale(self.inputs[name])
            if scale:  # an integer input: quantize with the file's own parameters, as an app would
                info = np.iinfo(self.inputs[name]["dtype"])
                value = np.clip(np.round(value / scale + zero_point), info.min, info.max)
            feed[name] = np.asarray(value).astype(self.inputs[name]["dtype"])
        outputs = {}
        for name, value in self.runner(**feed).items():
            scale, zero_point = self._scale(self._output_details[name])
            outputs[name] = (value.astype(np.float64) - zero_point) * scale if scale else value.astype(np.float64)
        return outputs

    def input_quantization(self) -> dict:
        return {name: {"dtype": np.dtype(d["dtype"]).name, "scale": float(d["quantization"][0]),
                       "zero_point": int(d["quantization"][1])} for name, d in self.inputs.items()}

    def metadata_problem(self, packed: dict[str, bytes]) -> str | None:
        """The metadata read back with the schema: every input and output described, and the packed files the same
        as those beside it (labels.txt, vocab.txt). None when nothing is wrong."""
        with open(self.path, "rb") as f:
            try:
                info, files = metadata.read_metadata(f.read())
            except ValueError as e:
                return str(e)
        (subgraph,) = info.subgraphMetadata
        described = sorted(t.name.decode() for t in subgraph.inputTensorMetadata + subgraph.outputTensorMetadata)
        tensors = sorted([*self.inputs, *self.outputs])
        if described != tensors:
            return f"its metadata describes {described}, the file has {tensors}"
        if files != packed:
            return f"its packed files {sorted(files)} differ from {sorted(packed)} beside it"
        return None
