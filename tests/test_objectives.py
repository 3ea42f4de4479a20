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


def test_distortion_is_negative_log_prob():
  likelihood = tfd.Independent(tfd.Normal([0.0, 1.0], [1.0, 2.0]), 1)
  x = tf.constant([[0.5, -1.0]])
  expected = -(-0.5 * 0.25 - 0.5 * math.log(2 * math.pi)
               - 0.5 * 1.0 - math.log(2.0) - 0.5 * math.log(2 * math.pi))
  assert float(objectives.compute_distortion(likelihood, x)[0]) == (
      pytest.approx(expected, rel=1e-6))


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
