"""How good synthetic rows are: fidelity, detectability, usefulness and
privacy, with numpy only (no scikit-learn at run time).

The measures follow SDMetrics (the field's standard, MIT), so the numbers
read as its reports do:

- column shapes: the Kolmogorov-Smirnov complement 1 - KS per numeric
  column (SDMetrics `KSComplement`), averaged;
- pair trends: 1 - |r_real - r_synthetic| / 2 per pair of columns,
  Pearson's r (`CorrelationSimilarity`), averaged;
- the quality score: the mean of the two (SDMetrics' single-table
  `QualityReport`);
- detection: 1 - mean(2 max(AUC, 0.5) - 1) over 3 cross-validation folds
  of a logistic regression telling real rows from synthetic ones
  (`LogisticDetection`): 1 means indistinguishable;
- machine-learning efficacy with a target column: a model trained on the
  synthetic rows and tested on held-out real rows (R^2 of a ridge
  regression, or the accuracy of a logistic regression for a target of
  at most `MAX_CLASSES` values), next to the same model trained on the
  real training rows;
- privacy: each synthetic row's distance to its closest training row
  (DCR, columns in training standard deviations) against the held-out
  real rows' distance to the training rows; a ratio of medians below 1
  means synthetic rows sit closer to training rows than new real rows do
  (copies), and `exact_copies` counts synthetic rows equal to a training
  row.

Missing values in the real rows are left out column by column (shapes),
pair by pair (trends), and filled with the column's training mean
elsewhere.
"""

import numpy as np

# A target with at most this many distinct values is a class label.
MAX_CLASSES = 10
# Rows used by the pairwise measures (detection, distances), at most.
MAX_ROWS = 5000
DETECTION_FOLDS = 3
# A synthetic row this close to a training row (in training standard
# deviations, the rounding of the distance computation) copies it.
COPY_DISTANCE = 1e-6


def ks_complement(real, synthetic):
  """1 - the two-sample Kolmogorov-Smirnov statistic of two 1-D samples
  (NaN ignored); in [0, 1], 1 for identical empirical distributions."""
  real = np.sort(real[~np.isnan(real)])
  synthetic = np.sort(synthetic[~np.isnan(synthetic)])
  points = np.concatenate([real, synthetic])
  gap = np.abs(np.searchsorted(real, points, side="right") / len(real) -
               np.searchsorted(synthetic, points, side="right") /
               len(synthetic))
  return 1.0 - float(gap.max())


def correlation_similarity(real, synthetic):
  """1 - |r_real - r_synthetic| / 2 for every pair of columns, [D, D]
  (NaN on the diagonal and for a constant column); rows with a missing
  value in the pair are left out of that pair."""
  width = real.shape[1]
  result = np.full([width, width], np.nan)
  for i in range(width):
    for j in range(i + 1, width):
      r = [_pearson(data[:, i], data[:, j]) for data in (real, synthetic)]
      result[i, j] = result[j, i] = 1.0 - abs(r[0] - r[1]) / 2.0
  return result


def _pearson(a, b):
  keep = ~(np.isnan(a) | np.isnan(b))
  a, b = a[keep], b[keep]
  if len(a) < 2 or a.std() == 0 or b.std() == 0:
    return np.nan
  return float(np.corrcoef(a, b)[0, 1])


def roc_auc(labels, scores):
  """Area under the ROC curve (ties count one half), labels in {0, 1}."""
  labels = np.asarray(labels, bool)
  ranks = _average_ranks(np.asarray(scores, np.float64))
  positives, negatives = labels.sum(), (~labels).sum()
  if positives == 0 or negatives == 0:
    return np.nan
  return float((ranks[labels].sum() - positives * (positives + 1) / 2) /
               (positives * negatives))


def _average_ranks(values):
  order = np.argsort(values, kind="mergesort")
  ranks = np.empty(len(values))
  ranks[order] = np.arange(1, len(values) + 1)
  sorted_values = values[order]
  starts = np.flatnonzero(np.r_[True, sorted_values[1:] != sorted_values[:-1]])
  ends = np.r_[starts[1:], len(values)]
  for start, end in zip(starts, ends):
    if end - start > 1:
      ranks[order[start:end]] = (start + end + 1) / 2.0
  return ranks


