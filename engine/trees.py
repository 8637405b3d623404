"""Regression trees (CART, squared error) and bagged ensembles in numpy.

Small and dependency-free so that the data-mining sharpener runs inside QGIS, where
scikit-learn is not guaranteed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class RegressionTree:
    """A binary tree of axis-aligned splits minimising the squared error."""

    max_depth: int = 8
    min_samples_leaf: int = 5
    feature: list[int] = field(default_factory=list)
    threshold: list[float] = field(default_factory=list)
    left: list[int] = field(default_factory=list)
    right: list[int] = field(default_factory=list)
    value: list[float] = field(default_factory=list)

    def fit(self, x: np.ndarray, y: np.ndarray) -> RegressionTree:
        self.feature, self.threshold, self.left, self.right, self.value = [], [], [], [], []
        self._grow(np.asarray(x, np.float64), np.asarray(y, np.float64), depth=0)
        return self

    def predict(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, np.float64)
        feature, threshold = np.array(self.feature), np.array(self.threshold)
        left, right, value = np.array(self.left), np.array(self.right), np.array(self.value)
        node = np.zeros(len(x), np.int64)
        for _ in range(self.max_depth):
            inner = left[node] >= 0
            if not inner.any():
                break
            goes_left = x[np.arange(len(x)), np.maximum(feature[node], 0)] <= threshold[node]
            node = np.where(inner, np.where(goes_left, left[node], right[node]), node)
        return value[node]

    def _grow(self, x: np.ndarray, y: np.ndarray, depth: int) -> int:
        index = len(self.value)
        self.feature.append(-1)
        self.threshold.append(0.0)
        self.left.append(-1)
        self.right.append(-1)
        self.value.append(float(y.mean()))
        if depth >= self.max_depth or len(y) < 2 * self.min_samples_leaf:
            return index
        split = _best_split(x, y, self.min_samples_leaf)
        if split is None:
            return index
        feature, threshold = split
        goes_left = x[:, feature] <= threshold
        self.feature[index], self.threshold[index] = feature, threshold
        self.left[index] = self._grow(x[goes_left], y[goes_left], depth + 1)
        self.right[index] = self._grow(x[~goes_left], y[~goes_left], depth + 1)
        return index


def _best_split(x: np.ndarray, y: np.ndarray, min_leaf: int) -> tuple[int, float] | None:
    """The (feature, threshold) with the largest reduction of squared error, if any."""
    n = len(y)
    best_gain, best = 0.0, None
    base = y.sum() ** 2 / n
    counts = np.arange(1, n)
    allowed = (counts >= min_leaf) & (n - counts >= min_leaf)
    for feature in range(x.shape[1]):
        order = np.argsort(x[:, feature], kind="stable")
        xs, ys = x[order, feature], y[order]
        left_sum = np.cumsum(ys)[:-1]
        right_sum = ys.sum() - left_sum
        gain = left_sum**2 / counts + right_sum**2 / (n - counts) - base
        gain = np.where(allowed & (xs[1:] > xs[:-1]), gain, -np.inf)
        i = int(np.argmax(gain))
        if gain[i] > best_gain + 1e-12:
            best_gain, best = float(gain[i]), (feature, float((xs[i] + xs[i + 1]) / 2))
    return best


@dataclass
class BaggedTrees:
    """Bootstrap-aggregated regression trees; keeps the out-of-bag mean squared error."""

    n_trees: int = 5
    max_depth: int = 8
    min_samples_leaf: int = 5
    seed: int = 0
    trees: list[RegressionTree] = field(default_factory=list)
    oob_mse: float = float("nan")

    def fit(self, x: np.ndarray, y: np.ndarray) -> BaggedTrees:
        rng = np.random.default_rng(self.seed)
        n = len(y)
        oob_sum, oob_count = np.zeros(n), np.zeros(n)
        self.trees = []
        for _ in range(self.n_trees):
            sample = rng.integers(0, n, n)
            tree = RegressionTree(self.max_depth, self.min_samples_leaf).fit(x[sample], y[sample])
            self.trees.append(tree)
            out = np.setdiff1d(np.arange(n), sample)
            if out.size:
                oob_sum[out] += tree.predict(x[out])
                oob_count[out] += 1
        seen = oob_count > 0
        if seen.any():
            self.oob_mse = float(np.mean((oob_sum[seen] / oob_count[seen] - y[seen]) ** 2))
        return self

    def predict(self, x: np.ndarray) -> np.ndarray:
        return self.predict_each(x).mean(axis=0)

    def predict_each(self, x: np.ndarray) -> np.ndarray:
        """(n_trees, n): every tree's prediction; their spread measures the ensemble's uncertainty."""
        return np.stack([tree.predict(x) for tree in self.trees])
