"""Synthetic data and their exact densities, checked independently."""

import math

import numpy as np

from tfvae import synthetic


def test_gaussian_log_density_matches_the_textbook_formula():
  rng = np.random.default_rng(0)
  a = rng.normal(size=(3, 3))
  cov = a @ a.T + np.eye(3)
  mean = rng.normal(size=3)
  x = rng.normal(size=(4, 3))
  diff = x - mean
  expected = (-0.5 * np.einsum("ni,ij,nj->n", diff, np.linalg.inv(cov), diff)
              - 0.5 * np.log(np.linalg.det(2 * np.pi * cov)))
  np.testing.assert_allclose(synthetic.gaussian_log_density(x, mean, cov),
                             expected, rtol=1e-10)


def test_ppca_samples_have_the_model_covariance():
  x, params = synthetic.make_ppca(200_000, input_dim=4, latent_dim=2, seed=1)
  np.testing.assert_allclose(np.cov(x, rowvar=False), params.covariance,
                             atol=0.1)
  np.testing.assert_allclose(x.mean(0), params.mean, atol=0.05)


def test_nonlinear_density_quadrature_matches_monte_carlo():
  # p(x) = E_t[p(x | t)], t ~ N(0, 1): an independent estimate by sampling t.
  x = synthetic.make_nonlinear(5, seed=7).astype(np.float64)
  t = np.random.default_rng(8).normal(size=400_000)
  loc, scale = synthetic._curve(t)  # pylint: disable=protected-access
  for row, quadrature in zip(x, synthetic.nonlinear_log_density(x)):
    log_lik = np.sum(-0.5 * ((row - loc) / scale)**2 - np.log(scale)
                     - 0.5 * math.log(2 * math.pi), axis=1)
    peak = log_lik.max()
    monte_carlo = peak + math.log(np.mean(np.exp(log_lik - peak)))
    assert abs(monte_carlo - quadrature) < 0.05


def test_nonlinear_data_follow_their_density():
  # The average log-density of samples estimates minus the entropy; draws
  # from elsewhere (shifted) score much lower.
  x = synthetic.make_nonlinear(4000, seed=2)
  own = synthetic.nonlinear_log_density(x).mean()
  shifted = synthetic.nonlinear_log_density(x + 0.5).mean()
  assert np.isfinite(own) and own > shifted + 1.0


def test_sensor_zeros_idle_at_most_one_sensor_in_normal_rows():
  x, is_anomaly = synthetic.make_sensor_zeros(2000, 20, decimals=1, seed=0)
  idle = x[:, 4:] == 0
  assert idle[~is_anomaly].sum(axis=1).max() == 1
  assert idle[is_anomaly].all()
  np.testing.assert_allclose(idle[~is_anomaly].mean(axis=0), 0.1, atol=0.02)
  np.testing.assert_array_equal(np.round(x, 1), x)
