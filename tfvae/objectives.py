"""Pure maths of the VAE objective, in nats. No Keras state lives here.

Names follow TFP: the `rate` is KL(q(z|x) || p(z)) and the `distortion` is
-log p(x|z) (computed by the model, which knows which values are observed). The negative ELBO (Kingma & Welling 2014) is
`distortion + rate`; the trainer minimises `distortion + beta * rate`.
"""

import math

import numpy as np
import tensorflow as tf


def compute_gaussian_kl(loc, scale):
  """Per-dimension KL(N(loc, scale^2) || N(0, 1)), in closed form.

  KL = 0.5 * (loc^2 + scale^2 - 1) - log(scale).

  Args:
    loc: float Tensor [..., latent_dim], posterior means.
    scale: float Tensor [..., latent_dim], posterior standard deviations (> 0).

  Returns:
    Tensor [..., latent_dim] of KL divergences in nats.
  """
  return 0.5 * (tf.square(loc) + tf.square(scale) - 1.0) - tf.math.log(scale)


def compute_rate(kl_per_dim, free_bits=0.0, sample_weight=None):
  """The KL term the trainer minimises, with optional free bits.

  Free bits (Kingma et al. 2016, "Improved Variational Inference with
  Inverse Autoregressive Flow") stop the optimiser from pushing a latent
  dimension's batch-averaged KL below `free_bits` nats: below that the
  dimension's KL gets no gradient.

  Args:
    kl_per_dim: float Tensor [batch_size, latent_dim] from
      `compute_gaussian_kl`.
    free_bits: Python float >= 0, nats per latent dimension.
    sample_weight: optional float Tensor [batch_size]; the batch mean is then
      weighted.

  Returns:
    Scalar Tensor, the batch-mean KL (with free bits applied per dimension).
  """
  if sample_weight is None:
    mean_kl_per_dim = tf.reduce_mean(kl_per_dim, axis=0)
  else:
    weight = tf.cast(sample_weight, kl_per_dim.dtype)[:, None]
    mean_kl_per_dim = tf.math.divide_no_nan(
        tf.reduce_sum(weight * kl_per_dim, axis=0), tf.reduce_sum(weight))
  if free_bits > 0:
    mean_kl_per_dim = tf.maximum(mean_kl_per_dim, free_bits)
  return tf.reduce_sum(mean_kl_per_dim)


def compute_linear_warmup(step, warmup_steps, final_value):
  """A linear ramp from 0 to `final_value` over `warmup_steps` steps.

  Args:
    step: integer scalar Tensor, the optimizer step.
    warmup_steps: Python int >= 0; 0 returns `final_value` at once.
    final_value: Python float, the value reached at the end of the ramp.

  Returns:
    float32 scalar Tensor.
  """
  if warmup_steps <= 0:
    return tf.constant(final_value, tf.float32)
  fraction = tf.minimum(tf.cast(step, tf.float32) / float(warmup_steps), 1.0)
  return final_value * fraction


def compute_log_importance_weights(log_likelihood, log_prior, log_posterior):
  """log w = log p(x|z) + log p(z) - log q(z|x), elementwise.

  Args:
    log_likelihood: Tensor [num_samples, batch_size].
    log_prior: Tensor [num_samples, batch_size].
    log_posterior: Tensor [num_samples, batch_size].

  Returns:
    Tensor [num_samples, batch_size].
  """
  return log_likelihood + log_prior - log_posterior


def compute_iwae_log_likelihood(log_weights):
  """The importance-weighted estimate of log p(x) (Burda et al. 2016, eq. 8).

  log p(x) ~= logsumexp_k(log w_k) - log K. Its expectation is a lower bound
  on log p(x) that never decreases with K, and equals the ELBO's expectation
  for K = 1.

  Args:
    log_weights: float Tensor [num_samples, batch_size].

  Returns:
    Tensor [batch_size] of estimates in nats.
  """
  num_samples = tf.cast(tf.shape(log_weights)[0], log_weights.dtype)
  return tf.reduce_logsumexp(log_weights, axis=0) - tf.math.log(num_samples)



