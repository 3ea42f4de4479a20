"""Pure maths of the VAE objective, in nats. No Keras state lives here.

Names follow TFP: the `rate` is KL(q(z|x) || p(z)) and the `distortion` is
-log p(x|z). The negative ELBO (Kingma & Welling 2014) is
`distortion + rate`; the trainer minimises `distortion + beta * rate`.
"""

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


def compute_rate(kl_per_dim, free_bits=0.0):
  """The KL term the trainer minimises, with optional free bits.

  Free bits (Kingma et al. 2016, "Improved Variational Inference with
  Inverse Autoregressive Flow") stop the optimiser from pushing a latent
  dimension's batch-averaged KL below `free_bits` nats: below that the
  dimension's KL gets no gradient.

  Args:
    kl_per_dim: float Tensor [batch_size, latent_dim] from
      `compute_gaussian_kl`.
    free_bits: Python float >= 0, nats per latent dimension.

  Returns:
    Scalar Tensor, the batch-mean KL (with free bits applied per dimension).
  """
  mean_kl_per_dim = tf.reduce_mean(kl_per_dim, axis=0)
  if free_bits > 0:
    mean_kl_per_dim = tf.maximum(mean_kl_per_dim, free_bits)
  return tf.reduce_sum(mean_kl_per_dim)


def compute_distortion(likelihood, x):
  """Per-example negative log-likelihood -log p(x|z) in nats.

  Args:
    likelihood: a distribution with event_shape [input_dim] and batch shape
      broadcastable with `x`'s leading dimensions.
    x: float Tensor [..., input_dim].

  Returns:
    Tensor [...] of negative log-likelihoods.
  """
  return -likelihood.log_prob(x)


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

