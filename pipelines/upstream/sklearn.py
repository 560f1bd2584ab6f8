"""scikit-learn internals: a fitted HistGradientBoosting's trees (private: `_predictors`, its nodes, and
`_baseline_prediction`), read so that families/tables.py can ship them as tensor operations. scikit-learn has no
public API that exports them."""

import numpy as np

from pipelines.upstream import require

TESTED = "1.9"


def boosted_trees(fitted) -> tuple[list[list[np.ndarray]], np.ndarray]:
    """Per boosting iteration, one node array per score column (fields feature_idx, num_threshold, left, right,
    is_leaf, value, is_categorical; the root first, x[feature_idx] <= num_threshold going left), and the raw score's
    starting value per column."""
    import sklearn
    require("scikit-learn", sklearn.__version__, TESTED, "scikit-learn")
    return ([[predictor.nodes for predictor in iteration] for iteration in fitted._predictors],
            np.asarray(fitted._baseline_prediction, np.float64).reshape(-1))
