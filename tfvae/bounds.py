"""The training objective on a batch, per example in nats: the ELBO
(Kingma & Welling 2014), the importance-weighted bound (Burda et al. 2016)
and, on batches with gaps, MIWAE's bound on the observed values (Mattei &
Frellsen 2019), computed through the model's public steps.

`tfvae.VAE.train_step` minimises the `objective` these return and
`test_step` reports the `loss`; the maths they combine is in `objectives`.
"""

import tensorflow as tf

from tfvae import objectives


def per_example_terms(model, x, seed, betas, num_samples,
                      known_complete=False):
  """The objective's terms per example, in nats.

  Args:
    model: a `tfvae.VAE`.
    x: float [batch_size, input_dim] (NaN: missing).
    seed: stateless seed [2] for the posterior draws.
    betas: dict name -> KL weight; a negative bound is returned per name.
    num_samples: K, the posterior draws per example (1: the ELBO): a
      Python int, or an int32 scalar tensor greater than 1 (a bound whose K
      the batch decides, traced once).
    known_complete: Python bool; True promises that x has no gaps, which
      spares the encoder's all-zero missing-value indicator.

  Returns:
    dict of Tensors: `distortion` [B] (mean over the K draws of
    -log p(x_obs|z)), `kl` [B] (analytic), `kl_per_dim` [B, latent_dim],
    and per name in `betas` the negative bound [B] with that weight.
  """
  u, observed = model.standardize(x)
  posterior = model.posterior_from_standard(u, observed, known_complete)
  loc, scale = posterior["loc"], posterior["scale"]
  noise = tf.random.stateless_normal(
      tf.concat([[num_samples], tf.shape(loc)], 0), seed=seed)
  z = loc + scale * noise  # [K, B, latent_dim]
  log_likelihood = model.log_likelihood(
      model.standard_likelihood_parameters(z), u, observed, tf.float32)
  kl_per_dim = objectives.compute_gaussian_kl(loc, scale)
  terms = {
      "distortion": -tf.reduce_mean(log_likelihood, axis=0),
      "kl": tf.reduce_sum(kl_per_dim, axis=-1),
      "kl_per_dim": kl_per_dim,
  }
  importance_weighted = (tf.is_tensor(num_samples) or num_samples > 1)
  if importance_weighted:
    log_prior = -0.5 * tf.reduce_sum(tf.square(z), -1)
    log_posterior = -tf.reduce_sum(
        0.5 * tf.square(noise) + tf.math.log(scale), -1)
  for name, beta in betas.items():
    if not importance_weighted:
      terms[name] = terms["distortion"] + beta * terms["kl"]
    else:  # the normalising constants of prior and posterior cancel
      terms[name] = -objectives.compute_iwae_log_likelihood(
          objectives.compute_log_importance_weights(
              log_likelihood, beta * log_prior, beta * log_posterior))
  return terms


def batch_terms(model, x, seed, betas, sample_weight, known_complete=False):
  """Per-example terms with the bound for this batch: `num_train_samples`
  draws, or `missing_train_samples` when the batch has missing values
  (MIWAE, Mattei & Frellsen 2019). Adds `objective`, what is minimised.

  Args:
    model: a `tfvae.VAE`.
    x: float [batch_size, input_dim] (NaN: missing).
    seed: stateless seed [2] for the posterior draws.
    betas: dict name -> KL weight (`per_example_terms`).
    sample_weight: optional float [batch_size].
    known_complete: Python bool; True promises that no batch has gaps,
      which spares tracing the MIWAE branch and the encoder's all-zero
      missing-value indicator.

  Returns:
    dict of Tensors [batch_size]: `distortion`, `kl`, one negative bound
    per name in `betas`, and `objective`.
  """

  def terms_with(num_samples):
    terms = per_example_terms(model, x, seed, betas, num_samples,
                              known_complete)
    if not model.objective_differs:
      terms["objective"] = terms["loss"]
    elif (model.free_bits and not tf.is_tensor(num_samples) and
          num_samples == 1):
      # Free bits act on the batch-mean KL per dimension.
      rate = objectives.compute_rate(terms["kl_per_dim"], model.free_bits,
                                     sample_weight)
      terms["objective"] = terms["distortion"] + model.current_beta * rate
    elif "objective" not in terms:  # free bits do not apply with K > 1
      terms["objective"] = terms["loss"]
    terms.pop("kl_per_dim")
    return terms

  if (model.missing_train_samples == model.num_train_samples or
      known_complete):
    return terms_with(model.num_train_samples)
  has_gap = tf.reduce_any(tf.math.is_nan(x))
  if (min(model.missing_train_samples, model.num_train_samples) > 1 and
      model.gap_bound_in_one_graph):
    # Both bounds are importance-weighted and differ only in K: one graph
    # whose K the batch picks. A `tf.cond` of the two traced the bound and
    # its gradient twice, and the gradient of a cond carries every
    # intermediate of both branches (3x the operations of the step, 2.7x
    # the first fit's time, on a mixed table with gaps), and XLA could not
    # compile that gradient (`compile(jit_compile=True)` failed on data
    # with gaps; it compiles this one).
    return terms_with(tf.where(has_gap, model.missing_train_samples,
                               model.num_train_samples))
  return tf.cond(has_gap, lambda: terms_with(model.missing_train_samples),
                 lambda: terms_with(model.num_train_samples))
