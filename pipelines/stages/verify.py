"""Verify stage: every export loaded back and measured against the Keras model it came from.

The SavedModel through `tf.saved_model.load`, each TFLite variant in the LiteRT interpreter (ai-edge-litert) as a
phone runs it (builtin ops, no Flex delegate), model.onnx in ONNX Runtime. For each: parity with Keras, accuracy
on the test split (classifiers), file size, single-example latency, and the metadata read back. Written to
export_report.json and export_report.md; the stage fails when an export misses its limit (see Serving.limits).
"""

import dataclasses
import os
import statistics
import time

import numpy as np
import tensorflow as tf
from ai_edge_litert.interpreter import Interpreter

from pipelines import artifacts, console, metadata
from pipelines.context import Context
from pipelines.errors import PipelineError
from pipelines.serving import Batch, Serving, as_batch, softmax

PARITY_EXAMPLES = 1024   # the batch every export is compared on; at least 256 are required
LATENCY_RUNS, WARMUP_RUNS = 100, 10
# An example whose top class leads the next by less than this (in Keras' probabilities) is a near-tie: any
# rounding may flip it. A model with few clear examples is undertrained, and its quantized variants' misses on
# near-ties are noise, not a broken export.
CLEAR_MARGIN = 0.1
UNDERTRAINED_CLEAR_FRACTION = 0.8


def only_value(outputs: dict) -> np.ndarray:
    (value,) = outputs.values()
    return np.asarray(value)


class TFLiteModel:
    """One TFLite file behind its serving_default signature, taking and returning real (dequantized) values."""

    def __init__(self, path: str):
        self.runner = Interpreter(model_path=path).get_signature_runner("serving_default")
        self.inputs, self.outputs = self.runner.get_input_details(), self.runner.get_output_details()

    @staticmethod
    def _scale(detail) -> tuple[float, int]:
        scale, zero_point = detail["quantization"]
        return (scale, zero_point) if detail["dtype"] in (np.int8, np.uint8) and scale else (0.0, 0)

    def __call__(self, batch: Batch) -> np.ndarray:
        feed = {}
        for name, value in batch.items():
            scale, zero_point = self._scale(self.inputs[name])
            if scale:  # an integer input: quantize with the file's own parameters, as an app would
                info = np.iinfo(self.inputs[name]["dtype"])
                value = np.clip(np.round(value / scale + zero_point), info.min, info.max)
            feed[name] = np.asarray(value).astype(self.inputs[name]["dtype"])
        (name, value), = self.runner(**feed).items()
        scale, zero_point = self._scale(self.outputs[name])
        return (value.astype(np.float64) - zero_point) * scale if scale else value.astype(np.float64)

    def input_quantization(self) -> dict:
        return {name: {"dtype": np.dtype(d["dtype"]).name, "scale": float(d["quantization"][0]),
                       "zero_point": int(d["quantization"][1])} for name, d in self.inputs.items()}


class OnnxModel:
    """model.onnx in ONNX Runtime's CPU provider, fed and read like a TFLite file."""
    TYPES = {"tensor(uint8)": np.uint8, "tensor(float)": np.float32, "tensor(int64)": np.int64,
             "tensor(int32)": np.int32}

    def __init__(self, path: str):
        import onnxruntime  # only verify needs it
        self.session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
        self.inputs = {i.name: self.TYPES[i.type] for i in self.session.get_inputs()}
        self.outputs = [o.name for o in self.session.get_outputs()]

    def __call__(self, batch: Batch) -> np.ndarray:
        (value,) = self.session.run(None, {name: np.asarray(batch[name]).astype(dtype)
                                           for name, dtype in self.inputs.items()})
        return value.astype(np.float64)

    def metadata(self) -> dict[str, str]:
        return dict(self.session.get_modelmeta().custom_metadata_map)


