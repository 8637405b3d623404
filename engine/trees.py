"""Bagged regression trees with linear leaves, many grown at once, in numpy.

The data-mining sharpener fits one bagged ensemble for the scene and one for every moving
window of a tile: hundreds of small trees. They are grown together, level by level, so the
work is a few array operations per level instead of per node:

- every feature is cut into ``bins`` quantile bins within each group of samples (a window,
  or the scene), and split gains come from per-node histograms (``np.bincount``);
- a tree grows best-first: each level splits the nodes with the largest gains while the tree
  has fewer than ``max_leaves`` leaves;
- bagging draws Poisson(1) counts per sample and tree (the bootstrap for many trees at once);
- each leaf then fits a ridge-shrunken linear model of its samples, clamped near the range of
  their values, so that the prediction varies smoothly within a leaf (Gao et al. 2012, 2.1).

Small and dependency-free so that the sharpener runs inside QGIS, where scikit-learn is not
guaranteed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Pixels per prediction chunk: the per-tree arrays of a chunk stay within the CPU caches.
PREDICT_CHUNK_PX = 1 << 14


@dataclass(frozen=True)
class ForestSettings:
    trees: int = 10
    max_leaves: int = 30
    min_samples_leaf: int = 10
    bins: int = 32
    # Shrinkage of each leaf's slopes, in samples of standardised features (0: least squares).
    ridge: float = 10.0
    # A leaf's output may leave the range of its samples' values by this share of the range.
    extrapolation: float = 0.25
    max_depth: int = 16


@dataclass
class Forest:
    """Trees in flat node arrays; tree ``g * trees + t`` (bagged tree t of group g) has root node
    ``g * trees + t``. An inner node sends x to ``child[n]`` if ``x[feature[n]] < threshold[n]``,
    else to ``child[n] + 1``; a leaf points at itself with an infinite threshold, so walking
    ``depth`` levels lands every sample on its leaf. Leaf n predicts
    ``clip(intercept[n] + slope[:, n] . x, low[n], high[n])``."""

    feature: np.ndarray  # (nodes,) int32
    threshold: np.ndarray  # (nodes,) float32
    child: np.ndarray  # (nodes,) int32
    intercept: np.ndarray  # (nodes,) float32
    slope: np.ndarray  # (C, nodes) float32
    low: np.ndarray  # (nodes,) float32
    high: np.ndarray  # (nodes,) float32
    groups: int
    trees: int
    depth: int

    @property
    def leaves(self) -> int:
        return int(np.isinf(self.threshold).sum())

    def predict_trees(self, x: np.ndarray, group: np.ndarray | int = 0) -> np.ndarray:
        """Every tree's prediction (trees, N) for features ``x`` (C, N), each pixel by the trees
        of its ``group`` (a scalar or (N,) ints)."""
        channels, count = x.shape
        group = np.broadcast_to(np.asarray(group, np.int32), (count,))
        out = np.empty((self.trees, count), np.float32)
        offsets = np.arange(self.trees, dtype=np.int32)[:, None]
        for start in range(0, count, PREDICT_CHUNK_PX):
            part = slice(start, min(start + PREDICT_CHUNK_PX, count))
            chunk = np.ascontiguousarray(x[:, part].T, np.float32)
            out[:, part] = self._walk(chunk, group[part][None, :] * self.trees + offsets)
        return out

    def _walk(self, x: np.ndarray, node: np.ndarray) -> np.ndarray:
        """Leaf outputs (trees, n) for pixels ``x`` (n, C) starting at root nodes ``node`` (trees, n)."""
        flat = x.ravel()
        base = np.arange(0, flat.size, x.shape[1], dtype=np.int32)
        for level in range(self.depth):
            node = self.child[node] + (flat[base + self.feature[node]] >= self.threshold[node])
            if level % 4 == 3 and np.isinf(self.threshold[node]).all():
                break
        out = self.intercept[node]
        for channel, slope in enumerate(self.slope):
            out += slope[node] * x[:, channel]
        return np.clip(out, self.low[node], self.high[node], out=out)


def fit_forest(
    x: np.ndarray,
    y: np.ndarray,
    weight: np.ndarray,
    group: np.ndarray,
    groups: int,
    settings: ForestSettings,
    rng: np.random.Generator,
) -> Forest:
    """Grow ``settings.trees`` bagged trees for each of ``groups`` groups of samples.

    ``x`` (n, C) features, ``y`` (n,) targets, ``weight`` (n,) sample weights, ``group`` (n,)
    the group of each sample (a sample in several groups appears once per group).
    """
    x = np.asarray(x, np.float64)
    y = np.asarray(y, np.float64)
    group = np.asarray(group, np.int64)
    bins, edges = _quantile_bins(x, group, groups, settings.bins)
    trees = settings.trees
    counts = rng.poisson(1.0, (trees, len(y)))
    tree_of_row, row = np.nonzero(counts)
    count = counts[tree_of_row, row].astype(np.float64)
    grown = _grow(
        bins,
        edges,
        y[row] - y.mean(),
        count * np.asarray(weight, np.float64)[row],
        count,
        row,
        group[row] * trees + tree_of_row,
        groups * trees,
        settings,
    )
    feature, threshold, child, leaf_of_row, depth = grown
    intercept, slope, low, high = _leaf_models(
        x, y, np.asarray(weight, np.float64), row, count, leaf_of_row, len(feature), settings
    )
    return Forest(
        np.maximum(feature, 0).astype(np.int32),
        threshold.astype(np.float32),
        child.astype(np.int32),
        intercept.astype(np.float32),
        slope.astype(np.float32),
        low.astype(np.float32),
        high.astype(np.float32),
        groups,
        trees,
        depth,
    )


def _quantile_bins(
    x: np.ndarray, group: np.ndarray, groups: int, n_bins: int
) -> tuple[np.ndarray, np.ndarray]:
    """Each sample's bin per feature (C, n), quantile bins within its group with ties in one bin,
    and the thresholds (groups, C, n_bins) that separate bins <= b from bins > b."""
    n, channels = x.shape
    sizes = np.bincount(group, minlength=groups)
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    bins = np.empty((channels, n), np.int64)
    edges = np.empty((groups, channels, n_bins))
    for c in range(channels):
        order = np.lexsort((x[:, c], group))
        xs, gs = x[order, c], group[order]
        rank = np.arange(n) - starts[gs]
        b = rank * n_bins // np.maximum(sizes[gs], 1)
        tie_start = np.ones(n, bool)
        tie_start[1:] = (xs[1:] != xs[:-1]) | (gs[1:] != gs[:-1])
        b = b[np.maximum.accumulate(np.where(tie_start, np.arange(n), 0))]
        bins[c, order] = b
        # Sorted by group, then value: each (group, bin) is one run, its ends the bin's extremes.
        key = gs * n_bins + b
        last = np.ones(n, bool)
        last[:-1] = key[1:] != key[:-1]
        top = np.full(groups * n_bins, -np.inf)
        bottom = np.full(groups * n_bins, np.inf)
        top[key[last]] = xs[last]
        first = first_of_run(key)
        bottom[key[first]] = xs[first]
        top, bottom = top.reshape(groups, n_bins), bottom.reshape(groups, n_bins)
        below = np.maximum.accumulate(top, axis=1)
        above = np.minimum.accumulate(bottom[:, ::-1], axis=1)[:, ::-1]
        above = np.concatenate([above[:, 1:], np.full((groups, 1), np.inf)], axis=1)
        middle = ((below + above) / 2).astype(np.float32)
        # A threshold rounded down onto the lower value would send it right: use the upper one.
        edges[:, c] = np.where(middle > below, middle, above)
    return bins, edges


def first_of_run(key: np.ndarray) -> np.ndarray:
    """Where each run of equal values of ``key`` starts."""
    first = np.ones(len(key), bool)
    first[1:] = key[1:] != key[:-1]
    return first


def _grow(bins, edges, y, weight, count, row, tree, n_trees, settings):
    """Best-first growth of every tree at once on the binned samples; returns node arrays, each
    row's leaf and the depth."""
    channels, n_bins = bins.shape[0], edges.shape[2]
    capacity = n_trees * (2 * settings.max_leaves - 1)
    feature = np.full(capacity, -1, np.int64)
    threshold = np.full(capacity, np.inf)
    child = np.arange(capacity)
    node_tree = np.zeros(capacity, np.int64)
    node_tree[:n_trees] = np.arange(n_trees)
    leaves = np.ones(n_trees, np.int64)
    used = n_trees
    node = tree.copy()
    frontier = np.arange(n_trees)
    depth = 0
    group_of_tree = np.arange(n_trees) // settings.trees
    while frontier.size and depth < settings.max_depth:
        slot = np.full(used, -1)
        slot[frontier] = np.arange(frontier.size)
        rows = np.nonzero(slot[node] >= 0)[0]
        if rows.size == 0:
            break
        s = slot[node[rows]]
        size = frontier.size * n_bins
        sums = (weight[rows], weight[rows] * y[rows], count[rows])
        row_bins = bins[:, row[rows]]
        best_gain = np.full(frontier.size, -np.inf)
        best = np.zeros(frontier.size, np.int64)
        for c in range(channels):
            key = s * n_bins + row_bins[c]
            hist = np.stack([np.bincount(key, v, size).reshape(-1, n_bins) for v in sums])
            left = np.cumsum(hist, axis=-1)[..., :-1]
            total = hist.sum(axis=-1, keepdims=True)
            right = total - left
            with np.errstate(divide="ignore", invalid="ignore"):
                gain = left[1] ** 2 / left[0] + right[1] ** 2 / right[0] - total[1] ** 2 / total[0]
            allowed = (
                (left[2] >= settings.min_samples_leaf)
                & (right[2] >= settings.min_samples_leaf)
                & (left[0] > 0)
                & (right[0] > 0)
            )
            gain = np.where(allowed, gain, -np.inf)
            b = np.argmax(gain, axis=1)
            g = gain[np.arange(frontier.size), b]
            better = g > best_gain
            best_gain = np.where(better, g, best_gain)
            best = np.where(better, c * (n_bins - 1) + b, best)
        # Gains below float rounding of the node's total are no split.
        scale = total[1, :, 0] ** 2 / np.maximum(total[0, :, 0], 1e-300)
        candidate = np.nonzero(best_gain > 1e-9 * np.abs(scale) + 1e-12)[0]
        if candidate.size == 0:
            break
        trees_of = node_tree[frontier[candidate]]
        order = np.lexsort((-best_gain[candidate], trees_of))
        candidate, trees_of = candidate[order], trees_of[order]
        first = np.searchsorted(trees_of, trees_of)
        rank = np.arange(candidate.size) - first
        chosen = candidate[rank < settings.max_leaves - leaves[trees_of]]
        if chosen.size == 0:
            break
        split = frontier[chosen]
        c_best, b_best = np.divmod(best[chosen], n_bins - 1)
        children = used + 2 * np.arange(split.size)
        used += 2 * split.size
        feature[split] = c_best
        threshold[split] = edges[group_of_tree[node_tree[split]], c_best, b_best]
        child[split] = children
        node_tree[children] = node_tree[children + 1] = node_tree[split]
        np.add.at(leaves, node_tree[split], 1)
        split_slot = np.full(frontier.size, -1)
        split_slot[chosen] = np.arange(split.size)
        moving = rows[split_slot[s] >= 0]
        k = split_slot[slot[node[moving]]]
        node[moving] = children[k] + (bins[c_best[k], row[moving]] > b_best[k])
        frontier = children.reshape(-1, 1) + np.array([0, 1])
        frontier = frontier.ravel()
        depth += 1
    return feature[:used], threshold[:used], child[:used], node, depth


