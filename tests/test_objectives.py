"""Objective maths against closed forms and Monte Carlo estimates."""

import math

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp

from tfvae import objectives

tfd = tfp.distributions


def test_kl_of_standard_normal_to_itself_is_zero():
  kl = objectives.compute_gaussian_kl(tf.zeros([3, 4]), tf.ones([3, 4]))
  np.testing.assert_allclose(kl, np.zeros([3, 4]), atol=1e-7)


@pytest.mark.parametrize("dims", [1, 5, 10])
def test_kl_of_unit_shift_is_half_per_dimension(dims):
  kl = objectives.compute_gaussian_kl(tf.ones([dims]), tf.ones([dims]))
  assert float(tf.reduce_sum(kl)) == pytest.approx(dims / 2, rel=1e-6)


def test_kl_matches_tfp_and_a_monte_carlo_estimate(rng):
  loc = rng.normal(size=(3, 4)).astype(np.float32)
  scale = rng.uniform(0.2, 2.0, size=(3, 4)).astype(np.float32)
  analytic = tf.reduce_sum(objectives.compute_gaussian_kl(loc, scale), -1).numpy()
  q = tfd.Independent(tfd.Normal(loc, scale), 1)
  p = tfd.Independent(tfd.Normal(tf.zeros(4), 1.0), 1)
  np.testing.assert_allclose(analytic, tfd.kl_divergence(q, p), rtol=1e-5)
  # Monte Carlo: E_q[log q(z) - log p(z)] with 200k draws, within 4 SE.
  z = q.sample(200_000, seed=tf.constant([1, 2]))
  log_ratio = (q.log_prob(z) - p.log_prob(z)).numpy().astype(np.float64)
  estimate = log_ratio.mean(0)
  standard_error = log_ratio.std(0) / math.sqrt(len(log_ratio))
  assert np.all(np.abs(estimate - analytic) < 4 * standard_error + 1e-4)


def test_rate_applies_free_bits_per_dimension():
  kl_per_dim = tf.constant([[0.1, 2.0], [0.3, 4.0]])
  assert float(objectives.compute_rate(kl_per_dim)) == pytest.approx(0.2 + 3.0)
  assert float(objectives.compute_rate(kl_per_dim, free_bits=0.5)) == (
      pytest.approx(0.5 + 3.0))


def test_free_bits_stop_the_gradient_below_the_threshold():
  loc = tf.Variable([[0.1, 2.0]])
  with tf.GradientTape() as tape:
    rate = objectives.compute_rate(
        objectives.compute_gaussian_kl(loc, tf.ones([1, 2])), free_bits=0.5)
  gradient = tape.gradient(rate, loc).numpy()
  assert gradient[0, 0] == 0.0 and gradient[0, 1] == pytest.approx(2.0)


def test_linear_warmup():
  values = [float(objectives.compute_linear_warmup(step, 100, 2.0))
            for step in (0, 25, 100, 500)]
  assert values == pytest.approx([0.0, 0.5, 2.0, 2.0])
  assert float(objectives.compute_linear_warmup(0, 0, 1.5)) == 1.5


def test_iwae_estimate_closed_forms():
  # Equal weights: the estimate is that weight, whatever K.
  log_weights = tf.fill([7, 3], -2.5)
  np.testing.assert_allclose(
      objectives.compute_iwae_log_likelihood(log_weights), [-2.5] * 3, rtol=1e-6)
  # K = 1: the estimate is the single log weight (the ELBO's sample).
  np.testing.assert_allclose(
      objectives.compute_iwae_log_likelihood(tf.constant([[1.0, -3.0]])),
      [1.0, -3.0])
  # Two weights: log((e^a + e^b) / 2).
  value = objectives.compute_iwae_log_likelihood(tf.constant([[0.0], [math.log(3.0)]]))
  assert float(value[0]) == pytest.approx(math.log(2.0), rel=1e-6)


def test_iwae_estimate_is_exact_for_a_conjugate_model(rng):
  # z ~ N(0, 1), x | z ~ N(z, 1): p(x) = N(0, 2); the proposal N(0, 1) is
  # broader than the true posterior, so the IWAE estimate converges to
  # log p(x) as K grows and is never above it on average.
  x = 0.7
  prior = tfd.Normal(0.0, 1.0)
  z = prior.sample(200_000, seed=tf.constant([3, 4]))
  log_weights = tfd.Normal(z, 1.0).log_prob(x)  # p(x|z) p(z) / q(z), q = prior
  estimate = float(objectives.compute_iwae_log_likelihood(log_weights[:, None])[0])
  exact = float(tfd.Normal(0.0, math.sqrt(2.0)).log_prob(x))
  assert estimate == pytest.approx(exact, abs=5e-3)


def test_rate_with_sample_weights_is_the_weighted_batch_mean():
  kl_per_dim = tf.constant([[1.0, 0.0], [3.0, 2.0]])
  rate = objectives.compute_rate(kl_per_dim, sample_weight=tf.constant([3.0, 1.0]))
  assert float(rate) == pytest.approx((3 * 1 + 3) / 4 + 2 / 4)


@pytest.mark.parametrize("max_decoded_rows", [1, 7, 48, 10_000])
def test_chunked_iwae_is_exact_on_known_weights(max_decoded_rows, rng):
  num_rows, num_samples = 13, 50
  log_weights = rng.normal(size=(num_samples, num_rows)) * 5.0
  calls = []

  def chunk(rows, samples):
    calls.append((rows, samples))
    assert (rows.stop - rows.start) * (samples.stop - samples.start) <= max(
        max_decoded_rows, samples.stop - samples.start)
    block = log_weights[samples, rows]
    peak = block.max(axis=0)
    return peak + np.log(np.exp(block - peak).sum(axis=0))

  got = objectives.compute_chunked_iwae(chunk, num_rows, num_samples,
                                        max_decoded_rows)
  peak = log_weights.max(axis=0)
  exact = peak + np.log(np.exp(log_weights - peak).sum(axis=0)) - math.log(
      num_samples)
  np.testing.assert_allclose(got, exact, rtol=0, atol=1e-12)
  # Every (row, sample) pair is covered exactly once.
  covered = np.zeros((num_samples, num_rows), int)
  for rows, samples in calls:
    covered[samples, rows] += 1
  np.testing.assert_array_equal(covered, 1)


def test_iwae_chunks_tile_by_size_only():
  rows, samples = objectives.compute_iwae_chunks(10, 1000, 4096)
  assert [(s.start, s.stop) for s in samples] == [(0, 1000)]
  assert [(r.start, r.stop) for r in rows] == [(0, 4), (4, 8), (8, 10)]
  rows, samples = objectives.compute_iwae_chunks(3, 5000, 2048)
  assert [(s.start, s.stop) for s in samples] == [(0, 2048), (2048, 4096),
                                                   (4096, 5000)]
  assert len(rows) == 3
