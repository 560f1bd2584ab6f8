"""Verify stage: every export loaded back and measured against the Keras model it came from.

The SavedModel through `tf.saved_model.load`, each export target's file in the client that runs it
(pipelines/exporters.py: LiteRT as a phone runs it, builtin ops, no Flex delegate, and so on). For each: parity
with Keras, accuracy on the test split (classifiers), file size, single-example latency, and the metadata read
back, judged against the family's limit for it (Shipment.limits). Written to export_report.json and
export_report.md.

What a user must have fails the run when it misses its limit: the SavedModel and the float files. An optional file
(8 or 16 bits) that misses its limit in a run whose defaults chose the targets is left out of what ships: removed
from the folder, kept as a row of the reports with its measured reason, and the run goes on with a warning line.
With --tflite_variants given, the user asked for each file, and any miss fails the run.
"""

import dataclasses
import os
import statistics
import time

import numpy as np
import tensorflow as tf

from pipelines import artifacts, console, exporters, sagemaker
from pipelines.context import Context, StageResult
from pipelines.errors import PipelineError
from pipelines.exported import BESIDE, Batch, answer_of, keras_named, keras_predict, named_in_chunks, softmax
from pipelines.families import Column
from pipelines.shipping import Shipment, as_batch

PARITY_EXAMPLES = 1024   # the batch every export is compared on; at least 256 are required
LATENCY_RUNS, WARMUP_RUNS = 100, 10
# An example whose top class leads the next by less than this (in Keras' probabilities) is a near-tie: any
# rounding may flip it. A model with few clear examples is undertrained, and its quantized variants' misses on
# near-ties are noise, not a broken export.
CLEAR_MARGIN = 0.1
UNDERTRAINED_CLEAR_FRACTION = 0.8


def median_ms(call, runs: int) -> float:
    for _ in range(WARMUP_RUNS):
        call()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


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
    # The served model's outputs beside its answer (exported.BESIDE: a forecast's bounds) for the parity inputs.
    beside: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)

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


def keras_reference(shipment: Shipment, inputs) -> Reference:
    if shipment.sample_inputs is not None:  # a generator: its own noise, no test split
        parity = shipment.sample_inputs(PARITY_EXAMPLES)
        return Reference(parity, keras_predict(shipment.reference, parity), [])
    batches, labels = judged_batches(shipment.reference, inputs)
    parity = {name: np.concatenate([b[name] for b in batches])[:PARITY_EXAMPLES] for name in batches[0]}
    all_outputs = np.concatenate([keras_predict(shipment.reference, b) for b in batches])
    outputs = all_outputs[:len(next(iter(parity.values())))]  # the parity batch is the judged inputs' start
    if not shipment.classes:
        return Reference(parity, outputs, batches, all_outputs, labels, beside=beside_outputs(shipment, parity))
    probabilities = softmax(all_outputs)
    top2 = np.sort(probabilities, axis=-1)[:, -2:]
    return Reference(parity, outputs, batches, all_outputs, labels, np.argmax(probabilities, -1),
                     clear=top2[:, 1] - top2[:, 0] >= CLEAR_MARGIN)


def beside_outputs(shipment: Shipment, parity: Batch) -> dict[str, np.ndarray]:
    """What the served model (Shipment.model) outputs beside its answer for the parity inputs, by name; {} when it
    outputs only its answer."""
    names = [name for name in shipment.model.output_names if name in BESIDE]
    if not names:
        return {}
    outputs = keras_named(shipment.model, shipment.to_model_inputs(parity))
    return {name: outputs[name] for name in names}


def measure_beside(row: dict, outputs: dict[str, np.ndarray], reference: Reference) -> None:
    """A file's outputs beside its answer against the Keras model's, in units of its test error (`beside` in the
    row, judged by the same limit as the answer); a file without them (the int16x8 forecaster) is not judged on
    them."""
    found = [name for name in reference.beside if name in outputs]
    if found:
        differences = np.concatenate([np.abs(outputs[name] - reference.beside[name]).ravel() for name in found])
        row["beside"] = {"outputs": found, **over_rmse(differences, reference)}


def rmse(outputs: np.ndarray, labels: np.ndarray) -> float:
    return float(np.sqrt(np.mean((outputs.reshape(-1) - labels.reshape(-1)) ** 2)))


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
        if change and name in exporters.TARGETS and exporters.TARGETS[name].optional:
            worst = min(change, key=change.get)
            if change[worst] < 0:
                lines.append(f"- {name}: hurts {worst} most ({100 * change[worst]:+.1f} points of its accuracy)")
    return lines


