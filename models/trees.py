"""A fitted tree ensemble as tensor operations, so it ships in the same graph as a network (the "GEMM" form of
Hummingbird, Nakandala et al. 2020): every tree's splits are evaluated at once, and matrix products find the leaf
each example reaches.

For T trees of at most N splits and L leaves, over a feature vector x:
  left[t, n]    = x[feature[t, n]] <= threshold[t, n]       (1.0 or 0.0: does split n of tree t send x left?)
  reached[t, l] = (left[t] · paths[t, :, l] == lefts[t, l])   (paths: +1 where leaf l lies left of split n,
                                                               −1 right of it, 0 elsewhere; lefts: the number of
                                                               +1 entries: every left turn on l's path taken and
                                                               no right one missed)
                  computed as > lefts − 0.5 (the product is never above lefts), which holds where an 8-bit product's
                  scales round it (LiteRT's dynamic-range kernels)
  output        = reached (flattened) · values + bias         (values: each leaf's value in its output's column)
Trees with fewer splits or leaves are padded with splits on no path and leaves of value 0. The sums are of small
integers, so the leaf found is the tree's own.
"""

import keras
import numpy as np
from keras import layers, ops


def tree_arrays(trees, outputs: int) -> dict[str, np.ndarray]:
    """Trees as arrays for TreeEnsemble. `trees`: (output column, nodes) per tree, nodes a sequence of
    (feature, threshold, left child, right child, is_leaf, value), the root first, x[feature] <= threshold going
    to the left child."""
    splits = max(1, max(sum(not node[4] for node in nodes) for _, nodes in trees))
    leaves = max(sum(bool(node[4]) for node in nodes) for _, nodes in trees)
    arrays = {"features": np.zeros((len(trees), splits), np.int32),
              "thresholds": np.zeros((len(trees), splits), np.float32),
              "paths": np.zeros((len(trees), splits, leaves), np.float32),
              "lefts": np.zeros((len(trees), leaves), np.float32),
              "values": np.zeros((len(trees), leaves, outputs), np.float32)}
    for t, (column, nodes) in enumerate(trees):
        split_at = {i: n for n, i in enumerate(i for i, node in enumerate(nodes) if not node[4])}
        leaf_at = {i: n for n, i in enumerate(i for i, node in enumerate(nodes) if node[4])}
        for i, n in split_at.items():
            arrays["features"][t, n], arrays["thresholds"][t, n] = nodes[i][0], nodes[i][1]
        stack = [(0, ())]
        while stack:
            i, path = stack.pop()
            feature, threshold, left, right, is_leaf, value = nodes[i]
            if is_leaf:
                leaf = leaf_at[i]
                for split, went_left in path:
                    arrays["paths"][t, split, leaf] = 1.0 if went_left else -1.0
                arrays["lefts"][t, leaf] = sum(went_left for _, went_left in path)
                arrays["values"][t, leaf, column] = value
            else:
                stack += [(left, (*path, (split_at[i], True))), (right, (*path, (split_at[i], False)))]
    return arrays


@keras.saving.register_keras_serializable(package="dlpipe")
class TreeEnsemble(layers.Layer):
    """A feature vector [batch, features] → the sum of its trees' leaf values plus `bias` [batch, outputs]: the raw
    score of a gradient-boosted ensemble (logits for a classifier). The arrays are weights (saved with the model,
    not in its config); `set_trees` loads tree_arrays' into them."""

    def __init__(self, trees: int, splits: int, leaves: int, outputs: int, **kwargs):
        super().__init__(**kwargs)
        self.trees, self.splits, self.leaves, self.outputs = trees, splits, leaves, outputs

    def build(self, input_shape):
        t, n, leaves, k = self.trees, self.splits, self.leaves, self.outputs
        self.features = self.add_weight(shape=(t * n,), dtype="int32", initializer="zeros", trainable=False,
                                        name="features")
        self.thresholds = self.add_weight(shape=(t, n), initializer="zeros", trainable=False, name="thresholds")
        self.paths = self.add_weight(shape=(t, n, leaves), initializer="zeros", trainable=False, name="paths")
        self.lefts = self.add_weight(shape=(t, leaves), initializer="zeros", trainable=False, name="lefts")
        self.values = self.add_weight(shape=(t * leaves, k), initializer="zeros", trainable=False, name="values")
        self.bias = self.add_weight(shape=(k,), initializer="zeros", trainable=False, name="bias")

    def set_trees(self, arrays: dict[str, np.ndarray], bias: np.ndarray) -> None:
        self.features.assign(arrays["features"].reshape(-1))
        self.thresholds.assign(arrays["thresholds"])
        self.paths.assign(arrays["paths"])
        self.lefts.assign(arrays["lefts"])
        self.values.assign(arrays["values"].reshape(self.trees * self.leaves, self.outputs))
        self.bias.assign(np.asarray(bias, np.float32))

    def call(self, x):
        picked = ops.reshape(ops.take(x, self.features, axis=1), (-1, self.trees, self.splits))
        left = ops.cast(ops.less_equal(picked, self.thresholds), x.dtype)
        turns = ops.einsum("btn,tnl->btl", left, self.paths)
        reached = ops.cast(ops.greater(turns, self.lefts - 0.5), x.dtype)  # turns <= lefts: equal, to rounding
        return ops.matmul(ops.reshape(reached, (-1, self.trees * self.leaves)), self.values) + self.bias

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.outputs)

    def get_config(self):
        return {**super().get_config(), "trees": self.trees, "splits": self.splits, "leaves": self.leaves,
                "outputs": self.outputs}


def tree_ensemble(arrays: dict[str, np.ndarray], bias: np.ndarray, name: str = "trees") -> TreeEnsemble:
    """A built TreeEnsemble holding `arrays` (tree_arrays') and `bias`."""
    trees, splits, leaves = arrays["paths"].shape
    layer = TreeEnsemble(trees, splits, leaves, arrays["values"].shape[-1], name=name, dtype="float32")
    layer.build((None, None))
    layer.set_trees(arrays, bias)
    return layer
