"""Tests of tfvae.inference.levels: the recalibration of a categorical
column's imputation towards its frequencies."""

import numpy as np
import pytest
import tensorflow as tf

from tfvae.inference import levels


def _rows(rng, n, informative):
  """Truth codes of a 3-level column and a model's probabilities for them:
  informative ones that put 0.8 on the truth, or noise around the
  frequencies that know nothing of the row."""
  shares = np.array([0.5, 0.3, 0.2])
  truth = rng.choice(3, size=n, p=shares)
  if informative:
    probabilities = np.full([n, 3], 0.1)
    probabilities[np.arange(n), truth] = 0.8
  else:
    probabilities = rng.dirichlet(40 * shares, size=n)
  return truth, probabilities, shares


def test_frequencies_are_the_observed_codes_shares():
  codes = np.array([0.0, 2.0, 2.0, np.nan, 1.0, 2.0])
  np.testing.assert_allclose(levels.frequencies(codes, 4),
                             [0.2, 0.2, 0.6, 0.0])
  np.testing.assert_allclose(levels.frequencies([np.nan], 2), [0.5, 0.5])


def test_the_weight_maximises_the_held_out_log_probability():
  rng = np.random.default_rng(0)
  truth, probabilities, shares = _rows(rng, 400, informative=True)
  # Half the rows informative, half confidently wrong (probabilities that
  # ignore the truth and stray far from the frequencies): the best weight
  # lies inside (0, 1); found independently as the root of the
  # derivative, sum (p - f) / (w p + (1 - w) f), decreasing in w (the sum
  # of logs is concave), by bisection.
  noise_truth = rng.choice(3, size=400, p=shares)
  noise = rng.dirichlet([1.0, 1.0, 1.0], size=400)
  truth = np.concatenate([truth, noise_truth])
  probabilities = np.concatenate([probabilities, noise])
  weight, gain = levels.fit_weight(probabilities, truth, shares)

  model = probabilities[np.arange(len(truth)), truth]
  marginal = shares[truth]

  def total(w):
    return np.sum(np.log(w * model + (1 - w) * marginal))

  def slope(w):
    return np.sum((model - marginal) / (w * model + (1 - w) * marginal))

  low, high = 0.0, 1.0
  assert slope(low) > 0 > slope(high)
  for _ in range(60):
    middle = 0.5 * (low + high)
    low, high = (middle, high) if slope(middle) > 0 else (low, middle)
  best = 0.5 * (low + high)
  assert 0.05 < best < 0.95
  assert weight == pytest.approx(best, abs=1.5e-3)
  assert gain == pytest.approx(total(best) - total(0.0), rel=1e-4)
  assert gain > levels.MIN_GAIN_NATS


def test_a_model_that_knows_the_level_keeps_its_weight():
  truth, probabilities, shares = _rows(np.random.default_rng(1), 200, True)
  weight, gain = levels.fit_weight(probabilities, truth, shares)
  assert weight == 1.0 and gain > 50


def test_noise_around_the_frequencies_falls_back_to_them():
  # Probabilities that know nothing of the row cannot beat the
  # frequencies by more than Akaike's one nat: the weight is 0, so the
  # imputation is the column's mode.
  for seed in range(5):
    truth, probabilities, shares = _rows(np.random.default_rng(seed), 300,
                                         False)
    weight, gain = levels.fit_weight(probabilities, truth, shares)
    assert weight == 0.0, (seed, gain)
    assert gain <= levels.MIN_GAIN_NATS
  assert levels.fit_weight(np.zeros([0, 3]), np.zeros(0), shares) == (0.0,
                                                                       0.0)


def test_a_level_the_frequencies_never_saw_needs_the_model():
  # The frequencies give the truth probability 0: only a positive weight
  # gives it any, whatever the gain's size.
  probabilities = np.array([[0.2, 0.8], [0.6, 0.4]])
  weight, gain = levels.fit_weight(probabilities, [1, 0], [1.0, 0.0])
  assert weight > 0 and gain == np.inf


def test_blend_in_numpy_and_tensorflow():
  rng = np.random.default_rng(2)
  probabilities = rng.dirichlet([1.0, 1.0, 1.0], size=[5, 2])  # [B, C, A]
  probabilities[:, 1, 2] = 0.0  # column 2 has two levels
  probabilities[:, 1, :2] /= probabilities[:, 1, :2].sum(-1, keepdims=True)
  weights = np.array([0.25, 1.0])
  shares = np.array([[0.5, 0.3, 0.2], [0.9, 0.1, 0.0]])
  expected = np.stack([0.25 * probabilities[:, 0] + 0.75 * shares[0],
                       probabilities[:, 1]], 1)
  np.testing.assert_allclose(levels.blend(probabilities, weights, shares),
                             expected)
  blended = levels.blend(tf.constant(probabilities, tf.float32), weights,
                         shares)
  assert blended.dtype == tf.float32
  np.testing.assert_allclose(blended.numpy(), expected, rtol=1e-6)
  np.testing.assert_allclose(expected.sum(-1), 1.0)


def test_a_calibration_is_checked_against_the_models_columns():
  good = {"weights": [0.5, 0], "frequencies": [[0.5, 0.5], [0.2, 0.3, 0.5]]}
  assert levels.check(good, [0, 2, 3]) == {
      "weights": [0.5, 0.0], "frequencies": [[0.5, 0.5], [0.2, 0.3, 0.5]]}
  assert levels.check(None, [2]) is None
  with pytest.raises(ValueError, match="categorical columns have"):
    levels.check(good, [2, 2])
  with pytest.raises(ValueError, match=r"in \[0, 1\]"):
    levels.check({**good, "weights": [1.5, 0.0]}, [0, 2, 3])
  weights, table = levels.as_arrays(good, 4)
  np.testing.assert_array_equal(table, [[0.5, 0.5, 0, 0], [0.2, 0.3, 0.5, 0]])
  np.testing.assert_array_equal(weights, [0.5, 0.0])
