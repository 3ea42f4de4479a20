"""Imputation by importance sampling: E[x_mis | x_obs] with its predictive
spread, and draws from p(x_mis | x_obs) by sampling importance resampling
(Rubin 1987), for the model, the served scorer and the file command."""

import numpy as np
import tensorflow as tf

from tfvae import keyed_random
from tfvae import objectives
from tfvae import runtime
from tfvae import validation
from tfvae.inference import importance
from tfvae.inference import levels
from tfvae.inference import sampling


def weighted_moments(log_weights, x_mean, x_variance):
  """Self-normalised weighted moments of x over K importance samples.

  Args:
    log_weights: float64 [K, B].
    x_mean, x_variance: float64 [K, B, D], the likelihood's moments at
      each z_k, in data units.

  Returns:
    (log sum w [B], mean [B, D], second moment [B, D]).
  """
  total = tf.reduce_logsumexp(log_weights, axis=0)
  weights = tf.exp(log_weights - total)[..., None]  # [K, B, 1]

  def weighted(value):
    return tf.reduce_sum(tf.where(weights > 0, weights * value, 0.0), 0)

  return total, weighted(x_mean), weighted(x_variance + tf.square(x_mean))


def weighted_levels(log_weights, level_probability):
  """Self-normalised weighted level probabilities over K samples:
  log_weights [K, B], level_probability [K, B, C, A] -> float64 [B, C, A],
  each categorical column's P(level | x_obs)."""
  weights = tf.exp(log_weights - tf.reduce_logsumexp(log_weights, axis=0))
  return tf.einsum("kb,kbca->bca", weights,
                   tf.cast(level_probability, tf.float64))


def calibrated_levels(model, level_probability):
  """The level probabilities [B, C, A] (Tensor or numpy) that imputation
  uses: the model's, blended with each column's frequencies by the weights
  of `VAE.calibrate_levels` (`tfvae.inference.levels`), if it has them."""
  if getattr(model, "level_calibration", None) is None:
    return level_probability
  weights, shares = levels.as_arrays(model.level_calibration,
                                     int(level_probability.shape[-1]))
  return levels.blend(level_probability, weights, shares)


def fill_levels(model, mean, spread_, level_probability):
  """Puts each categorical column's most probable level (its code) in
  `mean` [B, D] and the probability that it is wrong in `spread_` [B, D]:
  the imputation of a category is a level, not an average of codes. The
  probabilities are the calibrated ones (`calibrated_levels`).
  Tensors or numpy arrays; returns the pair."""
  columns = [i for i, n in enumerate(model.num_levels) if n]
  level_probability = calibrated_levels(model, level_probability)
  if tf.is_tensor(mean):
    code = tf.cast(tf.argmax(level_probability, -1), mean.dtype)  # [B, C]
    wrong = 1.0 - tf.reduce_max(level_probability, -1)
    width = model.input_dim
    scatter = tf.one_hot(columns, width, dtype=mean.dtype)  # [C, D]
    mask = tf.reduce_sum(scatter, 0) > 0
    mean = tf.where(mask, tf.matmul(code, scatter), mean)
    spread_ = tf.where(mask, tf.matmul(tf.cast(wrong, mean.dtype), scatter),
                       spread_)
    return mean, spread_
  mean, spread_ = np.array(mean), np.array(spread_)
  mean[:, columns] = np.argmax(level_probability, -1)
  spread_[:, columns] = 1.0 - np.max(level_probability, -1)
  return mean, spread_