def median_ms(call, runs: int) -> float:
    for _ in range(WARMUP_RUNS):
        call()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def keras_predict(model, batch: Batch) -> np.ndarray:
    # Through tf.data: Keras' predict cannot take NumPy string (object) arrays, a text model's input.
    inputs = batch if len(batch) > 1 else next(iter(batch.values()))
    return model.predict(tf.data.Dataset.from_tensor_slices(inputs).batch(256), verbose=0).astype(np.float64)


def first(batch: Batch, n: int) -> Batch:
    return {name: value[:n] for name, value in batch.items()}


def measure(outputs: np.ndarray, expected: np.ndarray) -> dict:
    diff = np.abs(outputs - expected)
    return {"max_abs_diff": float(diff.max()), "mean_abs_diff": float(diff.mean()),
            "max_rel_diff": float(diff.max() / max(float(np.abs(expected).max()), 1e-12))}


def allowed_misses(examples: int, bound: float) -> int:
    """The most disagreements a file that agrees with Keras on exactly `bound` of all inputs shows on `examples` of
    them 95 times in 100 (the binomial distribution's 95th percentile): an agreement limit judged on 150 inputs then
    means what it means on 10,000. Fewer is a pass: a 99% limit allows 3 misses in 100, 4 in 178, 16 in 1,024."""
    from scipy.stats import binom
    return int(binom.ppf(0.95, examples, 1.0 - bound))


def passes(measures: dict, limit: tuple[str, float]) -> bool:
    name, bound = limit
    if name == "top1_agreement":
        examples = measures["agreement_examples"]
        return round((1 - measures[name]) * examples) <= allowed_misses(examples, bound)
    return measures[name] <= bound


@dataclasses.dataclass(frozen=True)
class Reference:
    """What every export is measured against: the Keras model's outputs on the judged inputs (the test split's,
    topped up with validation and train inputs when it is small), the test labels, and (classifiers) its classes."""
    parity: Batch                      # the first PARITY_EXAMPLES judged inputs: every export's differences
    outputs: np.ndarray                # the Keras model's outputs for them
    batches: list[Batch]               # every judged input, test examples first; empty for a generator
    all_outputs: np.ndarray | None = None  # the Keras model's outputs for all of them
    labels: np.ndarray | None = None   # the test examples' labels: the first len(labels) judged inputs
    classes: np.ndarray | None = None  # the Keras model's class for each judged input
    clear: np.ndarray | None = None    # whether the Keras model's top class leads by CLEAR_MARGIN or more

    @property
    def tested(self) -> int:
        return 0 if self.labels is None else len(self.labels)

    @property
    def accuracy(self) -> float:
        return float(np.mean(self.classes[:self.tested] == self.labels))

    @property
    def rmse(self) -> float:
        return rmse(self.all_outputs[:self.tested], self.labels)

    @property
    def undertrained(self) -> bool:
        return self.clear is not None and float(np.mean(self.clear)) < UNDERTRAINED_CLEAR_FRACTION


def judged_batches(model, inputs) -> tuple[list[Batch], np.ndarray]:
    """The test split's input batches and labels, then validation and train inputs (labels unused) until there are
    PARITY_EXAMPLES: agreement with Keras needs inputs, not labels, and a few dozen test examples cannot tell 99%
    agreement from chance."""
    batches, labels = [], []
    for x, y in inputs.test.as_numpy_iterator():
        batches.append(as_batch(model, x))
        labels.append(y)
    count = sum(len(y) for y in labels)
    more = inputs.validation.map(lambda x, y: x).concatenate(inputs.examples.map(lambda x, y: x).batch(256))
    for x in more.as_numpy_iterator():
        if count >= PARITY_EXAMPLES:
            break
        batch = as_batch(model, x)
        batch = first(batch, PARITY_EXAMPLES - count)
        batches.append(batch)
        count += len(next(iter(batch.values())))
    return batches, np.concatenate(labels)