def fit_logistic(x, labels, num_classes, l2=1e-3, iterations=50):
  """Multinomial logistic regression by Newton's method on the mean
  log-loss plus l2 / 2 |W|^2 (intercepts not penalised); x [N, D] should
  be standardised. Returns W [D + 1, num_classes]."""
  design = np.hstack([x, np.ones([len(x), 1])])
  targets = np.eye(num_classes)[labels]
  weights = np.zeros([design.shape[1], num_classes])
  penalty = np.full(design.shape[1], l2)
  penalty[-1] = 0.0
  size = weights.size
  for _ in range(iterations):
    probabilities = _softmax(design @ weights)
    gradient = design.T @ (probabilities - targets) / len(x) + (
        penalty[:, None] * weights)
    # The Hessian of the mean log-loss, [D+1, C, D+1, C], one block of
    # X^T diag(p_a (1[a = b] - p_b)) X at a time.
    jacobian = _softmax_jacobian(probabilities)
    hessian = np.empty([design.shape[1], num_classes, design.shape[1],
                        num_classes])
    for a in range(num_classes):
      for b in range(num_classes):
        hessian[:, a, :, b] = (design.T * jacobian[:, a, b]) @ design / len(x)
    hessian = hessian.reshape(size, size) + np.diag(
        np.repeat(penalty, num_classes) + 1e-8)
    step = np.linalg.solve(hessian, gradient.reshape(size)).reshape(
        weights.shape)
    weights -= step
    if np.abs(step).max() < 1e-8:
      break
  return weights


def _softmax_jacobian(probabilities):
  """diag(p) - p p^T per row: [N, C, C]."""
  return (probabilities[:, :, None] * np.eye(probabilities.shape[1]) -
          probabilities[:, :, None] * probabilities[:, None, :])


def _softmax(logits):
  logits = logits - logits.max(axis=1, keepdims=True)
  e = np.exp(logits)
  return e / e.sum(axis=1, keepdims=True)


def predict_logistic(weights, x):
  """Class probabilities [N, C] of `fit_logistic`'s weights."""
  return _softmax(np.hstack([x, np.ones([len(x), 1])]) @ weights)


def detection_score(real, synthetic, seed=0):
  """SDMetrics' LogisticDetection: a logistic regression (L2, C = 1, on
  columns centred by their median and scaled by their interquartile
  range, gaps filled with the mean) learns to tell real rows from
  synthetic ones; with the AUC of each of 3 stratified folds, the score is
  1 - mean(2 max(AUC, 0.5) - 1): 1 when they cannot be told apart, 0 when
  they always can. Up to MAX_ROWS rows of each.

  Returns:
    (score, mean AUC).
  """
  rng = np.random.default_rng(seed)
  real, synthetic = _subsample(real, rng), _subsample(synthetic, rng)
  x = np.vstack([real, synthetic])
  labels = np.r_[np.zeros(len(real), int), np.ones(len(synthetic), int)]
  folds = np.empty(len(x), int)
  for label in (0, 1):
    index = np.flatnonzero(labels == label)
    folds[rng.permutation(index)] = np.arange(len(index)) % DETECTION_FOLDS
  aucs = []
  for fold in range(DETECTION_FOLDS):
    train, test = folds != fold, folds == fold
    mean = np.nanmean(x[train], axis=0)
    filled = _filled(x, mean)
    center = np.median(filled[train], axis=0)
    spread = np.subtract(*np.percentile(filled[train], [75, 25], axis=0))
    spread = np.where(spread > 0, spread, 1.0)
    scaled = (filled - center) / spread
    # scikit-learn's C = 1 on the summed log-loss is this on the mean for
    # the symmetric two-class softmax (whose logit is w_1 - w_0).
    weights = fit_logistic(scaled[train], labels[train], 2,
                           l2=2.0 / train.sum())
    scores = predict_logistic(weights, scaled[test])[:, 1]
    aucs.append(roc_auc(labels[test], scores))
  aucs = np.array(aucs)
  return (float(1.0 - np.mean(2.0 * np.maximum(aucs, 0.5) - 1.0)),
          float(np.mean(aucs)))


