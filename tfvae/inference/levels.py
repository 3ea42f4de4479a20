"""Imputing a category: the model's level probabilities given a row,
recalibrated on held-out rows towards the column's level frequencies.

A categorical column's imputation is its most probable level given the
row's observed cells, P(level | x_obs) from importance sampling. On a
small table a column that the other columns barely predict (a customer's
sex from their balance) gets probabilities that move around its
frequencies by the noise of the fit, and their most probable level is
then worse than the column's mode. The remedy is the one of a calibrated
classifier: each categorical column c gets a weight w_c in [0, 1], and
imputation uses

    P_c(level | x_obs) = w_c P_model(level | x_obs) + (1 - w_c) f_c(level),

with f_c the column's level frequencies. w_c maximises the held-out log
probability of the true levels of rows whose c cell was hidden (a proper
scoring rule; the mixture's log probability is concave in w), and is
kept only where it gains more than `MIN_GAIN_NATS` over w = 0 summed over
those rows (Akaike's penalty for the one parameter): a column the model
does not predict falls back to its frequencies, one it predicts keeps
the model (w near 1).

Only imputation and draws given observed cells use the weights
(`VAE.impute`, `tfvae-impute`, the served scorer's `impute`, conditional
`sample`); the likelihood, anomaly scores and unconditional samples are
the model's own. `tfvae-train` calibrates on its validation rows with the
frequencies of all its rows (`VAE.calibrate_levels`).

The functions take numpy arrays (`fit_weight`, `frequencies`) or work in
both numpy and TensorFlow (`blend`).
"""

import numpy as np
import tensorflow as tf

# A weight is kept only if it raises the held-out log probability of the
# true levels by more than this many nats in total (Akaike's criterion for
# one parameter); otherwise the column's frequencies are used.
MIN_GAIN_NATS = 1.0
# Weights tried (the mixture's held-out log probability is concave in the
# weight; a grid of this many points finds its maximum to 1e-3).
GRID_POINTS = 1001


def frequencies(codes, num_levels):
  """Level frequencies of a column's observed codes.

  Args:
    codes: float array [N], codes 0 .. num_levels - 1 (NaN: missing).
    num_levels: int L.

  Returns:
    float64 [L], summing to 1 (uniform if nothing is observed).
  """
  codes = np.asarray(codes, np.float64)
  seen = codes[~np.isnan(codes)].astype(np.int64)
  if len(seen) == 0:
    return np.full(num_levels, 1.0 / num_levels)
  counts = np.bincount(seen, minlength=num_levels)[:num_levels]
  return counts / counts.sum()


def fit_weight(probabilities, truth, column_frequencies):
  """The weight w of the model's level probabilities for one column.

  Args:
    probabilities: float [N, L], the model's P(level | x_obs) of N rows
      whose column was hidden.
    truth: int [N], their true codes.
    column_frequencies: float [L].

  Returns:
    (w, gain): w in [0, 1] maximising sum_i log(w p_i + (1 - w) f)[truth_i],
    or 0 if that sum gains at most `MIN_GAIN_NATS` over w = 0; gain is the
    gain of the maximiser in nats (summed over the rows).
  """
  probabilities = np.asarray(probabilities, np.float64)
  truth = np.asarray(truth, np.int64)
  if len(truth) == 0:
    return 0.0, 0.0
  rows = np.arange(len(truth))
  model = probabilities[rows, truth]  # [N]
  marginal = np.asarray(column_frequencies, np.float64)[truth]  # [N]
  grid = np.linspace(0.0, 1.0, GRID_POINTS)[:, None]  # [G, 1]
  with np.errstate(divide="ignore"):
    totals = np.sum(np.log(grid * model + (1.0 - grid) * marginal), axis=1)
  best = int(np.argmax(totals))
  if not np.isfinite(totals[best]):
    return 0.0, 0.0
  gain = float(totals[best] - totals[0]) if np.isfinite(totals[0]) else (
      float("inf"))
  if gain <= MIN_GAIN_NATS:
    return 0.0, gain
  return float(grid[best, 0]), gain


def blend(probabilities, weights, column_frequencies):
  """w P_model + (1 - w) f per categorical column.

  Args:
    probabilities: float [..., C, A] (numpy or Tensor): each of the C
      categorical columns' level probabilities (level i in slot i; 0 past
      its levels).
    weights: float64 [C].
    column_frequencies: float64 [C, A].

  Returns:
    The blended probabilities, of `probabilities`' type and dtype.
  """
  weights = np.asarray(weights, np.float64)[:, None]
  column_frequencies = np.asarray(column_frequencies, np.float64)
  if tf.is_tensor(probabilities):
    dtype = probabilities.dtype
    return (tf.constant(weights, dtype) * probabilities +
            tf.constant((1.0 - weights) * column_frequencies, dtype))
  return weights * probabilities + (1.0 - weights) * column_frequencies


def as_arrays(calibration, num_slots):
  """A model's `level_calibration` ({"weights": [C], "frequencies": [C]
  lists of each column's L_c frequencies}) as (weights float64 [C],
  frequencies float64 [C, num_slots], zero past a column's levels)."""
  weights = np.asarray(calibration["weights"], np.float64)
  table = np.zeros([len(weights), num_slots])
  for row, shares in enumerate(calibration["frequencies"]):
    table[row, :len(shares)] = shares
  return weights, table


def check(calibration, num_levels):
  """A `level_calibration` checked against the model's categorical columns
  (`num_levels`: each column's level count, 0 for a numeric column);
  returns it with float lists, or None."""
  if calibration is None:
    return None
  counts = [n for n in num_levels if n]
  weights = [float(w) for w in calibration["weights"]]
  shares = [[float(v) for v in row] for row in calibration["frequencies"]]
  if len(weights) != len(counts) or [len(row) for row in shares] != counts:
    raise ValueError(
        f"level_calibration has {len(weights)} weights and frequencies of "
        f"{[len(row) for row in shares]} levels; the model's categorical "
        f"columns have {counts} levels")
  if not all(0.0 <= w <= 1.0 for w in weights):
    raise ValueError(f"level_calibration weights must lie in [0, 1], got "
                     f"{weights}")
  return {"weights": weights, "frequencies": shares}
