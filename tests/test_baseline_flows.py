"""The flow baselines of the quality benchmark are densities in data units."""

import numpy as np
import pytest

from tfvae import baseline_flows
from tfvae import synthetic


def correlated(n, seed):
  rng = np.random.default_rng(seed)
  z = rng.normal(size=(n, 2))
  return np.stack([10.0 + 3.0 * z[:, 0],
                   -2.0 + 0.5 * (0.8 * z[:, 0] + 0.6 * z[:, 1])], axis=1)


def total_mass(log_density):
  """Riemann sum of exp(log_density) over a grid 8 standard deviations wide
  in each direction of `correlated`'s columns."""
  a = np.linspace(10.0 - 24.0, 10.0 + 24.0, 241)
  b = np.linspace(-2.0 - 4.0, -2.0 + 4.0, 241)
  grid = np.stack(np.meshgrid(a, b, indexing="ij"), -1).reshape(-1, 2)
  return np.exp(log_density(grid)).sum() * (a[1] - a[0]) * (b[1] - b[0])


def test_a_masked_autoregressive_flow_learns_a_gaussian_in_data_units():
  x, held_out = correlated(3000, 1), correlated(2000, 2)
  log_density, validation, epoch = baseline_flows.fit_flow(
      "maf", x[:2400], x[2400:], num_layers=3, hidden_units=32)
  assert epoch >= 1 and np.isfinite(validation)
  assert total_mass(log_density) == pytest.approx(1.0, abs=0.01)
  covariance = np.array([[9.0, 1.2], [1.2, 0.25]])
  exact = synthetic.gaussian_log_density(held_out, np.array([10.0, -2.0]),
                                         covariance)
  assert np.mean(log_density(held_out)) == pytest.approx(np.mean(exact),
                                                         abs=0.05)


def test_a_spline_flow_integrates_to_one_in_data_units():
  # As initialised: tracing its training step takes 8 s, and the training
  # loop is the affine flow's.
  x = correlated(400, 0)
  log_density, validation, epoch = baseline_flows.fit_flow(
      "nsf", x[:300], x[300:], num_layers=2, hidden_units=16, max_epochs=0)
  assert epoch == 0 and np.isfinite(validation)
  assert total_mass(log_density) == pytest.approx(1.0, abs=0.01)
