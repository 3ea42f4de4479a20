"""Distribution heads: densities against numpy formulas, floors, configs."""

import math

import numpy as np
import pytest
import tensorflow as tf

from tfvae import heads


def numpy_normal_log_prob(x, loc, scale):
  return -0.5 * ((x - loc) / scale)**2 - np.log(scale) - 0.5 * np.log(2 * np.pi)


def numpy_laplace_log_prob(x, loc, scale):
  return -np.abs(x - loc) / scale - np.log(2 * scale)


def numpy_student_t_log_prob(x, df, loc, scale):
  lgamma = np.vectorize(math.lgamma)
  y = (x - loc) / scale
  return (lgamma((df + 1) / 2) - lgamma(df / 2) - 0.5 * np.log(df * np.pi)
          - np.log(scale) - (df + 1) / 2 * np.log1p(y * y / df))


def softplus(v):
  return np.log1p(np.exp(v))


def test_posterior_log_prob_matches_numpy(rng):
  head = heads.PosteriorNormal(latent_dim=3, scale_floor=1e-4)
  params = rng.normal(size=(5, heads.PosteriorNormal.params_size(3))).astype(np.float32)
  z = rng.normal(size=(5, 3)).astype(np.float32)
  posterior = head(params)
  loc, scale = params[:, :3], softplus(params[:, 3:]) + 1e-4
  np.testing.assert_allclose(posterior.log_prob(z),
                             numpy_normal_log_prob(z, loc, scale).sum(-1),
                             rtol=1e-5)
  np.testing.assert_allclose(posterior.stddev(), scale, rtol=1e-5)


def test_posterior_scale_has_floor():
  head = heads.PosteriorNormal(latent_dim=2, scale_floor=1e-3)
  params = tf.constant([[0.0, 0.0, -200.0, -200.0]])
  np.testing.assert_allclose(head(params).stddev(), [[1e-3, 1e-3]], rtol=1e-6)


@pytest.mark.parametrize("family,reference", [
    ("gaussian", "normal"), ("gaussian_shared", "normal"),
    ("laplace", "laplace"), ("student_t", "student_t"), ("mse", "normal")])
def test_likelihood_log_prob_in_data_units(family, reference, rng):
  d = 4
  head = heads.make_likelihood(family, d, scale_floor=1e-3)
  params = rng.normal(size=(6, head.params_size(d))).astype(np.float32)
  data_loc = rng.normal(size=d).astype(np.float32) * 100
  data_scale = rng.uniform(0.01, 1000, size=d).astype(np.float32)
  x = (data_loc + data_scale * rng.normal(size=(6, d))).astype(np.float32)
  likelihood = head([params, data_loc, data_scale])
  # Independent reference: the family's density of u = (x - m) / s in
  # standardised units, minus the log-Jacobian sum(log s).
  u = (x - data_loc) / data_scale
  p = head.distribution_parameters(params, 0.0, 1.0)
  loc, scale = p["loc"].numpy(), p["scale"].numpy()
  if reference == "normal":
    expected = numpy_normal_log_prob(u, loc, scale)
  elif reference == "laplace":
    expected = numpy_laplace_log_prob(u, loc, scale)
  else:
    expected = numpy_student_t_log_prob(u, p["df"].numpy(), loc, scale)
  expected = expected.sum(-1) - np.log(data_scale).sum()
  np.testing.assert_allclose(likelihood.log_prob(x), expected, rtol=2e-5,
                             atol=2e-4)
  # `moments` (used by the serving graphs) agrees with TFP's mean / stddev.
  mean, stddev = head.moments(head.distribution_parameters(
      params, data_loc, data_scale))
  np.testing.assert_allclose(mean, likelihood.mean(), rtol=1e-5)
  np.testing.assert_allclose(stddev, likelihood.stddev(), rtol=1e-5)


def test_gaussian_standard_parameters_are_softplus_plus_floor(rng):
  head = heads.GaussianLikelihood(2, scale_floor=0.01)
  params = np.array([[1.0, -2.0, 0.5, -300.0]], np.float32)
  p = head.distribution_parameters(params, 0.0, 1.0)
  np.testing.assert_allclose(p["loc"], [[1.0, -2.0]])
  np.testing.assert_allclose(p["scale"], [[softplus(0.5) + 0.01, 0.01]], rtol=1e-6)