def over_rmse(differences: np.ndarray, reference: Reference) -> dict:
    """A regressor's differences from Keras in units of Keras' own test error (a tiny floor for a perfect fit)."""
    scale = max(reference.rmse, 1e-9 * float(np.abs(reference.all_outputs).max()), 1e-12)
    return {"max_diff_over_rmse": float(differences.max() / scale),
            "mean_diff_over_rmse": float(differences.mean() / scale)}


def measure_values(row: dict, shipment: Shipment, reference: Reference, outputs, names: tuple[str, ...]) -> None:
    """Beside parity: a regressor's values against Keras' own error; a classifier's agreement with Keras on every
    judged input and its accuracy on the test labels, per class too."""
    tested = reference.tested
    if reference.batches and not shipment.classes:
        values = np.concatenate([outputs(b) for b in reference.batches])
        row["test_rmse"] = rmse(values[:tested], reference.labels)
        row.update(over_rmse(np.abs(values - reference.all_outputs), reference))
    elif reference.batches:
        predicted = np.concatenate([np.argmax(outputs(b), -1) for b in reference.batches])
        agree = predicted == reference.classes
        row["top1_agreement"], row["agreement_examples"] = float(np.mean(agree)), len(agree)
        row["top1_agreement_clear"] = float(np.mean(agree[reference.clear]) if reference.clear.any() else 1.0)
        row["test_accuracy"] = float(np.mean(predicted[:tested] == reference.labels))
        row["accuracy_drop"] = reference.accuracy - row["test_accuracy"]
        if names:
            row["per_class_accuracy_change"] = per_class_change(predicted[:tested], reference, names)


def meets(row: dict, limit: tuple[str, float]) -> bool:
    """Whether a row's measures, and those of its outputs beside the answer (`beside`), are within `limit`."""
    return passes(row, limit) and ("beside" not in row or passes(row["beside"], limit))


def judge(row: dict, limit: tuple[str, float], reference: Reference, metadata_problem: str | None) -> None:
    """Whether the export meets its limit (for an undertrained classifier, on the examples it is clear about:
    misses on near-ties are rounding noise) and carries sound metadata."""
    row["limit"] = list(limit)
    row["passed"] = meets(row, limit)
    if not row["passed"] and limit[0] == "top1_agreement" and reference.undertrained:
        clear = int(reference.clear.sum())
        row["passed"] = not clear or passes({"top1_agreement": row["top1_agreement_clear"],
                                             "agreement_examples": clear}, limit)
        row["judged_on"] = "clear examples: the model is undertrained"
    row["metadata"] = metadata_problem or "ok"
    row["passed_limit"] = row["passed"]
    row["passed"] = row["passed"] and metadata_problem is None


def measure_export(path: str, target: exporters.Target, shipment: Shipment, reference: Reference,
                   packed: dict[str, bytes], names: tuple[str, ...] = ()) -> dict:
    """One exported file, as its client runs it: parity on the reference batch, agreement and accuracy, size,
    latency, its input quantization, its metadata, and whether it meets its limit."""
    model = target.open(path)
    to_inputs = shipment.to_quantizable_inputs if target.quantized_inputs else shipment.to_tflite_inputs

    def outputs(batch):  # in the reference's terms
        return shipment.from_tflite_outputs(model(to_inputs(batch)))
    row = measure(outputs(reference.parity), shipment.to_tflite_outputs(reference.outputs))
    measure_values(row, shipment, reference, outputs, names)
    if reference.beside:
        measure_beside(row, model.named(to_inputs(reference.parity)), reference)
    one = to_inputs(first(reference.parity, 1))
    row.update(size_bytes=os.path.getsize(path), latency_ms=median_ms(lambda: model(one), LATENCY_RUNS),
               inputs=model.input_quantization())
    if target.limit not in shipment.limits:
        raise PipelineError(f"{target.file}: the model's family sets no limit {target.limit!r} to judge it by "
                            f"(its limits: {', '.join(shipment.limits)}): leave the file out, or give the family one")
    judge(row, shipment.limits[target.limit], reference, model.metadata_problem(packed))
    return row


