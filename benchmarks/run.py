"""Performance as ratios, both sides measured in this one process on this machine (`make bench`; not run by CI).

1. Ceiling: a large matmul's GFLOP/s in float32 and bfloat16, the peak every efficiency below is a share of.
2. Runner overhead: the train stage (tf.data input, validation, checkpoints, backup, TensorBoard, gradient norm,
   FLOP count, saving) against a plain script that loads the same arrays, builds the same model with the same
   compile, and calls `model.fit` with validation and no callbacks. Dense and conv, at the task's defaults,
   alternating, best of two.
3. Efficiency: the conv train stage's sustained GFLOP/s (history.json, epochs after the first) against the peak;
   and what --precision=auto chose on this machine against the other choice (float32, or bfloat16 where auto took
   float32) on the same stage (seconds and test accuracy).
4. Input: `fit` on the package's tf.data pipeline against the same model fed synthetic batches already in memory:
   distinct ones, and one repeated (each feed's median epoch, the feeds taking turns an epoch at a time); dense and
   conv defaults, and the dense model at batch 32 with one step per execution (the measure the speed issue was
   filed with).
5. Your own data: Fashion-MNIST written as a folder of 70,000 PNG files against the IDX route, same model, epochs
   (the median epoch, taking turns), and the one-off cost of reading and decoding the folder.
6. The NumPy trainer: the dense defaults trained by models/numpy_mlp.py against Keras' fit, per epoch.
7. Training on several machines: two multi-worker processes on loopback, one core each, against one process on
   one core (benchmarks/distributed.py).
8. dlpipe-serve under a bounded load on loopback against the SavedModel called in process (benchmarks/serving.py).
9. Data at its real size (benchmarks/scale.py): peak memory on folders of 40 and 400 six-megapixel photos, a
   folder's first pass against keras.utils.image_dataset_from_directory, and the bounded shuffle's accuracy.
10. Predicting new data (benchmarks/predict.py): dlpipe-predict on 100,000 CSV rows and 2,000 PNG files against a
   plain Keras script doing the same (read, model.predict, write a CSV).
11. Forecasts on real series (benchmarks/forecasts.py): dlpipe's defaults against statsforecast's AutoETS and
   AutoARIMA and seasonal naive on 28 monthly and quarterly series from the wheels; its own forecasts.md.
12. Tables on real data (benchmarks/tables.py): dlpipe's defaults against HistGradientBoosting and a linear model on
   eight tables from the wheels, each split 75/25; its own tables.md.
13. Sequences (benchmarks/sequences.py): the UCR/UEA sets in aeon's wheel against aeon's MiniRocket (in .venv-aeon,
   which `make bench` builds); its own sequences.md.
14. The GAN on photos (benchmarks/gan.py): crops of the photographs in the wheels, the defaults and --epochs=15,
   judged by a k-NN precision, recall and diversity of its own; its own gan.md.

Ratios above 1 mean the package is slower. Results go to benchmarks/out/results.json and results.md.
`python -m benchmarks.run train input` runs only the sections named (train, input, folder, numpy, distributed,
serving, scale, predict, forecasts, tables, sequences, gan).
"""

import json
import os
import statistics
import sys
import tempfile
import time

import keras
import tensorflow as tf

from benchmarks import distributed, forecasts, gan, predict, scale, sequences, serving, tables
from pipelines import artifacts, precision, runner
from pipelines.context import Context
from pipelines.data import idx, pipeline
from pipelines.flops import sustained
from benchmarks import config_of as config_from_args
from pipelines.tasks import TASKS

OUT = os.path.join(os.path.dirname(__file__), "out")


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def matmul_peak(dtype: tf.DType, n: int = 4096, repeats: int = 10) -> float:
    """GFLOP/s of a chain of n×n matmuls, each on the last one's result (so none can be merged away), on every
    core, best of five. The factor's scale keeps the values finite along the chain."""
    x = tf.cast(tf.random.uniform((n, n), -1, 1), dtype)
    w = tf.cast(tf.random.uniform((n, n), -1, 1) * (3 / n) ** 0.5, dtype)

    @tf.function
    def chain(x):
        for _ in range(repeats):
            x = tf.linalg.matmul(x, w)
        return x
    chain(x)
    best = min(timed(lambda: chain(x).numpy()) for _ in range(5))
    return 2 * n ** 3 * repeats / best / 1e9


def stage_run(task: str, output_dir: str, *flags: str) -> dict:
    """The train and evaluate stages at the task's defaults: train seconds, sustained speed, test metrics."""
    config = config_from_args(f"--task={task}", "--stages=train,evaluate", f"--output_dir={output_dir}", "--force",
                              *flags)
    records = runner.run(config)
    metrics = artifacts.read_json(os.path.join(config.task_dir, artifacts.METRICS))
    return {"seconds": records[0].seconds, "test_accuracy": metrics["test_accuracy"],
            "gflop_per_second": metrics["train_gflop_per_second"],
            "flops_per_example": metrics["train_flops_per_example"]}


