"""Report stage: report.md, the run on one page and the first file to open — what was trained on what data, how
it learned, how it scores on the test split (what the family reports and draws), how every export verified, and
every file in the folder. It reads what the earlier stages left; any it finds missing it says how to make. The
family comes from metrics.json (the data may have chosen it), so the report loads no data."""

import os

from pipelines import artifacts, exporters
from pipelines.context import Context
from pipelines.data import sources
from pipelines.families import Family
from pipelines.stages.verify import format_report, left_out_lines, most_hurt
from pipelines.tasks import FAMILIES

# What each generic file in the folder holds (a family's own files and pictures are described by the family).
DESCRIPTIONS = {
    artifacts.MODEL: "the trained Keras model",
    artifacts.CONFIG: "the settings it was trained with",
    artifacts.HISTORY: "per-epoch curves",
    artifacts.CHECKPOINTS: "per-epoch weights",
    artifacts.LOGS: "TensorBoard events (`tensorboard --logdir` this folder's parent)",
    artifacts.METRICS: "test-split metrics",
    artifacts.CURVES_PNG: "the training curves",
    artifacts.SAVED_MODEL: "SavedModel, signature serving_default (TF Serving, fine-tuning)",
    artifacts.LABELS: "line i names class i",
    artifacts.VERIFY: "every export measured against Keras",
    artifacts.VERIFY_MD: "the same as a table",
    artifacts.TRIALS_CSV: "the sweep's trials",
    artifacts.TRIALS_PNG: "the sweep's objective per trial",
    artifacts.BEST_HPARAMS: "the sweep's best hyperparameters",
    artifacts.TUNING: "KerasTuner's state",
    artifacts.PREDICTIONS: "the predict stage's answers for --predict_input",
    artifacts.PREDICTION_SCORES: "those answers scored against the labels the new examples hold",
}
MAX_CLASS_ROWS = 50
SKIPPED = {artifacts.FINGERPRINTS, artifacts.REPORT, artifacts.LOCK, artifacts.BACKUP}


def read(ctx: Context, name: str):
    return artifacts.read_json(ctx.path(name)) if os.path.exists(ctx.path(name)) else None


def table(header: tuple[str, ...], rows: list[tuple]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header),
            *("| " + " | ".join(str(cell) for cell in row) + " |" for row in rows)]


def picture(ctx: Context, name: str, title: str) -> list[str]:
    return [f"![{title}]({name})", ""] if os.path.exists(ctx.path(name)) else []


def describe(name: str, family: Family) -> str:
    target = exporters.by_file(name)
    if target is not None:
        return f"{target.note}, with metadata (labels packed in)"
    pictures = {p.file: p.title for p in family.pictures}
    return DESCRIPTIONS.get(name) or family.side_files.get(name) or pictures.get(name, "")


def training(ctx: Context, trained: dict | None, history: dict | None) -> list[str]:
    """The settings that mattered for this data set, the last epoch's numbers and the curves."""
    config, lines = ctx.config, ["## Training", ""]
    if trained is None:
        lines += ["No trained model: run `--stages=train`.", ""]
    else:
        hparams = trained.pop("hparams", {})
        problem = (trained.get("trained_on") or {}).get("problem", "")
        request = sources.Request(config.dataset, **{name: trained.get(name, getattr(config, name)) for name in (
            "data_source", "idx_dir", "time_column")}, rows_as_sequences=ctx.task.rows_as_sequences,
            problem="classification" if problem == "classification" else "regression")  # known: no file read
        ignored = set(sources.DATA_SETTINGS) - sources.settings_that_apply(request)
        settings = {**hparams, **{k: v for k, v in trained.items()
                                  if not isinstance(v, (dict, list)) and v is not None and k not in ignored}}
        lines += table(("setting", "value"), sorted(settings.items())) + [""]
    if history and ctx.task.solve:
        lines += ["Fitted in closed form, no epochs: " + ", ".join(
            f"{name} {values[-1]:.4g}" for name, values in history.items() if values), ""]
    elif history:
        finals = {name: values[-1] for name, values in history.items() if values}
        lines += [f"{len(next(iter(history.values())))} epochs; last: " + ", ".join(
            f"{name} {value:.4g}" for name, value in finals.items() if "loss" in name or "accuracy" in name), ""]
    return lines + picture(ctx, artifacts.CURVES_PNG, "training curves")