def compute_iwae_chunks(num_rows, num_samples, max_decoded_rows):
  """How `compute_chunked_iwae` tiles rows x samples.

  Samples are split first, into chunks of at most `max_decoded_rows`; rows
  are grouped so that a chunk decodes at most `max_decoded_rows` (row,
  sample) pairs. The tiling depends only on the sizes, never on the values.

  Args:
    num_rows, num_samples, max_decoded_rows: Python ints >= 1.

  Returns:
    (row_slices, sample_slices): lists of Python `slice`s.
  """
  samples_per_chunk = min(num_samples, max_decoded_rows)
  rows_per_chunk = max(1, max_decoded_rows // samples_per_chunk)
  row_slices = [slice(start, min(start + rows_per_chunk, num_rows))
                for start in range(0, num_rows, rows_per_chunk)]
  sample_slices = [slice(start, min(start + samples_per_chunk, num_samples))
                   for start in range(0, num_samples, samples_per_chunk)]
  return row_slices, sample_slices


def compute_chunked_iwae(chunk_logsumexp, num_rows, num_samples,
                         max_decoded_rows, on_rows_done=None):
  """The IWAE estimate logsumexp_k(log w_k) - log K, computed in chunks.

  Memory stays bounded for any number of rows N and samples K: the caller's
  `chunk_logsumexp(rows, samples)` returns, for a slice of rows and a slice
  of the K samples, the log-sum-exp of those samples' log weights per row;
  partial sums are combined in float64 with `logaddexp`, which gives the
  same value as one log-sum-exp over all K samples.

  Args:
    chunk_logsumexp: callable (row_slice, sample_slice) -> float array
      [rows in the slice].
    num_rows: N.
    num_samples: K >= 1.
    max_decoded_rows: the most (row, sample) pairs per call.
    on_rows_done: optional callable(number of rows finished), for progress.

  Returns:
    float64 numpy array [N] of estimates of log p(x) (Burda et al. 2016).
  """
  row_slices, sample_slices = compute_iwae_chunks(num_rows, num_samples,
                                                  max_decoded_rows)
  out = np.empty(num_rows, np.float64)
  for rows in row_slices:
    total = np.full(rows.stop - rows.start, -np.inf)
    for samples in sample_slices:
      total = np.logaddexp(total, np.asarray(chunk_logsumexp(rows, samples),
                                             np.float64))
    out[rows] = total - math.log(num_samples)
    if on_rows_done is not None:
      on_rows_done(rows.stop)
  return out


# -- Numerics of the likelihoods' log-densities ---------------------------------

# A float32 log-weight whose exp is exactly 0 next to any other weight.
NEGLIGIBLE_LOG_WEIGHT = -1e30


def broadcast_leading(x, rank):
  """x [C, ...] with ones inserted after its first axis up to `rank` axes,
  so that it broadcasts against [C, ..., D] tensors of that rank."""
  shape = tf.shape(x)
  ones = tf.ones([rank - x.shape.rank], tf.int32)
  return tf.reshape(x, tf.concat([shape[:1], ones, shape[1:]], 0))


def logsumexp_first(x):
  """log-sum-exp over the first axis of x (finite entries)."""
  peak = tf.reduce_max(x, 0)
  return peak + tf.math.log(tf.reduce_sum(tf.exp(x - peak), 0))


def logaddexp(a, b):
  """log(exp(a) + exp(b)) elementwise, -inf when both are -inf."""
  big, small = tf.maximum(a, b), tf.minimum(a, b)
  gap = tf.where(tf.math.is_inf(small), tf.constant(-np.inf, a.dtype),
                 small - big)
  return big + tf.math.log1p(tf.exp(gap))


def log1p_square(a):
  """log(1 + a**2) without overflow: 2 log|a| + log1p(a**-2) for |a| > 1, so
  a value 1e300 scale units away keeps a finite (very low) log-density."""
  a = tf.abs(a)
  large = a > 1.0
  big = tf.where(large, a, tf.ones_like(a))
  small = tf.where(large, tf.zeros_like(a), a)
  return tf.where(large,
                  2.0 * tf.math.log(big) + tf.math.log1p(tf.math.reciprocal(
                      tf.square(big))),
                  tf.math.log1p(tf.square(small)))
