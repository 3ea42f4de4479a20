"""Generation (`tfvae.inference.sampling`) and conditional generation
(`tfvae.inference.imputation`'s resampling): closed forms, ranges,
resolutions, reproducibility."""

import statistics as stats

import numpy as np
import pytest
import tensorflow as tf

from tfvae import heads
from tfvae.inference import imputation
from tfvae.inference import sampling
from tests.helpers import fitted_model
from tests.helpers import linear_gaussian_marginal
from tests.helpers import train_linear_on_ppca

# Its tests share trained models: one xdist worker runs them all.
pytestmark = pytest.mark.xdist_group("sampling")


def recorded_table(num_rows=1500, seed=0):
  """Counts (whole numbers, 30% zeros), prices in cents, a positive
  full-precision column."""
  rng = np.random.default_rng(seed)
  counts = np.round(rng.gamma(2.0, 3.0, num_rows))
  counts[rng.random(num_rows) < 0.3] = 0.0
  prices = np.round(rng.normal(5.0, 2.0, num_rows), 2)
  amounts = rng.exponential(1.0, num_rows) + 0.5 * (counts > 0)
  return np.column_stack([counts, prices, amounts])


@pytest.fixture(scope="session")
def recorded_model():
  x = recorded_table()
  return fitted_model(x, epochs=8, latent_dim=2, hidden_units=(32,),
                      num_atoms=4), x


def test_rows_keep_their_range_and_resolution(recorded_model):
  model, x = recorded_model
  rows = model.sample(3000, seed=0)
  assert np.all(rows >= x.min(axis=0)) and np.all(rows <= x.max(axis=0))
  np.testing.assert_array_equal(rows[:, 0], np.round(rows[:, 0]))
  cents = rows[:, 1] * 100
  np.testing.assert_allclose(cents, np.round(cents), atol=1e-6)
  assert not np.any(np.signbit(rows[:, 0]))  # no -0.0 written as "-0"
  # The third column has no resolution: its values are not rounded.
  assert len(np.unique(rows[:, 2])) > 2900
  # The model's own draws leave the range (which is what as_recorded
  # changes), from the same uniforms: a draw at an atom stays there.
  raw = model.sample(3000, seed=0, as_recorded=False)
  assert np.any(raw < x.min(axis=0)) or np.any(raw > x.max(axis=0))
  assert np.all(rows[raw[:, 0] == 0, 0] == 0)


def test_row_i_depends_only_on_the_seed_and_i(recorded_model, monkeypatch):
  # The same draws, to the float32 rounding of the decoder network (whose
  # kernels round differently for different batch sizes).
  model, _ = recorded_model
  same = dict(rtol=1e-6, atol=0)
  np.testing.assert_allclose(model.sample(7, seed=4),
                             model.sample(300, seed=4)[:7], **same)
  monkeypatch.setattr(sampling, "CHUNK_ROWS", 64)
  chunked = model.sample(150, seed=4)
  np.testing.assert_allclose(chunked[:64], model.sample(300, seed=4)[:64],
                             **same)
  np.testing.assert_allclose(chunked[:100], model.sample(100, seed=4), **same)
  assert not np.array_equal(chunked[:64], chunked[64:128])
  assert not np.array_equal(chunked, model.sample(150, seed=5))


def test_a_truncated_draw_is_the_truncated_family():
  # Normal(1, 2) truncated to [0, 2.5]: the quantile of
  # Phi(a) + v (Phi(b) - Phi(a)), computed with the standard library.
  normal = stats.NormalDist(1.0, 2.0)
  v = np.linspace(0.01, 0.99, 25)
  expected = [normal.inv_cdf(normal.cdf(0.0) + t * (normal.cdf(2.5) -
                                                    normal.cdf(0.0)))
              for t in v]
  parameters = {"loc": tf.fill([25, 1], tf.constant(1.0, tf.float64)),
                "scale": tf.fill([25, 1], tf.constant(2.0, tf.float64))}
  drawn = heads.GaussianLikelihood.draw(
      parameters, None, tf.constant(v[:, None]),
      lower=tf.constant([0.0], tf.float64), upper=tf.constant([2.5], tf.float64))
  np.testing.assert_allclose(drawn.numpy()[:, 0], expected, rtol=1e-9)
  # A range far in a tail keeps its draws inside it (clipped).
  far = heads.GaussianLikelihood.draw(
      parameters, None, tf.constant(v[:, None]),
      lower=tf.constant([60.0], tf.float64), upper=tf.constant([61.0], tf.float64))
  assert np.all((far.numpy() >= 60.0) & (far.numpy() <= 61.0))


