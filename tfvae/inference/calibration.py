"""What an anomaly score means next to held-out normal rows.

A bare -log p(x) in nats leaves the user guessing where "strange" starts.
The scores of rows the model did not train on (`tfvae-train`'s validation
rows, or any rows passed to `VAE.calibrate`) are kept as a reference, as
at most `MAX_POINTS` of their quantiles; a new score is then reported as
its **percentile** among them (the share of reference rows that score
lower, interpolated between the kept quantiles), and a **contamination**
c becomes a threshold: the reference's (1 - c) quantile.

The functions come in numpy (`percentile`, `threshold`) and in TensorFlow
(`tf_percentile`, for the exported scorer), computing the same numbers.
Importing this module does not import TensorFlow.
"""

import numpy as np

from tfvae import validation

# Importance samples per row of an anomaly score by default: K = 100 ranks
# rows as K = 1000 does (Spearman 0.98 to 0.999 on wdbc, breastw and
# default; the AUROC moves by at most 0.01) at a tenth of the cost
# (`scripts/bench_score_k.py`, docs/benchmarks.md).
SCORE_SAMPLES = 100
# Quantiles kept of the reference scores: the percentile's resolution is
# 0.1 percentage points.
MAX_POINTS = 1001


def reference_quantiles(scores, max_points=MAX_POINTS):
  """The reference kept of held-out scores: all of them sorted when there
  are at most `max_points`, else their quantiles at `max_points` evenly
  spaced probabilities from 0 to 1 (both extremes included).

  Args:
    scores: float array [N] of anomaly scores (N >= 2), finite.

  Returns:
    float64 array [min(N, max_points)], non-decreasing.
  """
  scores = np.asarray(scores, np.float64).ravel()
  if len(scores) < 2 or not np.isfinite(scores).all():
    raise ValueError("reference scores must be at least 2 finite numbers, "
                     f"got {len(scores)} with "
                     f"{int(np.sum(~np.isfinite(scores)))} not finite")
  if len(scores) <= max_points:
    return np.sort(scores)
  return np.quantile(scores, np.linspace(0.0, 1.0, max_points))


def required(quantiles):
  """The reference, or a `ValueError` saying how to get one."""
  if quantiles is None:
    raise ValueError(
        "the model has no reference scores: call model.calibrate(x) on "
        "held-out normal rows (tfvae-train keeps its validation rows' "
        "scores; train with a validation split)")
  return quantiles


def percentile(quantiles, scores):
  """Each score's percentile among the reference, in [0, 100].

  The reference's empirical distribution, linear between its kept
  quantiles: 0 at or below the lowest reference score, 100 at or above
  the highest.

  Args:
    quantiles: float array [Q] from `reference_quantiles`.
    scores: float array [...] of anomaly scores.

  Returns:
    float64 array shaped like `scores` (NaN where a score is NaN).
  """
  scores = np.asarray(scores, np.float64)
  unique, at = _steps(quantiles)
  return np.where(np.isnan(scores), np.nan,
                  np.interp(scores, unique, at, left=0.0, right=100.0))


def _steps(quantiles):
  """The distinct reference scores and the percentile at each: a tie
  counts every reference row at or below it (np.interp needs strictly
  increasing points)."""
  quantiles = np.asarray(quantiles, np.float64)
  probabilities = np.linspace(0.0, 100.0, len(quantiles))
  unique, last = np.unique(quantiles[::-1], return_index=True)
  return unique, probabilities[::-1][last]


def threshold(quantiles, contamination):
  """The score above which a share `contamination` of the reference lies.

  Args:
    quantiles: float array [Q] from `reference_quantiles`.
    contamination: float in (0, 0.5], the expected share of anomalies.

  Returns:
    Python float: the reference's (1 - contamination) quantile.
  """
  contamination = validation.check_contamination(contamination)
  quantiles = np.asarray(quantiles, np.float64)
  return float(np.interp(1.0 - contamination,
                         np.linspace(0.0, 1.0, len(quantiles)), quantiles))


def tf_percentile(quantiles, scores):
  """`percentile` in TensorFlow: quantiles float64 [Q] (a constant of the
  graph), scores float64 [B] -> float64 [B]."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  unique, at = _steps(quantiles)
  if len(unique) == 1:  # every reference score equal: a step
    step = tf.where(scores >= unique[0], tf.constant(100.0, tf.float64),
                    tf.constant(0.0, tf.float64))
    return tf.where(tf.math.is_nan(scores), scores, step)
  points = tf.constant(unique)
  values = tf.constant(at)
  # The segment [points[i - 1], points[i]] holding each score.
  index = tf.clip_by_value(
      tf.searchsorted(points, scores, side="right"), 1, len(unique) - 1)
  left, right = tf.gather(points, index - 1), tf.gather(points, index)
  low, high = tf.gather(values, index - 1), tf.gather(values, index)
  fraction = tf.clip_by_value((scores - left) / (right - left), 0.0, 1.0)
  inside = low + fraction * (high - low)
  result = tf.where(scores < points[0], tf.constant(0.0, tf.float64),
                    tf.where(scores >= points[-1],
                             tf.constant(100.0, tf.float64), inside))
  return tf.where(tf.math.is_nan(scores), scores, result)