def _subsample(x, rng, limit=MAX_ROWS):
  if len(x) <= limit:
    return x
  return x[np.sort(rng.choice(len(x), limit, replace=False))]


def _standardization(x):
  loc = np.nanmean(x, axis=0)
  scale = np.nanstd(x, axis=0)
  return loc, np.where(scale > 0, scale, 1.0)


def _filled(x, loc):
  return np.where(np.isnan(x), loc, x)


def ml_efficacy(train, test, target, l2=1e-3):
  """Trains on `train` rows [N, D] and tests on `test` rows to predict
  column `target` from the others: R^2 of a ridge regression, or, for a
  target of at most MAX_CLASSES distinct values, a logistic regression's
  accuracy. Returns (metric name, value)."""
  train = train[~np.isnan(train[:, target])]
  test = test[~np.isnan(test[:, target])]
  features = [j for j in range(train.shape[1]) if j != target]
  loc, scale = _standardization(train[:, features])
  x_train = (_filled(train[:, features], loc) - loc) / scale
  x_test = (_filled(test[:, features], loc) - loc) / scale
  levels = np.unique(np.concatenate([train[:, target], test[:, target]]))
  if len(levels) <= MAX_CLASSES:
    y_train = np.searchsorted(levels, train[:, target])
    y_test = np.searchsorted(levels, test[:, target])
    weights = fit_logistic(x_train, y_train, len(levels), l2)
    predicted = predict_logistic(weights, x_test).argmax(axis=1)
    return "accuracy", float(np.mean(predicted == y_test))
  design = np.hstack([x_train, np.ones([len(x_train), 1])])
  penalty = np.full(design.shape[1], l2 * len(x_train))
  penalty[-1] = 0.0
  coefficients = np.linalg.solve(design.T @ design + np.diag(penalty),
                                 design.T @ train[:, target])
  predicted = np.hstack([x_test, np.ones([len(x_test), 1])]) @ coefficients
  residual = np.sum((test[:, target] - predicted) ** 2)
  total = np.sum((test[:, target] - test[:, target].mean()) ** 2)
  return "r2", float(1.0 - residual / total) if total > 0 else np.nan


def closest_distances(rows, reference, block=1024):
  """Each row's Euclidean distance to its nearest reference row, [N]
  (both already scaled and without gaps)."""
  squared_reference = np.sum(reference**2, axis=1)
  result = np.empty(len(rows))
  for start in range(0, len(rows), block):
    part = rows[start:start + block]
    squared = (np.sum(part**2, axis=1)[:, None] + squared_reference[None] -
               2.0 * part @ reference.T)
    result[start:start + block] = np.sqrt(np.maximum(squared.min(axis=1), 0))
  return result


def privacy(train, holdout, synthetic, seed=0):
  """Distances to the closest training row (DCR), in training standard
  deviations: medians for the synthetic rows and for held-out real rows,
  their ratio (below 1: synthetic rows sit closer to training rows than
  new real rows do), and how many synthetic rows copy a training row
  exactly. Up to MAX_ROWS rows of each set."""
  rng = np.random.default_rng(seed)
  loc, scale = _standardization(train)
  train_s = (_filled(_subsample(train, rng, 4 * MAX_ROWS), loc) - loc) / scale
  distances = {}
  for name, rows in (("synthetic", synthetic), ("holdout", holdout)):
    rows = (_filled(_subsample(rows, rng), loc) - loc) / scale
    distances[name] = closest_distances(rows, train_s)
  median_synthetic = float(np.median(distances["synthetic"]))
  median_holdout = float(np.median(distances["holdout"]))
  return {
      "dcr_synthetic_median": median_synthetic,
      "dcr_holdout_median": median_holdout,
      "dcr_ratio": (median_synthetic / median_holdout if median_holdout > 0
                    else np.nan),
      "exact_copies": int(np.sum(distances["synthetic"] < COPY_DISTANCE)),
      "synthetic_rows_compared": len(distances["synthetic"]),
  }