def to_data_units(model, mean, spread_):
  """Imputations in working units -> data units (`Standardization`): a
  positive column's predictive mean m and standard deviation s of log x
  become the mean and standard deviation of a log-normal with those
  moments, exp(m + s^2 / 2) and exp(m + s^2 / 2) sqrt(exp(s^2) - 1) (the
  exact moments for a Gaussian family; a Student's t on the log scale has
  no finite mean in data units); a count column's mean its nearest
  integer. Tensors or numpy arrays [B, D]; returns the pair."""
  standardization = model.standardization
  if not (standardization.has_positive or standardization.has_count):
    return mean, spread_
  as_numpy = not tf.is_tensor(mean)
  mean = tf.convert_to_tensor(mean, tf.float64)
  spread_ = tf.convert_to_tensor(spread_, tf.float64)
  if standardization.has_positive:
    # A log-normal with the predictive's log-scale mean and variance: its
    # mean exp(m + s^2 / 2) and standard deviation; where s is infinite (a
    # Student's t with df <= 2), the median exp(m) and an infinite spread.
    positive = tf.constant(standardization.positive_mask)
    finite = tf.math.is_finite(spread_)
    variance = tf.where(finite, tf.square(spread_), tf.zeros([], tf.float64))
    log_mean = mean + 0.5 * variance
    deviation = tf.exp(log_mean) * tf.sqrt(tf.math.expm1(variance))
    spread_ = tf.where(positive, tf.where(finite, deviation, spread_),
                       spread_)
    mean = tf.where(positive, log_mean, mean)
  mean = standardization.from_working(mean)
  if as_numpy:
    return mean.numpy(), spread_.numpy()
  return mean, spread_


def spread(mean, second):
  """The predictive standard deviation from the mean and the second moment
  (law of total variance); infinite where the second moment is (a
  Student's t with df <= 2). Tensors or numpy arrays."""
  if tf.is_tensor(second):
    return tf.where(tf.math.is_inf(second), second,
                    tf.sqrt(tf.maximum(second - tf.square(mean), 0.0)))
  with np.errstate(invalid="ignore"):
    result = np.sqrt(np.maximum(second - mean**2, 0.0))
  return np.where(np.isinf(second), np.inf, result)


def moments(model, x, noise, first_sample):
  """Over these draws, per row: log sum w [B], and the weighted mean [B, D]
  and second moment [B, D] of x in data units."""
  out = importance.importance_sample(model, x, noise, first_sample,
                                     with_moments=True)
  result = weighted_moments(out["log_weights"], out["x_mean"],
                            out["x_variance"])
  if "level_probability" in out:
    result += (weighted_levels(out["log_weights"], out["level_probability"]),)
  return result


def merge_moments(first, second):
  """Combines the moments of two disjoint sets of draws of the same rows
  (each a (log sum w, mean, second moment[, level probabilities]) of
  numpy arrays)."""
  if first is None:
    return second
  total = np.logaddexp(first[0], second[0])
  old_share = np.exp(first[0] - total)[:, None]
  new_share = np.exp(second[0] - total)[:, None]
  merged = (total, old_share * first[1] + new_share * second[1],
            old_share * first[2] + new_share * second[2])
  if len(first) > 3:
    merged += (old_share[..., None] * first[3] +
               new_share[..., None] * second[3],)
  return merged


def draws(model, x, noise, uniforms, as_recorded=False):
  """Sampling importance resampling: for each of M draws, z from the
  weighted samples, then x from p(x|z); [M, B, D] in data units.

  `uniforms` [M, 1 + 2 D] are shared by every row (as `noise` is): the
  first picks the sample by inverse CDF of the row's weights, the next D
  the mixture components (with atoms), the last D the family's quantiles,
  so a row's draws do not depend on other rows. With `as_recorded`, each
  column within its training range and on its resolution
  (`tfvae.inference.sampling.draw_given_z`).
  """
  out = importance.importance_sample(model, x, noise)
  log_weights = out["log_weights"]  # [K, B]
  weights = tf.exp(log_weights - tf.reduce_logsumexp(log_weights, 0))
  cumulative = tf.cumsum(tf.transpose(weights), axis=-1)  # [B, K]
  picks = tf.cast(uniforms[:, 0], tf.float64)  # [M]
  index = tf.searchsorted(
      cumulative, tf.broadcast_to(picks, [tf.shape(cumulative)[0],
                                          tf.shape(picks)[0]]))  # [B, M]
  index = tf.minimum(index, tf.shape(weights)[0] - 1)
  z = tf.gather(tf.transpose(out["z"], [1, 0, 2]), index, batch_dims=1)
  z = tf.transpose(z, [1, 0, 2])  # [M, B, L]
  shape = tf.concat([tf.shape(z)[:-1], [model.input_dim]], 0)
  components = tf.broadcast_to(uniforms[:, None, 1:1 + model.input_dim], shape)
  values = tf.broadcast_to(uniforms[:, None, 1 + model.input_dim:], shape)
  return sampling.draw_given_z(model, z, components, values, as_recorded,
                              calibrated_levels=True)


