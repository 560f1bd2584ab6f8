"""scikit-learn's internals (pipelines/upstream/sklearn.py): a fitted HistGradientBoosting's trees, walked as the
fence reads them, give scikit-learn's own raw scores."""

import numpy as np
from sklearn.ensemble import HistGradientBoostingRegressor

from pipelines.upstream import sklearn as fence


def _walk(nodes, row) -> float:
    node = nodes[0]
    while not node["is_leaf"]:
        node = nodes[node["left"] if row[node["feature_idx"]] <= node["num_threshold"] else node["right"]]
    return float(node["value"])


def test_the_trees_and_the_baseline_add_up_to_the_models_own_prediction():
    import sklearn
    assert sklearn.__version__.startswith(fence.TESTED + ".")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 3))
    fitted = HistGradientBoostingRegressor(max_iter=20, random_state=0).fit(x, x[:, 0] * x[:, 1])
    iterations, baseline = fence.boosted_trees(fitted)
    assert len(iterations) == 20 and all(len(trees) == 1 for trees in iterations) and baseline.shape == (1,)
    walked = [baseline[0] + sum(_walk(trees[0], row) for trees in iterations) for row in x[:50]]
    np.testing.assert_allclose(walked, fitted.predict(x[:50]), rtol=1e-6, atol=1e-9)