def report(train, holdout, synthetic, feature_names=None, target=None,
           seed=0):
  """The fidelity and privacy report of synthetic rows.

  Args:
    train: the real rows the model was trained on, float [N, D] (NaN:
      missing).
    holdout: real rows it did not see, [M, D]: the reference that
      synthetic rows are judged against.
    synthetic: [S, D] rows without gaps.
    feature_names: optional column names.
    target: optional column index for machine-learning efficacy.
    seed: int, for the subsamples and folds.

  Returns:
    A JSON-ready dict: `quality_score`, `column_shapes` (mean and per
    column), `column_pair_trends`, `detection`, `ml_efficacy` (with a
    target), `privacy`, and the same measures for the training rows
    themselves against the held-out rows (`ceiling`), which no synthesizer
    is expected to beat.
  """
  names = list(feature_names) if feature_names is not None else [
      f"column_{j + 1}" for j in range(train.shape[1])]

  def measures(rows, with_privacy):
    shapes = [ks_complement(holdout[:, j], rows[:, j])
              for j in range(rows.shape[1])]
    trends = correlation_similarity(holdout, rows)
    upper = trends[np.triu_indices(len(names), 1)]
    trend_score = float(np.nanmean(upper)) if np.isfinite(upper).any() else (
        np.nan)
    shape_score = float(np.mean(shapes))
    detection, auc = detection_score(holdout, _filled(
        rows, np.nanmean(train, axis=0)), seed)
    result = {
        "quality_score": float(np.nanmean([shape_score, trend_score])),
        "column_shapes": {"score": shape_score,
                          "per_column": dict(zip(names, shapes))},
        "column_pair_trends": {"score": trend_score},
        "detection": {"score": detection, "auc": auc},
    }
    if target is not None:
      metric, value = ml_efficacy(rows, holdout, target)
      result["ml_efficacy"] = {"target": names[target], "metric": metric,
                               "value": value}
    if with_privacy:
      result["privacy"] = privacy(train, holdout, rows, seed)
    return result

  result = measures(synthetic, with_privacy=True)
  result["ceiling"] = measures(train, with_privacy=False)
  result["rows"] = {"train": len(train), "holdout": len(holdout),
                    "synthetic": len(synthetic)}
  return result


def markdown(result, title="Synthetic data report"):
  """A short Markdown summary of `report`'s result."""
  ceiling = result["ceiling"]
  lines = [f"# {title}", "",
           f"Rows: {result['rows']['synthetic']:,} synthetic, judged against "
           f"{result['rows']['holdout']:,} held-out real rows; "
           f"{result['rows']['train']:,} training rows.", "",
           "| measure | synthetic | training rows (ceiling) |",
           "| --- | --- | --- |"]

  def row(label, a, b):
    lines.append(f"| {label} | {a:.3f} | {b:.3f} |")

  row("quality score (SDMetrics)", result["quality_score"],
      ceiling["quality_score"])
  row("column shapes (KS complement)", result["column_shapes"]["score"],
      ceiling["column_shapes"]["score"])
  row("column pair trends (correlation)",
      result["column_pair_trends"]["score"],
      ceiling["column_pair_trends"]["score"])
  row("detection (1 = indistinguishable)", result["detection"]["score"],
      ceiling["detection"]["score"])
  if "ml_efficacy" in result:
    efficacy = result["ml_efficacy"]
    row(f"ML efficacy ({efficacy['metric']} for {efficacy['target']})",
        efficacy["value"], ceiling["ml_efficacy"]["value"])
  p = result["privacy"]
  lines += ["",
            f"Privacy: median distance to the closest training row "
            f"{p['dcr_synthetic_median']:.3f} for synthetic rows against "
            f"{p['dcr_holdout_median']:.3f} for held-out real rows (ratio "
            f"{p['dcr_ratio']:.2f}; below 1, synthetic rows sit closer to "
            f"training rows than new real rows do); {p['exact_copies']} of "
            f"{p['synthetic_rows_compared']:,} synthetic rows copy a training "
            "row exactly.", ""]
  return "\n".join(lines)
