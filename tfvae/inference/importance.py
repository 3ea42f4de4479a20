"""Importance sampling of p(x_obs) (Burda et al. 2016): the proposal, the
draws keyed by each row, the importance weights, and the chunked estimate
of the marginal log-likelihood in nats."""

import math

import numpy as np
import tensorflow as tf

from tfvae import keyed_random
from tfvae import objectives
from tfvae import runtime
from tfvae import validation

# (row, sample) pairs decoded at once: bounds memory at about 64k x the
# widest layer floats, in the model's estimates and in the served scorer.
MAX_DECODED_ROWS = 65536
# Encode -> decode -> fill rounds that complete a row with gaps for the
# importance-sampling proposal (see `proposal`).
REFINE_STEPS = 10
# `keyed_noise` keys a row's importance samples by its standardised values
# on a grid of cells a quarter of a standard deviation wide: rows apart by
# more than that in any column get independent draws, and a column shifted
# by 1e9 (whose standardised values move in their last bits, about 1e-7
# standard deviations) crosses a cell boundary with a chance of about 1e-6
# per value, so it keeps its draws.
NOISE_KEY_RESOLUTION = 4.0
# Rows with gaps: draws of a pilot from the first proposal, whose weighted
# moments place the adapted components (`proposal`), and the fixed seed of
# their noise (the same for every row and call, so a row's proposal
# depends on the row alone).
PILOT_SAMPLES = 63
_PILOT_SEED = (20261130, 7)
# An adapted component is never narrower than this share of the refined
# posterior's scale (a pilot dominated by one draw has no spread).
ADAPTED_MIN_SCALE = 0.5
ADAPTATION_ROUNDS = 2