@pytest.mark.parametrize("family", sorted(set(heads.LIKELIHOODS) - {"mse"}))
def test_scale_floor_holds_for_every_learned_scale(family):
  head = heads.make_likelihood(family, 3, scale_floor=0.05)
  params = tf.fill([2, head.params_size(3)], -500.0)
  head([params, tf.zeros(3), tf.ones(3)])  # builds any weights
  for weight in head.trainable_weights:
    weight.assign(tf.fill(weight.shape, -500.0))
  scale = head.distribution_parameters(params, tf.zeros(3), tf.ones(3))["scale"]
  assert np.all(scale.numpy() >= 0.05 * (1 - 1e-6))


def test_student_t_df_stays_above_two():
  head = heads.StudentTLikelihood(3)
  head([tf.zeros([1, 6]), tf.zeros(3), tf.ones(3)])
  head.raw_df.assign(tf.fill([3], -1000.0))
  p = head.distribution_parameters(tf.zeros([1, 6]), 0.0, 1.0)
  assert np.all(p["df"].numpy() > 2.0)
  _, stddev = head.moments(p)
  assert np.all(np.isfinite(stddev.numpy()))
  with pytest.raises(ValueError, match="min_df"):
    heads.StudentTLikelihood(3, min_df=2.0)


def test_mse_head_reproduces_the_snippets_objective(rng):
  # (MSE + 1e-4 KL) / 1e-4 and (Gaussian NLL with the fixed scale + KL)
  # differ only by a constant, so they have the same minimiser.
  d = 5
  head = heads.FixedScaleGaussianLikelihood(d)
  assert head.fixed_scale == pytest.approx(math.sqrt(1e-4 * d / 2))
  p = head.distribution_parameters(np.zeros([2, d], np.float32), 0.0, 1.0)
  np.testing.assert_allclose(p["scale"], np.full([2, d], head.fixed_scale))
  kl = rng.uniform(0, 10, size=8)
  x = rng.normal(size=(8, d)).astype(np.float32)
  differences = []
  for _ in range(3):
    mu = rng.normal(size=(8, d)).astype(np.float32)
    nll = -head([mu, np.zeros(d, np.float32), np.ones(d, np.float32)]).log_prob(x)
    snippet = np.mean((x - mu)**2, axis=-1) + 1e-4 * kl
    differences.append(nll.numpy() + kl - snippet / 1e-4)
  # The NLLs are ~1e4 nats in float32, hence the absolute tolerance.
  np.testing.assert_allclose(differences[0], differences[1], atol=0.02)
  np.testing.assert_allclose(differences[0], differences[2], atol=0.02)
  expected_constant = 0.5 * d * np.log(2 * np.pi * head.fixed_scale**2)
  np.testing.assert_allclose(differences[0], expected_constant, atol=0.02)


@pytest.mark.parametrize("family", sorted(heads.LIKELIHOODS))
def test_config_round_trip(family):
  head = heads.make_likelihood(family, 3, scale_floor=0.02, name="lik")
  config = head.get_config()
  clone = type(head).from_config(config)
  assert clone.get_config() == config
  assert clone.event_size == 3 and clone.scale_floor == 0.02


def test_posterior_config_round_trip():
  head = heads.PosteriorNormal(4, scale_floor=1e-3, name="q")
  clone = heads.PosteriorNormal.from_config(head.get_config())
  assert clone.get_config() == head.get_config()


def test_unknown_family_is_a_clear_error():
  with pytest.raises(ValueError, match="unknown likelihood 'poisson'"):
    heads.make_likelihood("poisson", 3)


def test_params_sizes():
  assert heads.PosteriorNormal.params_size(5) == 10
  assert heads.GaussianLikelihood.params_size(7) == 14
  assert heads.SharedScaleGaussianLikelihood.params_size(7) == 7
  assert heads.LaplaceLikelihood.params_size(7) == 14
  assert heads.StudentTLikelihood.params_size(7) == 14
  assert heads.FixedScaleGaussianLikelihood.params_size(7) == 7