def test_rounding_to_the_resolution():
  x = tf.constant([[-0.004, 2.345, 7.0], [12.5, -1.0, 3.14159]], tf.float64)
  resolution = tf.constant([0.01, 1.0, 0.0], tf.float64)
  lower = tf.constant([-1.0, 0.0, 0.0], tf.float64)
  upper = tf.constant([12.0, 9.0, 5.0], tf.float64)
  rounded = sampling.round_to_resolution(x, resolution, lower, upper).numpy()
  np.testing.assert_allclose(rounded, [[0.0, 2.0, 5.0], [12.0, 0.0, 3.14159]])
  assert not np.signbit(rounded[0, 0])


def test_effective_sample_size_closed_forms():
  equal = tf.zeros([50, 2], tf.float64)
  np.testing.assert_allclose(imputation.effective_sample_size(equal), [50, 50])
  one = tf.constant([[0.0], [-800.0], [-800.0]], tf.float64)
  np.testing.assert_allclose(imputation.effective_sample_size(one), [1.0])
  # Weights 1, 1, 2: (sum w)^2 / sum w^2 = 16 / 6.
  three = tf.math.log(tf.constant([[1.0], [1.0], [2.0]], tf.float64))
  np.testing.assert_allclose(imputation.effective_sample_size(three), [16 / 6])


def test_conditional_rows_follow_the_gaussian_conditional():
  # A linear Gaussian VAE's p(x) is N(mean, C) exactly: given x_1 = v the
  # other columns are N(mean_2 + C_21 C_11^-1 (v - mean_1), C_22 - ...).
  model, x, _ = train_linear_on_ppca()
  mean, covariance = linear_gaussian_marginal(model)
  value = float(np.quantile(x[:, 0], 0.8))
  rows, ess, num_samples = model.sample_given({0: value}, 4000, seed=2,
                                              as_recorded=False)
  assert ess >= imputation.MIN_EFFECTIVE_SAMPLES and num_samples > 1000
  np.testing.assert_array_equal(rows[:, 0], value)
  gain = covariance[1:, 0] / covariance[0, 0]
  expected_mean = mean[1:] + gain * (value - mean[0])
  expected_cov = covariance[1:, 1:] - np.outer(gain, covariance[0, 1:])
  expected_std = np.sqrt(np.diag(expected_cov))
  # Each chunk of K rows resamples K fresh importance samples with `ess`
  # effective ones: the Monte Carlo standard errors of the mean and of the
  # standard deviation (in conditional sds) are about 1 / sqrt(n) and
  # 1 / sqrt(2 n) with n = ess x chunks; allow four of them.
  effective = ess * np.ceil(4000 / num_samples)
  np.testing.assert_allclose((rows[:, 1:].mean(0) - expected_mean) /
                             expected_std, 0.0, atol=4 / np.sqrt(effective))
  np.testing.assert_allclose(rows[:, 1:].std(0) / expected_std, 1.0,
                             atol=4 / np.sqrt(2 * effective))
  # Row i depends only on the seed and i, across chunks of K rows.
  again, _, _ = model.sample_given({0: value}, 1500, seed=2, as_recorded=False)
  np.testing.assert_allclose(again, rows[:1500], rtol=1e-6)


def test_conditions_are_checked(recorded_model):
  model, _ = recorded_model
  with pytest.raises(ValueError, match="no column 'age'"):
    model.sample_given({"age": 3.0}, 10)
  with pytest.raises(ValueError, match="every column"):
    model.sample_given({0: 1.0, 1: 2.0, 2: 3.0}, 10)
  with pytest.raises(ValueError, match="'x' is not a number"):
    model.sample_given({1: "x"}, 10)
  with pytest.raises(ValueError, match="finite"):
    model.sample_given({1: float("inf")}, 10)