def keras_reference(serving: Serving, inputs) -> Reference:
    if serving.sample_inputs is not None:  # a generator: its own noise, no test split
        parity = serving.sample_inputs(PARITY_EXAMPLES)
        return Reference(parity, keras_predict(serving.reference, parity), [])
    batches, labels = judged_batches(serving.reference, inputs)
    parity = {name: np.concatenate([b[name] for b in batches])[:PARITY_EXAMPLES] for name in batches[0]}
    all_outputs = np.concatenate([keras_predict(serving.reference, b) for b in batches])
    outputs = all_outputs[:len(next(iter(parity.values())))]  # the parity batch is the judged inputs' start
    if not serving.classes:
        return Reference(parity, outputs, batches, all_outputs, labels)
    probabilities = softmax(all_outputs)
    top2 = np.sort(probabilities, axis=-1)[:, -2:]
    return Reference(parity, outputs, batches, all_outputs, labels, np.argmax(probabilities, -1),
                     clear=top2[:, 1] - top2[:, 0] >= CLEAR_MARGIN)


def rmse(outputs: np.ndarray, labels: np.ndarray) -> float:
    return float(np.sqrt(np.mean((outputs.reshape(-1) - labels.reshape(-1)) ** 2)))


def metadata_problem(path: str, model: TFLiteModel, packed: dict[str, bytes]) -> str | None:
    """What is wrong with a TFLite file's metadata, read back with the schema: every input and output described,
    and the packed files the same as those beside it (labels.txt, vocab.txt). None when nothing is."""
    with open(path, "rb") as f:
        try:
            info, files = metadata.read_metadata(f.read())
        except ValueError as e:
            return str(e)
    (subgraph,) = info.subgraphMetadata
    described = sorted(t.name.decode() for t in subgraph.inputTensorMetadata + subgraph.outputTensorMetadata)
    if described != sorted([*model.inputs, *model.outputs]):
        return f"its metadata describes {described}, the file has {sorted([*model.inputs, *model.outputs])}"
    if files != packed:
        return f"its packed files {sorted(files)} differ from {sorted(packed)} beside it"
    return None


def onnx_metadata_problem(model: OnnxModel, packed: dict[str, bytes]) -> str | None:
    """The ONNX file's metadata_props must hold the files packed in the TFLite files (labels, vocabulary)."""
    properties = model.metadata()
    differ = sorted(name for name, content in packed.items() if properties.get(name, "").encode() != content)
    return f"its metadata_props {differ} differ from the files beside it" if differ else None


def per_class_change(predicted: np.ndarray, reference: Reference, names: tuple[str, ...]) -> dict[str, float]:
    """Each class's accuracy (recall) in an export minus in Keras, by name: which class a quantization hurts."""
    change, tested = {}, reference.classes[:reference.tested]
    for i, name in enumerate(names):
        mine = reference.labels == i
        if mine.any():
            change[name] = float(np.mean(predicted[mine] == i) - np.mean(tested[mine] == i))
    return change


def most_hurt(rows: dict) -> list[str]:
    """A line per quantized export naming the class it hurts most, when it hurts one."""
    lines = []
    for name, row in rows.items():
        change = row.get("per_class_accuracy_change")
        if change and name not in ("float32", "onnx"):
            worst = min(change, key=change.get)
            if change[worst] < 0:
                lines.append(f"- {name}: hurts {worst} most ({100 * change[worst]:+.1f} points of its accuracy)")
    return lines