def keras_and_saved_model(ctx: Context, shipment: Shipment, reference: Reference) -> dict:
    """The Keras model's own row (its latency, its test score) and the SavedModel's parity with it."""
    single = first(reference.parity, 1)
    single_input = single if len(single) > 1 else tf.constant(next(iter(single.values())))
    rows = {"keras": {"latency_ms": median_ms(lambda: shipment.reference(single_input, training=False),
                                              LATENCY_RUNS // 2), "passed": True}}
    if reference.batches:
        rows["keras"].update({"test_accuracy": reference.accuracy} if shipment.classes
                             else {"test_rmse": reference.rmse})
    model_inputs = shipment.to_model_inputs(reference.parity)
    rows["savedmodel"] = saved_model_row(ctx.path(artifacts.SAVED_MODEL), shipment, reference, model_inputs)
    if ctx.config.sagemaker:
        # model.tar.gz unpacked as SageMaker unpacks it, its SavedModel found as the container finds it: it must
        # equal Keras as the SavedModel does.
        scratch = artifacts.scratch_dir(ctx.config.task_dir)
        try:
            path, _ = sagemaker.saved_model_in(sagemaker.unpack(ctx.path(sagemaker.ARCHIVE), scratch))
            rows["sagemaker"] = saved_model_row(path, shipment, reference, model_inputs)
        finally:
            artifacts.remove(scratch)
        rows["sagemaker"]["size_bytes"] = os.path.getsize(ctx.path(sagemaker.ARCHIVE))
    return rows


def saved_model_row(path: str, shipment: Shipment, reference: Reference, model_inputs: Batch) -> dict:
    """A SavedModel's serving signature run on the parity batch, against Keras, judged by the SavedModel's limit."""
    serve_fn = tf.saved_model.load(path).signatures["serving_default"]
    outputs = named_in_chunks(lambda part: {name: np.asarray(value, np.float64) for name, value in serve_fn(
        **{k: tf.constant(v) for k, v in part.items()}).items()}, model_inputs)
    served = answer_of(outputs)
    row = measure(served, reference.outputs)
    if reference.batches and not shipment.classes:
        row.update(over_rmse(np.abs(served - reference.outputs), reference))
    measure_beside(row, outputs, reference)
    row["passed"] = meets(row, shipment.limits["savedmodel"])
    return row


def exported_targets(ctx: Context) -> tuple[exporters.Target, ...]:
    """The targets this run verifies; one line if export did not write one of their files."""
    targets = exporters.asked(ctx.config)
    missing = [t.file for t in targets if not os.path.exists(ctx.path(t.file))]
    if missing:
        raise PipelineError(f"verify needs {', '.join(missing)} in {ctx.config.task_dir}: run --stages=export "
                            f"with the same flags first")
    return targets


def write_reports(ctx: Context, rows: dict, reference: Reference) -> str:
    """export_report.json and .md; returns the table."""
    judged = sum(len(next(iter(b.values()))) for b in reference.batches)
    artifacts.write_json(ctx.path(artifacts.VERIFY), {
        "parity_examples": len(reference.outputs), "num_test_examples": reference.tested, "judged_examples": judged,
        "exports": rows, "clear_fraction": float(np.mean(reference.clear)) if reference.clear is not None else None,
        "passed": all(r["passed"] for r in rows.values() if r.get("shipped", True))})
    table, hurt = format_report(rows, ctx.family.export_columns), most_hurt(rows)
    artifacts.write_text(ctx.path(artifacts.VERIFY_MD), f"# Export report: {ctx.config.task} on {ctx.config.dataset}"
                         f"\n\n{table}\n" + "".join(f"\n{line}\n" for line in left_out_lines(rows))
                         + ("\nPer class (accuracy in the export minus in Keras):\n" + "\n".join(hurt) + "\n"
                            if hurt else ""))
    if judged > reference.tested:
        print(f"note: agreement with Keras judged on {judged} inputs: the {reference.tested} test examples and "
              f"{judged - reference.tested} of the validation and train split (agreement needs no labels); "
              f"accuracy on the {reference.tested} test examples", flush=True)
    return table


def left_out_lines(rows: dict) -> list[str]:
    """A line per export left out of what ships, with its reason (export_report.md and report.md)."""
    return [f"{name} is left out of what ships: {row['left_out']}." for name, row in rows.items()
            if row.get("left_out")]


def failed_to_run(target: exporters.Target, error: Exception) -> dict:
    """The row of an export its client could not run: it fails, and says why in the client's words."""
    words = next((line.strip() for line in str(error).splitlines() if line.strip()), type(error).__name__)
    return {"passed": False, "passed_limit": False, "error": f"{target.client} could not run it ({words})"}


def miss(row: dict) -> str:
    """Why an export missed its limit, in the words of its measures."""
    if "error" in row:
        return row["error"]
    name, bound = row["limit"]
    value = row.get(name)
    why = [] if row.get("passed_limit", True) else [f"{name} {value:.4g} against its limit {bound:g}"]
    return "; ".join(why + ([f"metadata: {row['metadata']}"] if row.get("metadata", "ok") != "ok" else []))


def leave_out(ctx: Context, rows: dict) -> tuple[str, ...]:
    """The optional exports that missed their limits, when the defaults chose the targets: each file removed, its
    row kept with the reason. Returns their files."""
    if "tflite_variants" in ctx.config.explicit:
        return ()
    withdrawn = []
    for target in exporters.asked(ctx.config):
        row = rows[target.name]
        if target.optional and not row["passed"]:
            row.update(shipped=False, left_out=miss(row))
            artifacts.remove(ctx.path(target.file))
            withdrawn.append(target.file)
            print(f"warning: {target.file} is left out of what ships: {row['left_out']} (export_report.md has its "
                  f"row; --tflite_variants=…,{target.name} makes it required)", flush=True)
    return tuple(withdrawn)


def run(ctx: Context) -> StageResult:
    shipment = ctx.family.ship(ctx.trained_model(), ctx.workspace)
    targets = exported_targets(ctx)
    reference = keras_reference(shipment, ctx.inputs)
    rows = keras_and_saved_model(ctx, shipment, reference)
    packed = {}
    for name in shipment.packed_files:
        with open(ctx.path(name), "rb") as f:
            packed[name] = f.read()
    for target in targets:
        print(f"  {target.file} in {target.client}", flush=True)
        try:
            with console.native_chatter_hidden():  # LiteRT announces its XNNPACK delegate
                rows[target.name] = measure_export(ctx.path(target.file), target, shipment, reference, packed,
                                                   ctx.data.label_names)
        except RuntimeError as e:  # the client's kernels refuse the file (LiteRT: "Node number 6 (DIV) failed")
            rows[target.name] = failed_to_run(target, e)
    withdrawn = leave_out(ctx, rows)
    print(write_reports(ctx, rows, reference))
    failed = [name for name, r in rows.items() if not r["passed"] and r.get("shipped", True)]
    if failed:
        raise PipelineError(f"exports miss their limits: {', '.join(failed)} (see {ctx.path(artifacts.VERIFY_MD)})"
                            + ("; the float files must match Keras: report it as a bug" if any(
                                name not in exporters.TARGETS or not exporters.TARGETS[name].optional
                                for name in failed)
                               else "; drop the variant from --tflite_variants, or give none and the defaults leave "
                                    "out what misses"))
    undertrained_notes(rows, reference)
    float32 = rows.get("float32", rows["savedmodel"])
    accuracy = "".join(f"tflite_{m.removeprefix('test_')}={float32[m]:.4f} " for m in ("test_accuracy", "test_rmse")
                       if m in float32)
    shipped = sum(1 for name, r in rows.items() if name != "keras" and r.get("shipped", True)) - 1
    return StageResult(f"{accuracy}max_diff={float32['max_abs_diff']:.1e} {shipped} exports passed"
                       + (f", {len(withdrawn)} left out" if withdrawn else ""), withdrawn)


def undertrained_notes(rows: dict, reference: Reference) -> None:
    for name, row in rows.items():
        if "judged_on" in row:
            clear = (f"on {row['top1_agreement_clear']:.1%} of the {np.mean(reference.clear):.0%} it is clear about"
                     if reference.clear.any() else "the model is clear about none")
            print(f"note: {name} agrees with Keras on {row['top1_agreement']:.1%} of the judged inputs and {clear} "
                  f"(Keras test accuracy {reference.accuracy:.4f}): the model is undertrained, so misses on near-ties "
                  "do not fail the export; train longer to judge it")


def format_report(rows: dict, quality: tuple[Column, ...]) -> str:
    """A Markdown table: one row per export, Keras first, in the columns the family judges exports by."""
    columns = ("export", "size KiB", "latency ms", *(c.title for c in quality), "passed")
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for name, r in rows.items():
        cells = [name, f"{r['size_bytes'] / 1024:.0f}" if "size_bytes" in r else "",
                 f"{r['latency_ms']:.3f}" if "latency_ms" in r else "",
                 *(c.form.format(r[c.key]) if c.key in r else "" for c in quality),
                 "yes" if r["passed"] else "left out" if r.get("left_out") else "NO"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