def decoding_budget(num_samples, max_decoded_rows=None):
  """The (row, sample) pairs a chunk of rows with gaps may decode with K =
  `num_samples`, so that with each row's pilots (`PILOT_SAMPLES` per
  adaptation round) a chunk still decodes at most `max_decoded_rows`
  (default `MAX_DECODED_ROWS`)."""
  if max_decoded_rows is None:
    max_decoded_rows = MAX_DECODED_ROWS
  pilots = PILOT_SAMPLES * ADAPTATION_ROUNDS
  return max(1, max_decoded_rows * num_samples // (num_samples + pilots))


def proposal(model, u, observed, gaps=True):
  """The importance-sampling proposal's components, [C, B, latent_dim] each.

  Rows without missing values use q(z|x) alone (all C components equal
  it). A row with gaps mixes, in equal parts (one in seven each):
  q(z|x_obs) as the encoder gives it; the encoder's posterior at the row
  completed by the model's own predictions (`REFINE_STEPS` rounds of
  encode -> decode -> fill), and that posterior widened by
  1.5 sqrt(D / n_observed); a Gaussian adapted to the row, twice, and the
  same twice as wide (population Monte Carlo, Cappe et al. 2004: the
  weighted mean and spread of `PILOT_SAMPLES` pilot draws from the mixture
  so far, `ADAPTATION_ROUNDS` times); and the prior (defensive importance
  sampling, Hesterberg 1995: no weight exceeds 7 max_z p(x_obs|z), so the
  estimates' variance is finite and falls as 1/K).

  Measured on probabilistic PCA with 30% of values hidden, RMSE of the
  imputations against the model's exact conditional mean (data units,
  K = 1,000): without the prior, imputations were no better at K = 10,000
  than at 1,000 (0.19 and 0.06 sd for two seeds); with it but without
  adaptation 0.125 and 0.06 (a few rows with one or two observed values
  carried the error: median 0.007); adapted, 0.043 and 0.021 (median
  0.003), which puts the imputations' RMSE against the true values within
  0.3% of the exact conditional mean's. Any proposal gives a valid
  estimate; this mixture stays tight both for models trained on complete
  data, whose encoder never saw a gap, and for models trained with gaps.

  Args:
    model: a `tfvae.VAE`.
    u: float64 [B, input_dim], standardised x.
    observed: bool [B, input_dim].
    gaps: Python bool; False promises that no value is missing, which
      spares tracing the refinement.

  Returns:
    (locs, scales), float32 [C, B, latent_dim] with C = 7.
  """
  trained = model.posterior_from_standard(u, observed)
  has_gap = tf.reduce_any(tf.logical_not(observed), axis=-1, keepdims=True)
  complete = tf.ones_like(observed)

  def refine():
    # A graph loop rather than a Python one: the step is traced once, not
    # REFINE_STEPS times (the same operations, the same numbers).
    def step(index, loc, unused_scale):
      predicted, _ = model.likelihood_head.mean_and_variance(
          model.standard_likelihood_parameters(loc))
      filled = tf.where(observed, u, tf.cast(predicted, u.dtype))
      posterior = model.posterior_from_standard(filled, complete)
      return index + 1, posterior["loc"], posterior["scale"]
    _, loc, scale = tf.while_loop(
        lambda index, *_: index < REFINE_STEPS, step,
        (tf.constant(0), trained["loc"], trained["scale"]))
    return loc, scale

  if not gaps:  # known complete: no refinement to trace
    return (tf.stack([trained["loc"]] * 7), tf.stack([trained["scale"]] * 7))
  loc, scale = tf.cond(tf.reduce_any(has_gap), refine,
                       lambda: (trained["loc"], trained["scale"]))
  loc = tf.where(has_gap, loc, trained["loc"])
  scale = tf.where(has_gap, scale, trained["scale"])
  # With n of D values observed, a posterior is roughly sqrt(D / n) times
  # wider than the encoder's, which saw a completed row.
  observed_count = tf.reduce_sum(tf.cast(observed, tf.float32), -1,
                                 keepdims=True)
  widening = 1.5 * tf.sqrt(model.input_dim / tf.maximum(observed_count, 1.0))
  # The prior, for rows with gaps: a defensive component (Hesterberg
  # 1995) that bounds every weight by 4 max_z p(x_obs|z), where the
  # encoder's components are too narrow in directions that the observed
  # values leave free (their weights would have infinite variance).
  prior_loc = tf.where(has_gap, tf.zeros_like(loc), trained["loc"])
  prior_scale = tf.where(has_gap, tf.ones_like(scale), trained["scale"])
  widened = tf.where(has_gap, widening * scale, scale)
  first = (tf.stack([trained["loc"], loc, loc] * 2 + [prior_loc]),
           tf.stack([trained["scale"], scale, widened] * 2 + [prior_scale]))
  # Adaptive importance sampling (population Monte Carlo, Cappe et al.
  # 2004): a pilot from that mixture, and a Gaussian with its weighted
  # moments, at its width and twice it, in place of the second set of the
  # encoder's components. Where the observed values pin z far from the
  # encoder's guesses (a model trained on complete rows), the first
  # mixture reaches the posterior through its wide components only, and a
  # few draws carried most of the weight: the imputations of pPCA were off
  # the model's exact conditional mean by 0.13 (RMSE, data units, K =
  # 1,000; 0.04 at K = 10,000), although their median error was 0.007.
  def mixture(adapted_loc, adapted_scale):
    adapted_scale = tf.maximum(adapted_scale, ADAPTED_MIN_SCALE * scale)
    adapted_loc = tf.where(has_gap, adapted_loc, trained["loc"])
    adapted_scale = tf.where(has_gap, adapted_scale, trained["scale"])
    adapted_wide = tf.where(has_gap, 2.0 * adapted_scale, trained["scale"])
    return (tf.stack([trained["loc"], loc, loc, adapted_loc, adapted_loc,
                      adapted_loc, prior_loc]),
            tf.stack([trained["scale"], scale, widened, adapted_scale,
                      adapted_scale, adapted_wide, prior_scale]))

  def adapt():
    # Traced once, run ADAPTATION_ROUNDS times (as `refine`).
    def step(index, locs, scales):
      return (index + 1,) + mixture(*_pilot_moments(model, u, observed, locs,
                                                    scales))
    _, locs, scales = tf.while_loop(
        lambda index, *_: index < ADAPTATION_ROUNDS, step,
        (tf.constant(0),) + first)
    return locs, scales

  return tf.cond(tf.reduce_any(has_gap), adapt,
                 lambda: mixture(trained["loc"], trained["scale"]))


def _pilot_moments(model, u, observed, locs, scales):
  """The weighted mean and standard deviation of z, float32 [B, L] each,
  over `PILOT_SAMPLES` draws from the mixture (locs, scales) [C, B, L]."""
  noise = tf.random.stateless_normal([PILOT_SAMPLES, model.latent_dim],
                                     _PILOT_SEED)
  z, log_weights, _, _ = _draw_and_weigh(model, u, observed, locs, scales,
                                         noise, 0)
  weights = tf.nn.softmax(log_weights, axis=0)[..., None]  # [P, B, 1]
  z64 = tf.cast(z, tf.float64)
  mean = tf.reduce_sum(weights * z64, 0)
  variance = tf.reduce_sum(weights * tf.square(z64 - mean), 0)
  return tf.cast(mean, tf.float32), tf.cast(tf.sqrt(variance), tf.float32)


def _draw_and_weigh(model, u, observed, locs, scales, noise, first_sample):
  """z_k = loc_c + scale_c * noise_k with c = (first_sample + k) % C, and
  log p(x_obs|z) + log p(z) - log q(z) under the equal-weight mixture.

  Returns:
    (z float32 [k, B, L], log weights float64 [k, B], the likelihood's
    standardised parameters at z, each row's atom index).
  """
  num_components = locs.shape[0]
  component = (first_sample + tf.range(tf.shape(noise)[0])) % num_components
  if noise.shape.rank == 2:
    noise = noise[:, None, :]
  z = (tf.gather(locs, component) +
       tf.gather(scales, component) * noise)  # [k, B, L]
  standard = model.standard_likelihood_parameters(z)
  atom_index = model.atom_index(u)
  log_likelihood = model.log_likelihood(standard, u, observed, tf.float64,
                                        atom_index)
  z64 = tf.cast(z, tf.float64)
  log_prior = -0.5 * tf.reduce_sum(tf.square(z64), -1)
  # log q(z) under the equal-weight mixture; the Gaussian constants cancel
  # against the prior's.
  locs64, scales64 = tf.cast(locs, tf.float64), tf.cast(scales, tf.float64)
  per_component = -tf.reduce_sum(
      0.5 * tf.square((z64[:, None] - locs64) / scales64) +
      tf.math.log(scales64), -1)  # [k, C, B]
  log_proposal = (tf.reduce_logsumexp(per_component, axis=1) -
                  math.log(num_components))
  return z, objectives.compute_log_importance_weights(
      log_likelihood, log_prior, log_proposal), standard, atom_index


def importance_sample(model, x, noise, first_sample=0, with_moments=False,
                      gaps=True, with_column_log_prob=False, propose=None):
  """Importance samples z_k for estimating p(x_obs), with their log weights.

  Draw k uses the proposal component `(first_sample + k) % C` (see
  `proposal`): z_k = loc_c + scale_c * noise_k. Noise shared by every
  row, or keyed by each row's content (`keyed_noise`), makes each row's
  estimate independent of the other rows. Plain TensorFlow ops: the
  exported scorer calls this.

  Args:
    model: a `tfvae.VAE`.
    x: float [batch_size, input_dim] in data units (NaN: missing).
    noise: float32 standard-normal draws, [k, latent_dim] (the same for
      every row) or [k, batch_size, latent_dim] (one set per row).
    first_sample: index of noise[0] among all the draws (for chunks).
    with_moments: also return the likelihood's mean and variance at each
      z_k, in data units.
    gaps: Python bool; False promises that x has no missing value.
    with_column_log_prob: also return each observed value's log p(x_d|z_k)
      in standardised units (`VAE.column_log_prob`), float64 [k,
      batch_size, D], as `column_log_prob`.
    propose: optional callable(u, observed) -> (locs, scales) computing
      `proposal(model, u, observed)` (a `tf.function` that several graphs
      share, so the proposal is traced once); with gaps=True only.

  Returns:
    dict: `z` float32 [k, batch_size, latent_dim], `log_weights` float64
    [k, batch_size] (log p(x_obs|z) + log p(z) - log q(z)), `log_jacobian`
    float64 [batch_size] (`basis_offset`'s "standardized" offset); with
    `with_moments`, `x_mean` and `x_variance` float64 [k, batch_size, D],
    and with categorical columns `level_probability` float32 [k,
    batch_size, C, A], each of the C categorical columns' level
    probabilities (level i in slot i; 0 past its levels).
  """
  u, observed = model.standardize(x)
  if propose is not None and gaps:
    locs, scales = propose(u, observed)
  else:
    locs, scales = proposal(model, u, observed, gaps)
  z, log_weights, standard, atom_index = _draw_and_weigh(
      model, u, observed, locs, scales, noise, first_sample)
  out = {"z": z, "log_weights": log_weights,
         "log_jacobian": model.log_jacobian(observed, atom_index, u)}
  if with_column_log_prob:
    out["column_log_prob"] = model.column_log_prob(standard, u, observed,
                                                   tf.float64, atom_index)
  if with_moments:
    out["x_mean"], out["x_variance"] = model.likelihood_head.mean_and_variance(
        model.data_likelihood_parameters(standard))
    if model.categories is not None:
      columns = [i for i, n in enumerate(model.num_levels) if n]
      probabilities = model.likelihood_head.component_probabilities(standard)
      out["level_probability"] = tf.gather(probabilities[..., 1:], columns,
                                           axis=-2)
  return out


def score_shares(model, x, seed, num_samples, gaps):
  """Each column's share of the anomaly score of rows x, and the latent
  code's, over the keyed draws 0..K-1 of `marginal_log_likelihood`.

  A column's share is its expected surprise under the importance-weighted
  posterior, -sum_k w_k log p(x_d|z_k) (standardised units: per standard
  deviation, atoms and levels by their probability; 0 where missing); the
  latent share is what remains of the score, sum_k w_k log p(x_obs|z_k) -
  log p(x_obs) (about KL(p(z|x_obs) || p(z)): how unusual the code that
  explains the row is). The shares of a row add up to its score.

  Args:
    model: a `tfvae.VAE`.
    x: float64 [batch_size, input_dim], data units (NaN: missing).
    seed: int64 [2].
    num_samples: int, K.
    gaps: Python bool; False promises that x has no missing value.

  Returns:
    float64 [batch_size, D + 1], the latent's share last.
  """
  out = importance_sample(model, x, keyed_noise(model, x, seed, 0,
                                                num_samples),
                          gaps=gaps, with_column_log_prob=True)
  count = tf.reduce_sum(tf.cast(tf.logical_not(tf.math.is_nan(x)), tf.int32),
                        -1)
  # The anomaly score (0 for a row with nothing observed).
  score = -(log_likelihood_estimate(out["log_weights"], count) +
            out["log_jacobian"])
  weights = tf.nn.softmax(out["log_weights"], axis=0)
  # (0 - sum: a missing value's share is 0, not -0.)
  columns = 0.0 - tf.reduce_sum(weights[..., None] * out["column_log_prob"],
                                0)
  latent = score - tf.reduce_sum(columns, -1)
  return tf.concat([columns, latent[:, None]], -1)


def keyed_noise(model, x, seed, first_sample, num_samples):
  """The standard-normal draws of `marginal_log_likelihood` for rows x.

  Keyed by the seed and the row's standardised values on a grid of
  1 / `NOISE_KEY_RESOLUTION` standard deviations (and which values are
  missing): a row gets the same draws in any batch, rows in different
  grid cells get independent draws, and the draws follow the row rather
  than its units, so shifting a column by 1e9 or rescaling it (after
  `adapt`) leaves them unchanged.

  Args:
    model: a `tfvae.VAE`.
    x: float64 [batch_size, input_dim] in data units.
    seed: int64 [2].
    first_sample: int, the index of the first of these draws.
    num_samples: int, draws per row.

  Returns:
    float32 [num_samples, batch_size, latent_dim].
  """
  u, observed = model.standardize(x)
  limit = 2.0**40  # keeps the grid index exact in float64
  grid = tf.floor(tf.clip_by_value(u, -limit, limit) * NOISE_KEY_RESOLUTION)
  values = tf.where(observed, grid, tf.constant(math.nan, tf.float64))
  return keyed_random.keyed_normal(
      keyed_random.row_keys(values, seed), first_sample, num_samples,
      model.latent_dim)


def iwae_logsumexp(model, x, seed, first_sample, num_samples, gaps):
  """logsumexp_k log w_k per row over keyed draws, float64 [B]."""
  noise = keyed_noise(model, x, seed, first_sample, num_samples)
  return tf.reduce_logsumexp(importance_sample(
      model, x, noise, first_sample, gaps=gaps)["log_weights"], axis=0)


# What the nats of `marginal_log_likelihood` are measured against
# (docs/likelihoods.md): "data", densities per unit of each column and
# the probabilities of atom values; "standardized", densities per standard
# deviation of each column (the anomaly score's: it does not change with a
# column's units); "dequantized", an atom's probability spread over its
# column's resolution, a density per data unit like the rest (the basis of
# density benchmarks on discrete data; atoms of a column without a
# resolution stay probabilities).
BASES = ("data", "standardized", "dequantized")


def basis_offset(model, x, basis):
  """What turns log p(x_obs) in the "data" basis into `basis`, float64 [B].

  Args:
    model: a `tfvae.VAE`.
    x: float64 [batch_size, input_dim] in data units (NaN: missing).
    basis: one of `BASES`.
  """
  u, observed = model.standardize(x)
  atom_index = model.atom_index(u)
  if basis == "standardized":
    return model.log_jacobian(observed, atom_index, u)
  if basis == "dequantized":
    resolution = model.standardization.resolution
    at_atom = atom_index > 0
    if model.standardization.has_count:
      # A count's probability (atom or not) spread over its resolution.
      at_atom = tf.logical_or(at_atom, model.standardization.count_mask)
    counted = tf.logical_and(tf.logical_and(observed, at_atom),
                             resolution > 0)
    log_resolution = tf.math.log(tf.where(resolution > 0, resolution, 1.0))
    return -tf.reduce_sum(tf.where(counted, log_resolution, 0.0), -1)
  return tf.zeros(tf.shape(x)[:1], tf.float64)


def scores_from_log_likelihoods(model, x, log_likelihoods):
  """Anomaly scores (`anomaly_score`) of rows x [N, D] from their
  `marginal_log_likelihood` estimates [N] ("data" basis): numpy float64."""
  offset = basis_offset(model, tf.constant(np.asarray(x, np.float64)),
                        "standardized").numpy()
  return -(np.asarray(log_likelihoods) + offset)


def log_likelihood_estimate(log_weights, observed_count):
  """The importance-weighted estimate of log p(x_obs) from K log weights.

  A row with nothing observed gets 0 = log 1 (the density of no values).

  Args:
    log_weights: float64 [K, B].
    observed_count: int [B], each row's number of observed values.

  Returns:
    float64 [B], nats.
  """
  estimate = objectives.compute_iwae_log_likelihood(log_weights)
  return tf.where(observed_count > 0, estimate, tf.zeros_like(estimate))


def per_feature(log_likelihood, observed_count):
  """Each row's value divided by its number of observed values (0 when
  none is observed), so that rows with different gaps compare on one
  scale. Tensors in, tensors out (the served scorer); numpy otherwise."""
  if tf.is_tensor(log_likelihood):
    return tf.math.divide_no_nan(
        log_likelihood, tf.cast(observed_count, log_likelihood.dtype))
  observed_count = np.asarray(observed_count)
  return np.where(observed_count > 0,
                  log_likelihood / np.maximum(observed_count, 1), 0.0)


def marginal_log_likelihood(model, x, num_samples=1000, seed=None, verbose=0,
                            basis="data"):
  """Importance-weighted estimates of log p(x_obs) (Burda et al. 2016), nats.

  Uses q(z|x) as the proposal with `num_samples` draws per example. The
  draws are keyed by the seed and the row's values (`keyed_noise`), so a
  row's estimate does not depend on which rows are scored with it, while
  different rows get independent draws and the errors of a data set's
  rows average out in its mean. The
  estimate's expectation is a lower bound on log p(x) that tightens as
  `num_samples` grows. Work is split into chunks of at most 65,536
  decoded (row, sample) pairs, so memory stays bounded for any N and K.
  Log-densities are computed in float64.

  Rows with missing values get log p(x_obs), the density of their
  observed values only: rows with different numbers of observed values
  have log-likelihoods of different dimension (see `anomaly_score(...,
  per_feature=True)`). A row with nothing observed gets 0 = log 1.

  A value at one of its column's atoms contributes its probability, any
  other value its density in data units (`basis="data"`); `basis` can
  instead measure densities per standard deviation ("standardized") or
  spread each atom's probability over its column's resolution
  ("dequantized"): see `BASES`.

  Args:
    model: a `tfvae.VAE`.
    x: float array [N, input_dim], in data units (NaN: missing).
    num_samples: Python int K >= 1.
    seed: optional int in [0, 2**63), for reproducible estimates; None
      follows TensorFlow's global seed.
    verbose: 1 shows a progress line (standard error).
    basis: one of `BASES`, default "data".

  Returns:
    float64 numpy array [N], log p(x_obs) per example, in nats.
  """
  x = validation.validate_array(model.encode_table(x), "x", model.input_dim,
                                   expected_names=model.feature_names)
  num_samples = validation.check_num_samples(num_samples)
  if basis not in BASES:
    raise ValueError(f"basis must be one of {BASES}, got {basis!r}")
  validation.warn_if_untrained(model, "estimating log p(x)")
  seed_pair = keyed_random.seed_pair(seed)
  gaps = bool(np.isnan(x).any())
  progress = runtime.Progress("log-likelihood", len(x), "rows",
                              enabled=bool(verbose))

  def chunk(rows, samples):
    return model.iwae_logsumexp(
        tf.constant(x[rows]), seed_pair, tf.constant(samples.start),
        tf.constant(samples.stop - samples.start), gaps).numpy()

  estimates = objectives.compute_chunked_iwae(
      chunk, len(x), num_samples,
      decoding_budget(num_samples) if gaps else MAX_DECODED_ROWS,
      on_rows_done=progress.update)
  progress.close()
  if basis != "data":
    estimates += basis_offset(model, tf.constant(x), basis).numpy()
  estimates[np.isnan(x).all(axis=1)] = 0.0
  # A value its column's type rules out has no density or mass.
  estimates[model.standardization.impossible(x)] = -np.inf
  return estimates


def anomaly_score_shares(model, x, num_samples=100, seed=None):
  """Each column's share of the anomaly score, and the latent code's
  (`score_shares`): float64 numpy [N, D + 1], rows adding up to
  `anomaly_score(model, x, num_samples, seed)` (the same draws)."""
  x = validation.validate_array(model.encode_table(x), "x", model.input_dim,
                                expected_names=model.feature_names)
  num_samples = validation.check_num_samples(num_samples)
  validation.warn_if_untrained(model, "scoring")
  seed_pair = keyed_random.seed_pair(seed)
  gaps = bool(np.isnan(x).any())
  budget = decoding_budget(num_samples) if gaps else MAX_DECODED_ROWS
  rows = max(1, budget // num_samples)
  shares = np.zeros((len(x), model.input_dim + 1))
  for start in range(0, len(x), rows):
    shares[start:start + rows] = model.score_shares(
        tf.constant(x[start:start + rows]), seed_pair,
        tf.constant(num_samples), gaps).numpy()
  return shares


def anomaly_score(model, x, num_samples=100, seed=None, per_feature_score=False,
                  verbose=0):
  """Anomaly scores: -log p(x_obs) per example in nats; higher is stranger.

  Measured with densities per standard deviation of each column (basis
  "standardized") and atom values by their probabilities, so that a
  column's units do not change which rows rank above which: an exact
  repeat of a common value scores its probability, never a density gain
  from a width.

  Args:
    model: a `tfvae.VAE`.
    x: float array [N, input_dim] (NaN: missing).
    num_samples: importance samples per example.
    seed: optional int.
    per_feature: divide each row's score by its number of observed
      values, to rank rows with different gaps against each other.
    verbose: 1 shows a progress bar.

  Returns:
    float64 numpy array [N]. A row with nothing observed scores 0.
  """
  x = validation.validate_array(model.encode_table(x), "x", model.input_dim,
                                   expected_names=model.feature_names)
  scores = scores_from_log_likelihoods(
      model, x, marginal_log_likelihood(model, x, num_samples, seed, verbose))
  if per_feature_score:
    scores = per_feature(scores, (~np.isnan(x)).sum(axis=1))
  return scores