def compiled_model(task, config, input_shape: tuple[int, ...], num_classes: int, **compile_args) -> keras.Model:
    """The task's model built and compiled as the train stage does: in the run's precision, with its compile."""
    with precision.policy(config.precision):
        model = task.build(input_shape, num_classes, **config.hparams)
    task.family.compile(model, config, **compile_args)
    return model


def plain_fit(task: str) -> float:
    """What a Keras user writes for the same model: arrays in memory, `fit` with validation, no callbacks."""
    def run():
        config = config_from_args(f"--task={task}")
        data = idx.load_idx_split(idx.DEFAULT_IDX_DIR, "train")
        x, y = data["image"].astype("float32"), data["label"]
        cut = len(x) - round(len(x) * config.validation_split)
        keras.utils.set_random_seed(config.seed)
        model = compiled_model(TASKS[task], config, x.shape[1:], 10, steps_per_epoch=-(-cut // config.batch_size))
        model.fit(x[:cut], y[:cut], batch_size=config.batch_size, epochs=config.epochs,
                  validation_data=(x[cut:], y[cut:]), verbose=0)
    return timed(run)


def overhead_and_efficiency(output_dir: str) -> dict:
    results = {}
    for task in ("dense", "conv"):
        pairs = [(stage_run(task, output_dir), plain_fit(task)) for _ in range(2)]
        stage = min((p[0] for p in pairs), key=lambda r: r["seconds"])
        plain = min(p[1] for p in pairs)
        results[task] = {"train_stage_seconds": stage["seconds"], "plain_fit_seconds": plain,
                         "train_stage_over_plain_fit": stage["seconds"] / plain,
                         "test_accuracy": stage["test_accuracy"],
                         "gflop_per_second": stage["gflop_per_second"],
                         "flops_per_example": stage["flops_per_example"]}
    auto = config_from_args("--task=conv")
    other = "bfloat16" if auto.precision == "float32" else "float32"
    results["conv_other_precision"] = {**stage_run("conv", output_dir, f"--precision={other}"), "precision": other}
    results["conv_auto_precision"] = {"precision": auto.precision, "reason": auto.precision_reason,
                                      "other_over_auto_seconds": results["conv_other_precision"]["seconds"]
                                      / results["conv"]["train_stage_seconds"]}
    return results


def numpy_vs_keras(output_dir: str) -> dict:
    """The dense task's defaults trained by the NumPy network and by Keras' fit in this process: training speed
    (examples/s, the median of the epochs after the first) and test accuracy."""
    results = {}
    for trainer in ("numpy", "keras"):
        config = config_from_args("--task=dense", f"--trainer={trainer}", "--stages=train,evaluate", "--force",
                                  f"--output_dir={os.path.join(output_dir, trainer)}")
        records = runner.run(config)
        history = artifacts.read_json(os.path.join(config.task_dir, artifacts.HISTORY))
        metrics = artifacts.read_json(os.path.join(config.task_dir, artifacts.METRICS))
        results[trainer] = {"train_seconds": records[0].seconds, "epochs": config.epochs,
                            "examples_per_second": sustained(history["examples_per_second"]),
                            "test_accuracy": metrics["test_accuracy"]}
    results["numpy_epoch_over_keras_epoch"] = (results["keras"]["examples_per_second"]
                                               / results["numpy"]["examples_per_second"])
    return results


class EpochSeconds(keras.callbacks.Callback):
    """Each epoch's wall time, its new iterator included (Keras makes it inside the epoch)."""
    def __init__(self):
        super().__init__()
        self.seconds = []

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self._start)


def median_epoch_seconds(feeds: dict[str, tf.data.Dataset], context: Context, epochs: int) -> dict[str, float]:
    """Each feed's median epoch of the context's model (its precision and compile; one model per feed, built and
    traced beforehand), the feeds taking turns one epoch at a time, so that the machine's other load falls on all
    of them alike (the best of a few whole fits moved ±10% between runs here)."""
    models = {}
    for name, dataset in feeds.items():
        dataset.reduce(tf.constant(0, tf.int64), lambda count, _: count + 1)  # fills a pipeline's cache, as epoch 1
        keras.utils.set_random_seed(0)
        models[name] = compiled_model(context.task, context.config, context.inputs.input_shape,
                                      context.data.num_classes)
        models[name].fit(dataset.take(10), verbose=0)
    seconds = {name: [] for name in feeds}
    for _ in range(epochs):
        for name, dataset in feeds.items():
            timer = EpochSeconds()
            models[name].fit(dataset, verbose=0, callbacks=[timer])
            seconds[name] += timer.seconds
    return {name: statistics.median(s) for name, s in seconds.items()}


def task_context(task: str, *flags: str) -> Context:
    return Context(config_from_args(f"--task={task}", *flags), TASKS[task])


# The input-pipeline comparisons: (task, flags, epochs of each feed). The dense defaults are the strictest
# case (a step of about 1 ms, so the input's share of two cores is largest); the dense model at batch 32 with one
# step per execution is the measure the speed issue was filed with (0.98 then); conv is the default recipe.
INPUT_SETUPS = {"dense": ("dense", (), 40),
                "dense_batch_32_one_step_per_execution": ("dense", ("--batch_size=32", "--steps_per_execution=1"), 8),
                "conv": ("conv", (), 5)}


def input_pipeline_vs_synthetic(task: str, flags: tuple[str, ...], epochs: int) -> dict:
    """The package's pipeline against two synthetic in-memory feeds of the same shapes and tf.data options:
    distinct batches made beforehand (sliced without a copy: the fastest a fresh batch can arrive, what an input
    pipeline can at best approach) and one batch repeated (which also stays in the CPU's cache, so it flatters any
    step that reads its input)."""
    context = task_context(task, *flags)
    inputs = context.inputs
    steps, batch_size = inputs.steps_per_epoch, inputs.batch_size
    labels = tf.zeros((batch_size,), tf.int64)
    batches = tf.random.uniform((steps, batch_size, *inputs.input_shape), 0, 255)
    distinct = tf.data.Dataset.from_tensor_slices(batches).map(lambda x: (x, labels))
    repeated = tf.data.Dataset.from_tensors((batches[0], labels)).repeat(steps)
    feeds = {"pipeline": inputs.train, **{name: feed.prefetch(tf.data.AUTOTUNE).with_options(pipeline.OPTIONS)
                                          for name, feed in (("distinct", distinct), ("repeated", repeated))}}
    epoch = median_epoch_seconds(feeds, context, epochs)
    return {"task": task, "flags": list(flags), "median_epoch_seconds": epoch,
            "pipeline_speed_relative_to_distinct_batches": epoch["distinct"] / epoch["pipeline"],
            "pipeline_speed_relative_to_one_batch_repeated": epoch["repeated"] / epoch["pipeline"]}


def write_png_folder(root: str) -> None:
    from PIL import Image
    for split in ("train", "test"):
        data = idx.load_idx_split(idx.DEFAULT_IDX_DIR, split)
        for i, (image, label) in enumerate(zip(data["image"], data["label"])):
            folder = os.path.join(root, split, f"class_{label}")
            os.makedirs(folder, exist_ok=True)
            Image.fromarray(image[..., 0]).save(os.path.join(folder, f"{i:05d}.png"))


def folder_vs_idx(root: str) -> dict:
    idx_context, folder_context = task_context("dense"), task_context("dense", f"--dataset={root}")
    read = timed(lambda: folder_context.data)
    epoch = median_epoch_seconds({"idx": idx_context.inputs.train, "folder": folder_context.inputs.train},
                                 idx_context, epochs=30)
    return {"png_folder_read_and_decode_seconds": read, "median_epoch_seconds": epoch,
            "png_folder_speed_relative_to_idx": epoch["idx"] / epoch["folder"]}


def train_rows(train: dict, peak: float) -> list[tuple[str, str]]:
    conv, auto, other = train["conv"], train["conv_auto_precision"], train["conv_other_precision"]
    rows = [(f"{name} train stage / plain `fit` (defaults)", f"{t['train_stage_seconds']:.1f} s / "
             f"{t['plain_fit_seconds']:.1f} s = **{t['train_stage_over_plain_fit']:.2f}**")
            for name, t in (("dense", train["dense"]), ("conv", conv))]
    return rows + [
        (f"conv train stage, sustained ({auto['precision']})", f"{conv['gflop_per_second']:.0f} GFLOP/s = **"
         f"{conv['gflop_per_second'] / peak:.0%}** of the float32 peak ({conv['flops_per_example'] / 1e6:.1f} MFLOP"
         " per example)"),
        (f"conv train stage, {other['precision']}", f"{other['gflop_per_second']:.0f} GFLOP/s = **"
         f"{other['gflop_per_second'] / peak:.0%}** of the float32 peak"),
        (f"conv --precision=auto chose {auto['precision']} ({auto['reason']}): {other['precision']} / "
         f"{auto['precision']} seconds", f"**{auto['other_over_auto_seconds']:.2f}** ({other['seconds']:.1f} s / "
         f"{conv['train_stage_seconds']:.1f} s; test accuracy {other['test_accuracy']:.4f} / "
         f"{conv['test_accuracy']:.4f})"),
    ]


def markdown(r: dict) -> str:
    """The table of whichever sections ran."""
    peak = r["matmul_gflop_per_second"]["float32"]
    rows = [("ceiling: 4096² matmul, float32 / bfloat16",
             f"{peak:.0f} / {r['matmul_gflop_per_second']['bfloat16']:.0f} GFLOP/s")]
    rows += train_rows(r["train"], peak) if "train" in r else []
    sections = {
        "input": lambda i: (
            "input: tf.data pipeline / synthetic in-memory batches, distinct, the same tf.data options (speed)",
            "; ".join(f"{x['task']} {' '.join(x['flags']) or 'defaults'} "
                      f"**{x['pipeline_speed_relative_to_distinct_batches']:.2f}** (one batch repeated: "
                      f"{x['pipeline_speed_relative_to_one_batch_repeated']:.2f})" for x in i.values())),
        "numpy": lambda n: (
            "dense: the NumPy trainer's epoch / Keras' epoch (defaults; test accuracy NumPy / Keras)",
            f"**{n['numpy_epoch_over_keras_epoch']:.1f}**; {n['numpy']['test_accuracy']:.4f} / "
            f"{n['keras']['test_accuracy']:.4f}"),
        "distributed": lambda d: (
            "conv, two workers on loopback (one core each) / one worker on one core (speed; test accuracy)",
            f"**{d['speed_ratio']:.2f}**; {d['two_workers']['test_accuracy']:.4f} / "
            f"{d['one_worker']['test_accuracy']:.4f}"),
        "serving": lambda v: (
            f"dlpipe-serve: {v['requests']} predict requests from {v['clients']} clients on loopback",
            f"{v['requests_per_second']:.0f} requests/s, p50 {v['p50_ms']:.1f} ms, p99 {v['p99_ms']:.1f} ms, "
            f"{v['errors']} errors; **{v['server_over_in_process_time_per_request']:.1f}×** the in-process "
            "SavedModel call's time"),
        "folder": lambda f: (
            "a folder of 70,000 PNGs / the IDX route (speed, median epoch)",
            f"**{f['png_folder_speed_relative_to_idx']:.2f}**; reading and decoding it once: "
            f"{f['png_folder_read_and_decode_seconds']:.1f} s"),
    }
    rows += [row(r[name]) for name, row in sections.items() if name in r]
    rows += scale.rows(r["scale"]) if "scale" in r else []
    rows += predict.rows(r["predict"]) if "predict" in r else []
    return "\n".join(["| measure | this machine |", "| --- | --- |", *(f"| {a} | {b} |" for a, b in rows)]) + "\n"


def main(sections: list[str]) -> None:
    wanted = set(sections) or {"train", "input", "folder", "numpy", "distributed", "serving", "scale", "predict",
                               "forecasts", "tables", "sequences", "gan"}
    results = {"matmul_gflop_per_second": {"float32": matmul_peak(tf.float32),
                                           "bfloat16": matmul_peak(tf.bfloat16)}}
    if "train" in wanted:
        with tempfile.TemporaryDirectory() as output_dir:
            results["train"] = overhead_and_efficiency(output_dir)
    if "input" in wanted:
        results["input"] = {name: input_pipeline_vs_synthetic(*setup) for name, setup in INPUT_SETUPS.items()}
    if "folder" in wanted:
        with tempfile.TemporaryDirectory() as root:
            write_png_folder(root)
            results["folder"] = folder_vs_idx(root)
    if "numpy" in wanted:
        with tempfile.TemporaryDirectory() as output_dir:
            results["numpy"] = numpy_vs_keras(output_dir)
    if "distributed" in wanted:
        results["distributed"] = distributed.scaling()
    if "serving" in wanted:
        results["serving"] = serving.load_test()
    if "scale" in wanted:
        results["scale"] = scale.run()
    if "predict" in wanted:
        results["predict"] = predict.run()
    if "forecasts" in wanted:
        forecasts.main([])  # benchmarks/out/forecasts.md
        forecasts.main(["--holdout"])  # … and forecasts_holdout.md: each series' last season held out
    if "tables" in wanted:
        tables.main([])  # benchmarks/out/tables.md
    if "sequences" in wanted:
        sequences.main([])  # benchmarks/out/sequences.md
    if "gan" in wanted:
        gan.main([])  # benchmarks/out/gan.md
    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(OUT, "results.json"), "w") as f:
        json.dump(results, f, indent=2)
    table = markdown(results)
    with open(os.path.join(OUT, "results.md"), "w") as f:
        f.write(table)
    print(json.dumps(results, indent=2))
    print(table)


if __name__ == "__main__":
    main(sys.argv[1:])
