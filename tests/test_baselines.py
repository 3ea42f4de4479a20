"""Closed-form baselines against known parameters and each other."""

import numpy as np
import pytest

from tfvae import baselines
from tfvae import synthetic


def test_full_gaussian_is_the_sample_mle_at_any_scale():
  rng = np.random.default_rng(0)
  x = rng.normal(size=(5000, 3)) @ np.array([[1, 0.5, 0], [0, 1, 0.2], [0, 0, 1]])
  scales = np.array([1e-3, 1.0, 1e4])
  mean, cov = baselines.fit_full_gaussian(x * scales)
  np.testing.assert_allclose(mean, (x * scales).mean(0), rtol=1e-9, atol=1e-12)
  np.testing.assert_allclose(cov, np.cov(x * scales, rowvar=False, bias=True),
                             rtol=1e-5)
  # Rescaling the columns shifts the log-likelihood by the log-Jacobian only.
  raw = synthetic.gaussian_log_density(x, *baselines.fit_full_gaussian(x))
  scaled = synthetic.gaussian_log_density(x * scales, mean, cov)
  np.testing.assert_allclose(scaled, raw - np.log(scales).sum(), atol=1e-6)


def test_ppca_recovers_the_generating_model():
  x, params = synthetic.make_ppca(100_000, input_dim=5, latent_dim=2,
                                  noise_std=0.5, seed=3)
  fitted = baselines.fit_ppca(x, latent_dim=2)
  assert fitted.noise_variance == pytest.approx(0.25, rel=0.02)
  # Entries up to ~27: sampling error of a variance is ~sqrt(2 / N) of it.
  np.testing.assert_allclose(fitted.covariance, params.covariance,
                             atol=0.02 * np.abs(params.covariance).max())


def test_factor_analysis_nests_ppca_and_full_gaussian_nests_both():
  rng = np.random.default_rng(1)
  x, _ = synthetic.make_ppca(3000, input_dim=6, latent_dim=2, seed=4)
  x = x * rng.uniform(0.1, 10, size=6)  # per-feature noise: FA's advantage
  def mean_ll(mean, cov):
    return synthetic.gaussian_log_density(x, mean, cov).mean()
  ppca = baselines.fit_ppca(x, 2)
  fa = mean_ll(*baselines.fit_factor_analysis(x, 2))
  full = mean_ll(*baselines.fit_full_gaussian(x))
  assert fa >= mean_ll(ppca.mean, ppca.covariance) - 1e-6
  assert full >= fa - 1e-4