def measure_export(path: str, variant: str, serving: Serving, reference: Reference, packed: dict[str, bytes],
                   names: tuple[str, ...] = ()) -> dict:
    """One TFLite file in LiteRT, or the ONNX file in ONNX Runtime: parity on the reference batch, agreement and
    accuracy on the test split, size, latency, its input quantization, its metadata, and whether it meets its
    limit."""
    model = OnnxModel(path) if variant == "onnx" else TFLiteModel(path)
    int8 = variant == "int8"
    to_inputs = serving.to_quantizable_inputs if int8 else serving.to_tflite_inputs
    expected = serving.to_tflite_outputs(reference.outputs)

    def outputs(batch):  # in the reference's terms
        return serving.from_tflite_outputs(model(to_inputs(batch)))
    row = measure(outputs(reference.parity), expected)
    tested = reference.tested
    if reference.batches and not serving.classes:  # a regressor: its values against Keras' own error
        values = np.concatenate([outputs(b) for b in reference.batches])
        row["test_rmse"] = rmse(values[:tested], reference.labels)
        row["mean_diff_over_rmse"] = float(np.mean(np.abs(values - reference.all_outputs)) / reference.rmse)
    elif reference.batches:
        predicted = np.concatenate([np.argmax(outputs(b), -1) for b in reference.batches])
        agree = predicted == reference.classes
        row["top1_agreement"], row["agreement_examples"] = float(np.mean(agree)), len(agree)
        row["top1_agreement_clear"] = float(np.mean(agree[reference.clear]) if reference.clear.any() else 1.0)
        row["test_accuracy"] = float(np.mean(predicted[:tested] == reference.labels))
        row["accuracy_drop"] = reference.accuracy - row["test_accuracy"]
        if names:
            row["per_class_accuracy_change"] = per_class_change(predicted[:tested], reference, names)
    row["size_bytes"] = os.path.getsize(path)
    one = to_inputs(first(reference.parity, 1))
    row["latency_ms"] = median_ms(lambda: model(one), LATENCY_RUNS)
    row["inputs"] = model.input_quantization() if variant != "onnx" else {}
    row["limit"] = list(serving.limits[variant])
    row["passed"] = passes(row, serving.limits[variant])
    if not row["passed"] and row["limit"][0] == "top1_agreement" and reference.undertrained:
        # The same bound, on the examples the model is clear about: misses on near-ties are rounding noise.
        clear = int(reference.clear.sum())
        row["passed"] = not clear or passes({"top1_agreement": row["top1_agreement_clear"],
                                             "agreement_examples": clear}, row["limit"])
        row["judged_on"] = "clear examples: the model is undertrained"
    problem = onnx_metadata_problem(model, packed) if variant == "onnx" else metadata_problem(path, model, packed)
    row["metadata"] = problem or "ok"
    row["passed"] = row["passed"] and problem is None
    return row