def _leaf_models(x, y, weight, row, count, leaf, nodes, settings):
    """Per leaf: a weighted ridge regression of y on the standardised features, expressed on the
    raw features, and the clamp range of its output."""
    channels = x.shape[1]
    mean, std = x.mean(axis=0), np.maximum(x.std(axis=0), 1e-12)
    z = np.ascontiguousarray(((x[row] - mean) / std).T)
    w = count * weight[row]
    yr = y[row] - y.mean()
    sw = np.bincount(leaf, w, nodes)
    safe = np.maximum(sw, 1e-300)
    y_mean = np.bincount(leaf, w * yr, nodes) / safe
    wz = w * z
    z_mean = np.stack([np.bincount(leaf, wz[c], nodes) for c in range(channels)], axis=1) / safe[:, None]
    cov = np.empty((nodes, channels, channels))
    for i in range(channels):
        for j in range(i, channels):
            cov[:, i, j] = cov[:, j, i] = np.bincount(leaf, wz[i] * z[j], nodes) / safe
    cov -= z_mean[:, :, None] * z_mean[:, None, :]
    cross = np.stack([np.bincount(leaf, wz[c] * yr, nodes) for c in range(channels)], axis=1) / safe[:, None]
    cross -= z_mean * y_mean[:, None]
    shrink = settings.ridge / np.maximum(np.bincount(leaf, count, nodes), 1.0)
    system = cov + (shrink[:, None, None] + 1e-9) * np.eye(channels)
    slope_z = np.linalg.solve(system, cross[:, :, None])[:, :, 0]
    slope_z[sw <= 0] = 0.0
    slope = slope_z / std
    intercept = y.mean() + y_mean - (slope * (z_mean * std + mean)).sum(axis=1)
    order = np.argsort(leaf, kind="stable")
    starts = np.flatnonzero(first_of_run(leaf[order]))
    ys = y[row][order]
    low, high = np.zeros(nodes), np.zeros(nodes)
    at = leaf[order][starts]
    low[at], high[at] = np.minimum.reduceat(ys, starts), np.maximum.reduceat(ys, starts)
    reach = settings.extrapolation * (high - low)
    return intercept, slope.T, low - reach, high + reach
