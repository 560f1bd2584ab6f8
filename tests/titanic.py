"""A passenger table shaped like Kaggle's Titanic training file, made up here (the tests use no downloaded data):
a row-number id, a label, numeric and categorical columns with missing cells, and three columns of nearly one
distinct value per row: a name and a cabin, which share words (a title, a surname, a deck's letter) and are read as
text, and a ticket, whose only word is in every row, which a model must not learn from. Survival follows sex, class
and age, as in the real file, with noise."""

import csv

import numpy as np

COLUMNS = ["PassengerId", "Survived", "Pclass", "Name", "Sex", "Age", "SibSp", "Parch", "Ticket", "Fare", "Cabin",
           "Embarked"]
SURNAMES = ["Smith", "Brown", "Kelly", "Olsen", "Novak", "Rossi", "Dubois", "Meyer", "Sato", "Garcia"]


def passengers(count: int, seed: int = 0, first_id: int = 1) -> list[dict]:
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(count):
        pclass = int(rng.choice([1, 2, 3], p=[0.25, 0.2, 0.55]))
        sex = "female" if rng.random() < 0.35 else "male"
        age = None if rng.random() < 0.2 else round(float(rng.uniform(1, 70)), 1)
        chance = (0.75 if sex == "female" else 0.18) + (0.15 if pclass == 1 else -0.1 if pclass == 3 else 0.0)
        chance += 0.2 if age is not None and age < 12 else 0.0
        survived = int(rng.random() < min(max(chance, 0.02), 0.98))
        rows.append({
            "PassengerId": first_id + i, "Survived": survived, "Pclass": pclass,
            "Name": f"{SURNAMES[i % len(SURNAMES)]}, {'Mrs' if sex == 'female' else 'Mr'}. Person {first_id + i}",
            "Sex": sex, "Age": "" if age is None else age, "SibSp": int(rng.poisson(0.5)),
            "Parch": int(rng.poisson(0.4)), "Ticket": f"T{int(rng.integers(10_000, 99_999))}",
            "Fare": round(float(rng.gamma(2.0, {1: 40, 2: 12, 3: 5}[pclass])), 2),
            "Cabin": f"{'ABCDE'[int(rng.integers(5))]}{first_id + i}" if pclass == 1 and rng.random() < 0.8 else "",
            "Embarked": str(rng.choice(["S", "C", "Q"], p=[0.7, 0.2, 0.1]))})
    return rows


def write(path, rows: list[dict], columns=COLUMNS) -> str:
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(columns), extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return str(path)