def run(ctx: Context) -> str:
    serving = ctx.family.serving(ctx.trained_model())
    variants = ctx.config.tflite_variants
    expected = [artifacts.tflite_file(v) for v in variants] + ([artifacts.ONNX] if ctx.config.onnx else [])
    missing = [name for name in expected if not os.path.exists(ctx.path(name))]
    if missing:
        raise PipelineError(f"verify needs {', '.join(missing)} in {ctx.config.task_dir}: run --stages=export "
                            f"with the same --tflite_variants and --onnx first")

    reference = keras_reference(serving, ctx.inputs)
    single = first(reference.parity, 1)
    single_input = single if len(single) > 1 else tf.constant(next(iter(single.values())))
    rows = {"keras": {"latency_ms": median_ms(lambda: serving.reference(single_input, training=False),
                                              LATENCY_RUNS // 2), "passed": True}}
    if reference.batches:
        rows["keras"].update({"test_accuracy": reference.accuracy} if serving.classes
                             else {"test_rmse": reference.rmse})

    serve_fn = tf.saved_model.load(ctx.path(artifacts.SAVED_MODEL)).signatures["serving_default"]
    model_inputs = serving.to_model_inputs(reference.parity)
    served = only_value(serve_fn(**{k: tf.constant(v) for k, v in model_inputs.items()})).astype(np.float64)
    rows["savedmodel"] = measure(served, reference.outputs)
    rows["savedmodel"]["passed"] = passes(rows["savedmodel"], serving.limits["savedmodel"])
    packed = {}
    for name in serving.packed_files:
        with open(ctx.path(name), "rb") as f:
            packed[name] = f.read()
    files = {variant: artifacts.tflite_file(variant) for variant in variants}
    files.update({"onnx": artifacts.ONNX} if ctx.config.onnx else {})
    for variant, name in files.items():
        print(f"  {name} in {'ONNX Runtime' if variant == 'onnx' else 'LiteRT'}", flush=True)
        with console.native_chatter_hidden():  # LiteRT announces its XNNPACK delegate
            rows[variant] = measure_export(ctx.path(name), variant, serving, reference, packed, ctx.data.label_names)

    judged = sum(len(next(iter(b.values()))) for b in reference.batches)
    report = {"parity_examples": len(reference.outputs), "num_test_examples": reference.tested,
              "judged_examples": judged, "exports": rows,
              "clear_fraction": float(np.mean(reference.clear)) if reference.clear is not None else None,
              "passed": all(r["passed"] for r in rows.values())}
    artifacts.write_json(ctx.path(artifacts.VERIFY), report)
    table = format_report(rows)
    with artifacts.atomic_path(ctx.path(artifacts.VERIFY_MD)) as tmp, open(tmp, "w") as f:
        hurt = most_hurt(rows)
        f.write(f"# Export report: {ctx.config.task} on {ctx.config.dataset}\n\n{table}\n"
                + ("\nPer class (accuracy in the export minus in Keras):\n" + "\n".join(hurt) + "\n" if hurt else ""))
    print(table)
    if judged > reference.tested:
        print(f"note: agreement with Keras judged on {judged} inputs: the {reference.tested} test examples and "
              f"{judged - reference.tested} of the validation and train split (agreement needs no labels); "
              f"accuracy on the {reference.tested} test examples", flush=True)
    failed = [name for name, r in rows.items() if not r["passed"]]
    if failed:
        raise PipelineError(f"exports miss their limits: {', '.join(failed)} (see {ctx.path(artifacts.VERIFY_MD)}); "
                            "a quantized variant that loses too much can be left out with --tflite_variants")
    for name, row in rows.items():
        if "judged_on" in row:
            clear = (f"on {row['top1_agreement_clear']:.1%} of the {np.mean(reference.clear):.0%} it is clear about"
                     if reference.clear.any() else "the model is clear about none")
            print(f"note: {name} agrees with Keras on {row['top1_agreement']:.1%} of the judged inputs and {clear} "
                  f"(Keras test accuracy {reference.accuracy:.4f}): the model is undertrained, so misses on near-ties "
                  "do not fail the export; train longer to judge it")
    float32 = rows.get("float32", rows["savedmodel"])
    accuracy = "".join(f"tflite_{m.removeprefix('test_')}={float32[m]:.4f} " for m in ("test_accuracy", "test_rmse")
                       if m in float32)
    return f"{accuracy}max_diff={float32['max_abs_diff']:.1e} {len(rows) - 2} exports passed"


def format_report(rows: dict) -> str:
    """A Markdown table: one row per export, Keras first; a classifier's accuracy columns, or a regressor's error."""
    if any("test_rmse" in r for r in rows.values()):
        quality = (("test RMSE", "test_rmse", "{:.4g}"), ("mean diff / RMSE", "mean_diff_over_rmse", "{:.4f}"),
                   ("max rel diff", "max_rel_diff", "{:.2e}"))
    elif not any("test_accuracy" in r for r in rows.values()):  # a generator: its outputs' differences
        quality = (("mean abs diff", "mean_abs_diff", "{:.3g}"), ("max abs diff", "max_abs_diff", "{:.3g}"))
    else:
        quality = (("test accuracy", "test_accuracy", "{:.4f}"), ("drop", "accuracy_drop", "{:+.4f}"),
                   ("top-1 agree", "top1_agreement", "{:.4f}"), ("max abs diff", "max_abs_diff", "{:.2e}"))
    columns = ("export", "size KiB", "latency ms", *(title for title, _, _ in quality), "passed")
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for name, r in rows.items():
        cells = [name, f"{r['size_bytes'] / 1024:.0f}" if "size_bytes" in r else "",
                 f"{r['latency_ms']:.3f}" if "latency_ms" in r else "",
                 *(form.format(r[key]) if key in r else "" for _, key, form in quality), "yes" if r["passed"] else "NO"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