def data_section(metrics: dict | None) -> list[str]:
    """A table's columns and how each was used (a feature of which kind, or left out and why), the rows without a
    label and the missing cells."""
    read = (metrics or {}).get("table")
    if not read or "columns" not in read:
        return []
    lines = ["## Data", "", *table(("column", "how it was used"), [(c["column"], c["use"]) for c in read["columns"]]),
             ""]
    if read.get("dropped_rows_without_label"):
        lines += [f"{read['dropped_rows_without_label']} rows without a label were left out.", ""]
    if read.get("missing_cells"):
        lines += ["Missing cells (a number takes the train mean, a category its unseen entry): " + ", ".join(
            f"{column} {count}" for column, count in read["missing_cells"].items()) + ".", ""]
    return lines


def per_class(metrics: dict) -> list[str]:
    """A classifier's per-class table; of many classes, those with the most test examples."""
    if "per_class" not in metrics:
        return []
    numbers = metrics["per_class"]
    rows = [(name, f"{m['precision']:.3f}", f"{m['recall']:.3f}", f"{m['f1']:.3f}", m["support"])
            for name, m in ((name, numbers[name]) for name in metrics.get("labels", numbers))]
    lines = []
    if len(rows) > MAX_CLASS_ROWS:
        lines += [f"The {MAX_CLASS_ROWS} of {len(rows)} classes with the most test examples (metrics.json has every "
                  "class):", ""]
        rows = sorted(sorted(rows, key=lambda row: -row[-1])[:MAX_CLASS_ROWS])
    return lines + table(("class", "precision", "recall", "F1", "support"), rows) + [""]


def test(ctx: Context, metrics: dict | None, family: Family) -> list[str]:
    lines = ["## Test", ""]
    if metrics is None:
        return lines + ["Not evaluated: run `--stages=evaluate`.", ""]
    headline = metrics["headline"]
    interval = metrics.get(f"{headline}_interval")
    lines += [f"**{headline} = {metrics[headline]:.4f}** on {metrics['num_test_examples']} test examples"
              + (f" (95% interval {interval[0]:.3f}–{interval[1]:.3f})" if interval else "") + ".", ""]
    lines += per_class(metrics)
    for drawn in family.pictures:
        lines += picture(ctx, drawn.file, drawn.title)
    return lines + family.report(metrics)


def exports_section(exports: dict | None, family: Family) -> list[str]:
    lines = ["## Exports", ""]
    if exports is None:
        return lines + ["Not verified: run `--stages=export,verify`.", ""]
    verdict = "every export passed" if exports["passed"] else "**some exports missed their limits**"
    order = ["keras", "savedmodel", "sagemaker", *exporters.TARGETS]  # as verify measured them
    rows = dict(sorted(exports["exports"].items(), key=lambda item: order.index(item[0])))
    judged = exports.get("judged_examples", exports["num_test_examples"])
    judged = (f"; agreement on {judged} inputs, the test split's and the rest from the validation and train splits"
              if judged > exports["num_test_examples"] else "")
    lines += [f"Each export measured against Keras ({verdict}; {exports['num_test_examples']} test examples"
              f"{judged}):", "", format_report(rows, family.export_columns), ""]
    hurt = most_hurt(exports["exports"])
    lines += [*left_out_lines(exports["exports"]), ""] if left_out_lines(exports["exports"]) else []
    return lines + (["Per class, accuracy in the export minus in Keras:", *hurt, ""] if hurt else [])


def run(ctx: Context) -> str:
    config = ctx.config
    trained, metrics, history, exports = (read(ctx, name) for name in (
        artifacts.CONFIG, artifacts.METRICS, artifacts.HISTORY, artifacts.VERIFY))
    family = FAMILIES.get((metrics or {}).get("family"), ctx.task.family)
    lines = [f"# {config.task} on {config.dataset}", "", *data_section(metrics), *training(ctx, trained, history),
             *test(ctx, metrics, family),
             *exports_section(exports, family), "## Files", ""]
    present = sorted(name for name in os.listdir(config.task_dir) if name not in SKIPPED and not name.startswith("."))
    lines += table(("file", "what it is"), [(f"[{name}]({name})", describe(name, family)) for name in present])
    artifacts.write_text(ctx.path(artifacts.REPORT), "\n".join(lines) + "\n")
    return f"{len(present)} files described"
