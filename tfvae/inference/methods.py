"""The inference methods of `tfvae.VAE`, written once for every model.

Like scikit-learn's `mixture._base` (one `score_samples` and `sample` for
all its estimators), `InferenceMethods` holds the short delegations from
the model to `tfvae.inference`: sampling, importance sampling, the marginal
log-likelihood, anomaly scores and their calibration, imputation. It uses
only the model's public steps (`standardize`, `posterior_from_standard`,
`standard_likelihood_parameters`, `data_likelihood_parameters`,
`log_likelihood`, `as_data_tensor`) and its attributes `input_dim`,
`latent_dim` and `score_reference`.
"""

import warnings

import numpy as np
import tensorflow as tf

from tfvae import validation
from tfvae.inference import calibration
from tfvae.inference import importance
from tfvae.inference import imputation
from tfvae.inference import sampling


class InferenceMethods:
  """Mixin of `tfvae.VAE`: what a trained model answers."""

  def sample(self, num_examples, seed=None, as_recorded=True, as_frame=False):
    """Draws new rows x ~ p(x|z), z ~ p(z), in data units.

    Args:
      num_examples: Python int.
      seed: optional int in [0, 2**63); None follows the global seed.
        Row i depends only on the seed and i.
      as_recorded: True (default): each column kept within its training
        range and rounded to its recording resolution, like the training
        rows; False: the model's own draws (`tfvae.inference.sampling`).
      as_frame: return a pandas DataFrame with the model's column names
        and each categorical column's levels as text.

    Returns:
      float64 numpy array [num_examples, input_dim] (a categorical column
      as its level codes), or with `as_frame` a DataFrame.
    """
    rows = sampling.sample(self, num_examples, seed, as_recorded)
    return self._frame(rows) if as_frame else rows

  def _frame(self, values, index=None):
    from tfvae.data import columns  # pylint: disable=g-import-not-at-top
    return columns.to_frame(values, self.categories, self.feature_names,
                            index)

  def importance_sample(self, x, noise, first_sample=0, with_moments=False,
                        gaps=True):
    """Importance samples z_k for estimating p(x_obs), with their log
    weights: `tfvae.inference.importance.importance_sample`."""
    return importance.importance_sample(
        self, self.as_data_tensor(x), noise, first_sample, with_moments, gaps)

  def keyed_noise(self, x, seed, first_sample, num_samples):
    """The draws of `marginal_log_likelihood` for rows x, keyed by each
    row: `tfvae.inference.importance.keyed_noise`."""
    return importance.keyed_noise(self, self.as_data_tensor(x), seed,
                                  first_sample, num_samples)

  # Compiled once per model (a `tf.function` method keeps its graphs with
  # the instance), called by `tfvae.inference` on chunks of rows.

  @tf.function(reduce_retracing=True, autograph=False)
  def iwae_logsumexp(self, x, seed, first_sample, num_samples, gaps):
    """logsumexp_k log w_k per row over keyed draws, float64 [B]."""
    return importance.iwae_logsumexp(self, x, seed, first_sample, num_samples,
                                     gaps)

  @tf.function(reduce_retracing=True, autograph=False)
  def score_shares(self, x, seed, num_samples, gaps):
    """Shares [B, D + 1] of `anomaly_score_shares`."""
    return importance.score_shares(self, x, seed, num_samples, gaps)

  @tf.function(reduce_retracing=True, autograph=False)
  def sample_chunk(self, num_examples, seed_pair, as_recorded=True):
    """One chunk of `sample`: float64 [num_examples, D] from a key [2]."""
    return sampling.draw_rows(self, num_examples, seed_pair, as_recorded)

  @tf.function(reduce_retracing=True, autograph=False)
  def imputation_moments(self, x, noise, first_sample):
    """(log sum w [B], weighted mean [B, D], second moment [B, D])."""
    return imputation.moments(self, x, noise, first_sample)

  @tf.function(reduce_retracing=True, autograph=False)
  def imputation_draws(self, x, noise, uniforms, as_recorded=False):
    """M draws of x from p(x_mis | x_obs), [M, B, D]."""
    return imputation.draws(self, x, noise, uniforms, as_recorded)

  @tf.function(reduce_retracing=True, autograph=False)
  def effective_sample_size(self, x, noise):
    """Kish's effective number of the importance samples `noise` [K, L]
    for each row x [B, D], float64 [B]."""
    return imputation.effective_sample_size(
        importance.importance_sample(self, x, noise)["log_weights"])

  def marginal_log_likelihood(self, x, num_samples=1000, seed=None, verbose=0,
                              basis="data"):
    """Importance-weighted estimates of log p(x_obs) per row, in nats.

    Draws are keyed by the seed and each row's values, so a row's estimate
    does not depend on the other rows; rows with gaps get the density of
    their observed values (see `tfvae.inference.importance`).

    Args:
      x: float array [N, input_dim] in data units (NaN: missing).
      num_samples: importance samples K per row (at most 10**6).
      seed: optional int in [0, 2**63); None follows the global seed.
      verbose: 1 shows a progress line.
      basis: "data" (default): values at an atom score its probability,
        the others their density in data units; "standardized": densities
        per standard deviation; "dequantized": atoms' probabilities over
        their column's resolution (`tfvae.inference.importance.BASES`).

    Returns:
      float64 numpy array [N].
    """
    return importance.marginal_log_likelihood(self, x, num_samples, seed,
                                              verbose, basis)

  def impute(self, x, num_samples=1000, seed=None, num_imputations=None,
             return_std=False, verbose=0, as_recorded=False):
    """Fills missing values from p(x_mis | x_obs), by importance sampling.

    Observed entries come back bit for bit (see
    `tfvae.inference.imputation`).

    Args:
      x: float array [N, input_dim] in data units; NaN marks what to fill.
      num_samples: importance samples K per row.
      seed: optional int in [0, 2**63); None follows the global seed.
      num_imputations: optional int M: return M draws instead of the mean.
      return_std: with the mean, also return the predictive standard
        deviation per entry (0 where observed).
      verbose: 1 shows a progress line.
      as_recorded: with `num_imputations`, draws within each column's
        training range and on its resolution, as `sample` gives them.

    Returns:
      float64 [N, input_dim] (and the std with `return_std`), or with
      `num_imputations` float64 [M, N, input_dim]. For a pandas DataFrame
      x, the rows come back as a DataFrame in the model's columns (levels
      as text; a list of M DataFrames with `num_imputations`); the std
      stays an array.
    """
    from tfvae.data import columns  # pylint: disable=g-import-not-at-top
    out = imputation.impute(self, x, num_samples, seed, num_imputations,
                            return_std, verbose, as_recorded)
    if not columns.is_frame(x):
      return out
    if num_imputations is not None:
      return [self._frame(draw, x.index) for draw in out]
    if return_std:
      return self._frame(out[0], x.index), out[1]
    return self._frame(out, x.index)

  def sample_given(self, given, num_examples, num_samples=1000, seed=None,
                   as_recorded=True):
    """Draws rows from the model's conditional p(x_mis | x_obs) for one
    condition: the sampling importance resampling of multiple imputation,
    with K raised until the condition has enough effective samples
    (`tfvae.inference.imputation.condition_samples`).

    Args:
      given: float [input_dim]: the given values, NaN for those to draw;
        or a dict {column name or index: value}.
      num_examples: rows to draw.
      num_samples: the first K tried.
      seed: optional int in [0, 2**63).
      as_recorded: draws within each column's training range and on its
        resolution.

    Returns:
      (rows float64 [num_examples, input_dim], effective sample size of
      the condition, K used).
    """
    row = validation.condition_row(given, self.input_dim, self.feature_names,
                                   categories=self.categories)
    num_examples = validation.check_positive_int(num_examples, "num_examples")
    num_samples, ess = imputation.condition_samples(self, row, num_samples,
                                                    seed)
    rows = np.concatenate(list(imputation.iter_conditional_draws(
        self, row, num_examples, num_samples, seed, as_recorded)), axis=0)
    return rows, ess, num_samples

  def anomaly_score(self, x, num_samples=calibration.SCORE_SAMPLES, seed=None,
                    per_feature=False,
                    verbose=0):
    """Anomaly scores: -log p(x_obs) per example in nats, higher is
    stranger: `marginal_log_likelihood(..., basis="standardized")` negated
    (densities per standard deviation, so a column's units do not change
    the ranking; atom values score their probability), and with `per_feature`
    divided by each row's number of observed values (so rows with different
    gaps rank on one scale). A row with nothing observed scores 0.

    Returns:
      float64 numpy array [N].
    """
    return importance.anomaly_score(self, x, num_samples, seed, per_feature,
                                    verbose)

  def anomaly_score_shares(self, x, num_samples=calibration.SCORE_SAMPLES,
                           seed=None):
    """What makes each row strange: each column's share of its anomaly
    score and the latent code's, float64 [N, D + 1] (columns in the model's
    order, the latent last; a row's shares add up to `anomaly_score(x,
    num_samples, seed)`). A column's share is its expected -log p(x_d|z)
    under the row's posterior (per standard deviation; atoms and levels by
    their probability; 0 where missing), the latent's what remains, about
    KL(p(z|x) || p(z)) (`tfvae.inference.importance.score_shares`)."""
    return importance.anomaly_score_shares(self, x, num_samples, seed)

  def calibrate(self, x, num_samples=calibration.SCORE_SAMPLES, seed=None,
                verbose=0):
    """Keeps the anomaly scores of held-out normal rows x as the reference
    of `score_percentile` and `anomaly_threshold` (saved with the model;
    `tfvae-train` calibrates on its validation rows). Returns the scores,
    float64 [N] (`tfvae.inference.calibration`)."""
    scores = self.anomaly_score(x, num_samples, seed, verbose=verbose)
    self.score_reference = calibration.reference_quantiles(scores)
    return scores

  def calibrate_levels(self, x, frequency_rows=None,
                       num_samples=calibration.SCORE_SAMPLES, seed=None):
    """Recalibrates the imputation of categorical columns on held-out rows
    x: each column's level probabilities given a row are blended with its
    level frequencies (those of `frequency_rows`, default x) by a weight
    fitted on x's cells of that column, hidden in turn (saved with the
    model; `tfvae-train` calibrates on its validation rows with the
    frequencies of all its rows). Returns {column: (weight, gain in nats,
    rows)} (`tfvae.inference.levels`)."""
    return imputation.calibrate_levels(self, x, frequency_rows, num_samples,
                                       seed)

  def score_percentile(self, scores):
    """Each anomaly score's percentile among the reference rows', float64
    in [0, 100] (100: stranger than every one of them)."""
    return calibration.percentile(
        calibration.required(self.score_reference), scores)

  def anomaly_threshold(self, contamination):
    """The score above which a share `contamination` (in (0, 0.5]) of the
    reference rows lies: flag rows that score above it."""
    return calibration.threshold(
        calibration.required(self.score_reference), contamination)

  def score(self, x, num_samples=1000, seed=None):
    """Deprecated: use `anomaly_score` (higher is stranger) or
    `marginal_log_likelihood` (higher is more likely)."""
    warnings.warn(
        "VAE.score is deprecated: it returns -log p(x) (higher is stranger), "
        "unlike scikit-learn's score; call anomaly_score instead",
        DeprecationWarning, stacklevel=2)
    return self.anomaly_score(x, num_samples=num_samples, seed=seed)