def effective_sample_size(log_weights):
  """Kish's effective sample size of importance weights, (sum w)^2 /
  sum w^2, per row: log_weights [K, B] -> [B], in [1, K]. Few effective
  samples mean the draws of a row repeat few latent codes."""
  return tf.exp(2.0 * tf.reduce_logsumexp(log_weights, 0) -
                tf.reduce_logsumexp(2.0 * log_weights, 0))


def impute(model, x, num_samples=1000, seed=None, num_imputations=None,
           return_std=False, verbose=0, as_recorded=False):
  """Fills missing values from p(x_mis | x_obs), by importance sampling.

  With q(z|x_obs) (the proposal of `marginal_log_likelihood`) and
  self-normalised weights w_k proportional to p(x_obs, z_k) / q(z_k):
  E[x_mis | x_obs] ~= sum_k w_k E[x_mis | z_k], and the predictive
  variance is sum_k w_k (Var[x_mis | z_k] + E[x_mis | z_k]^2) minus the
  square of the mean (law of total variance). With `num_imputations=M`,
  M draws from p(x_mis | x_obs) by sampling importance resampling, for
  multiple imputation. Observed entries are returned bit for bit, and a
  row's result does not depend on the other rows.

  Args:
    model: a `tfvae.VAE`.
    x: float array [N, input_dim] in data units; NaN marks what to fill.
    num_samples: importance samples K per row.
    seed: optional int in [0, 2**63); None follows the global seed.
    num_imputations: optional int M: return M draws instead of the mean.
    return_std: with the mean, also return the predictive standard
      deviation per entry (0 where observed; infinite where a Student's t
      likelihood has df <= 2). A categorical column is filled with its
      most probable level given x_obs, and its "std" is the probability
      that this level is wrong.
    verbose: 1 shows a progress line.
    as_recorded: with `num_imputations`, each drawn value within its
      column's training range and on its resolution (as `sample` draws).

  Returns:
    float64 [N, input_dim] (and the std [N, input_dim] with
    `return_std`), or with `num_imputations` float64 [M, N, input_dim].
  """
  x = validation.validate_array(model.encode_table(x), "x", model.input_dim,
                                   expected_names=model.feature_names)
  num_samples = validation.check_num_samples(num_samples)
  validation.warn_if_untrained(model, "imputing")
  seed_pair = keyed_random.seed_pair(seed)
  noise = tf.random.stateless_normal([num_samples, model.latent_dim],
                                     seed=seed_pair)
  missing = np.isnan(x)
  gaps = np.flatnonzero(missing.any(axis=1))
  progress = runtime.Progress("imputing", len(gaps), "rows",
                              enabled=bool(verbose))
  if num_imputations is not None:
    count = validation.check_num_imputations(num_imputations, len(x),
                                           model.input_dim)
    if num_samples > importance.MAX_DECODED_ROWS:
      raise ValueError(f"num_imputations needs num_samples <= "
                       f"{importance.MAX_DECODED_ROWS}, got {num_samples}")
    uniforms = tf.random.stateless_uniform(
        [count, 1 + 2 * model.input_dim],
        seed=tf.random.experimental.stateless_split(seed_pair, 2)[1],
        dtype=tf.float64)
    result = np.repeat(x[None], count, axis=0)
    rows_per_chunk = max(
        1, importance.decoding_budget(num_samples) // num_samples)
    for start in range(0, len(gaps), rows_per_chunk):
      rows = gaps[start:start + rows_per_chunk]
      drawn = model.imputation_draws(tf.constant(x[rows]), noise, uniforms,
                                     as_recorded=as_recorded).numpy()
      result[:, rows] = np.where(missing[rows], drawn, x[rows])
      progress.update(start + len(rows))
    progress.close()
    return result
  imputed, std = x.copy(), np.zeros_like(x)
  row_slices, sample_slices = objectives.compute_iwae_chunks(
      len(gaps), num_samples, importance.decoding_budget(num_samples))
  for chunk in row_slices:
    rows = gaps[chunk]
    merged = _row_moments(model, x[rows], noise, sample_slices)
    mean, deviation = merged[1], spread(merged[1], merged[2])
    if len(merged) > 3:
      mean, deviation = fill_levels(model, mean, deviation, merged[3])
    mean, deviation = to_data_units(model, mean, deviation)
    imputed[rows] = np.where(missing[rows], mean, x[rows])
    std[rows] = np.where(missing[rows], deviation, 0.0)
    progress.update(chunk.stop)
  progress.close()
  return (imputed, std) if return_std else imputed


def _row_moments(model, x, noise, sample_slices):
  """The moments of `moments` (numpy) of rows x [B, D] over the draws
  `noise` [K, L], taken in `sample_slices`."""
  merged = None
  for samples in sample_slices:
    merged = merge_moments(merged, tuple(t.numpy() for t in (
        model.imputation_moments(tf.constant(x),
                                 noise[samples.start:samples.stop],
                                 tf.constant(samples.start)))))
  return merged


def level_probabilities(model, x, num_samples=1000, seed=None):
  """The model's own P(level | x_obs) of each categorical column (before
  `calibrated_levels`), by the importance sampling of `impute`.

  Args:
    model: a `tfvae.VAE` with categorical columns.
    x: float array [N, input_dim] in data units (codes for categorical
      columns; NaN: missing).
    num_samples: importance samples K per row.
    seed: optional int; the draws of `impute` with the same seed.

  Returns:
    float64 [N, C, A]: column c's (the c-th categorical one) probability
    of level a in slot a, 0 past its levels.
  """
  x = np.asarray(x, np.float64)
  noise = tf.random.stateless_normal([num_samples, model.latent_dim],
                                     seed=keyed_random.seed_pair(seed))
  row_slices, sample_slices = objectives.compute_iwae_chunks(
      len(x), num_samples, importance.decoding_budget(num_samples))
  return np.concatenate([_row_moments(model, x[chunk], noise,
                                      sample_slices)[3]
                         for chunk in row_slices])


# Held-out rows per column that `calibrate_levels` hides and imputes.
MAX_CALIBRATION_ROWS = 2000


def calibrate_levels(model, x, frequency_rows=None, num_samples=100,
                     seed=None):
  """Fits each categorical column's weight of `tfvae.inference.levels` on
  held-out rows and keeps it in `model.level_calibration`.

  For each categorical column, the rows of x where it is observed (at most
  MAX_CALIBRATION_ROWS) have that cell hidden and imputed; the weight of
  the model's level probabilities against the column's frequencies is the
  one that gives the true levels the highest total log probability
  (`levels.fit_weight`; 0 where the gain is at most
  `levels.MIN_GAIN_NATS`).

  Args:
    model: a `tfvae.VAE` with categorical columns.
    x: float array or DataFrame [N, input_dim]: rows the model did not
      train on.
    frequency_rows: optional rows (array or DataFrame) whose level
      frequencies the blend uses, e.g. every row the model saw and x;
      None: x's.
    num_samples: importance samples K per row.
    seed: optional int.

  Returns:
    dict {column name: (weight, gain in nats, rows)}.
  """
  columns = [i for i, n in enumerate(model.num_levels) if n]
  if not columns:
    raise ValueError("calibrate_levels needs a model with categorical "
                     "columns")
  x = validation.validate_array(model.encode_table(x), "x", model.input_dim,
                                expected_names=model.feature_names)
  reference = x if frequency_rows is None else validation.validate_array(
      model.encode_table(frequency_rows), "frequency_rows", model.input_dim,
      expected_names=model.feature_names)
  num_samples = validation.check_num_samples(num_samples)
  names = model.feature_names or tuple(
      f"column {i + 1}" for i in range(model.input_dim))
  weights, shares, report = [], [], {}
  for slot, column in enumerate(columns):
    count = model.num_levels[column]
    column_frequencies = levels.frequencies(reference[:, column], count)
    rows = np.flatnonzero(~np.isnan(x[:, column]))[:MAX_CALIBRATION_ROWS]
    hidden = x[rows].copy()
    truth = hidden[:, column].astype(np.int64)
    hidden[:, column] = np.nan
    weight, gain = 0.0, 0.0
    if len(rows):
      probabilities = level_probabilities(model, hidden, num_samples,
                                          seed)[:, slot, :count]
      weight, gain = levels.fit_weight(probabilities, truth,
                                       column_frequencies)
    weights.append(weight)
    shares.append([float(v) for v in column_frequencies])
    report[names[column]] = (weight, gain, len(rows))
  model.level_calibration = {"weights": weights, "frequencies": shares}
  return report


# Conditional generation raises its importance samples (x4 at a time, up to
# MAX_CONDITION_SAMPLES) until the condition has this many effective ones:
# with 100, resampling still narrowed the spread of probabilistic PCA's
# conditional by up to 12% (towards the proposal); with 1,000, within the
# Monte Carlo error (tests/test_sampling.py).
MIN_EFFECTIVE_SAMPLES = 1000
MAX_CONDITION_SAMPLES = importance.MAX_DECODED_ROWS
# Below this many effective samples a condition is improbable under the
# model: its draws repeat a few latent codes (a warning, and a count in
# `tfvae-sample --complete`'s summary).
RARE_EFFECTIVE_SAMPLES = 50


def condition_samples(model, x, num_samples=1000, seed=None):
  """How many importance samples a condition needs, and what they give.

  Starting from `num_samples`, multiplies K by 4 until the condition's
  effective sample size reaches MIN_EFFECTIVE_SAMPLES or K reaches
  MAX_CONDITION_SAMPLES. A condition the model finds improbable (a value
  in a tail, an unusual combination) has weights dominated by a few
  samples; its draws would repeat those few latent codes.

  Args:
    model: a `tfvae.VAE`.
    x: float [input_dim]: the given values, NaN for those to draw.
    num_samples: the first K.
    seed: optional int.

  Returns:
    (K, effective sample size): Python int and float.
  """
  x = tf.constant(np.asarray(x, np.float64)[None])
  seed_pair = keyed_random.seed_pair(seed)
  num_samples = min(int(num_samples), MAX_CONDITION_SAMPLES)
  while True:
    noise = tf.random.stateless_normal([num_samples, model.latent_dim],
                                       seed=seed_pair)
    ess = float(model.effective_sample_size(x, noise)[0])
    if ess >= MIN_EFFECTIVE_SAMPLES or num_samples >= MAX_CONDITION_SAMPLES:
      return num_samples, ess
    num_samples = min(4 * num_samples, MAX_CONDITION_SAMPLES)


def iter_conditional_draws(model, x, num_examples, num_samples=1000,
                           seed=None, as_recorded=True):
  """Draws rows from p(x_mis | x_obs) for one condition, chunk by chunk.

  The sampling importance resampling of multiple imputation (`draws`),
  with fresh importance samples for every chunk of at most `num_samples`
  rows, so that many rows do not all resample the same K latent codes.

  Args:
    model: a `tfvae.VAE`.
    x: float [input_dim]: the given values, NaN for those to draw.
    num_examples: rows to draw.
    num_samples: importance samples K per chunk (see `condition_samples`).
    seed: optional int; row i depends only on it and i.
    as_recorded: each drawn value within its column's training range and
      on its resolution.

  Yields:
    float64 numpy arrays [<= num_samples, input_dim]; the given values
    come back bit for bit.
  """
  x = np.asarray(x, np.float64)
  missing = np.isnan(x)
  seed_pair = keyed_random.seed_pair(seed)
  batch = tf.constant(x[None])
  chunk_rows = max(1, min(int(num_samples), importance.MAX_DECODED_ROWS))
  for index, start in enumerate(range(0, num_examples, chunk_rows)):
    count = min(chunk_rows, num_examples - start)
    noise_seed, uniform_seed = tf.unstack(
        tf.random.experimental.stateless_split(
            tf.random.experimental.stateless_fold_in(seed_pair, index), 2))
    noise = tf.random.stateless_normal([num_samples, model.latent_dim],
                                       seed=noise_seed)
    uniforms = tf.random.stateless_uniform(
        [count, 1 + 2 * model.input_dim], seed=uniform_seed,
        dtype=tf.float64)
    drawn = model.imputation_draws(batch, noise, uniforms,
                                   as_recorded=as_recorded).numpy()[:, 0]
    yield np.where(missing, drawn, x)
