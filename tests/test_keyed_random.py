"""keyed_random: standard-normal draws keyed by (seed, row), batch-free."""

import math

import numpy as np
import tensorflow as tf

from tfvae import keyed_random


def keys(x, seed=(0, 0)):
  return keyed_random.row_keys(tf.constant(x, tf.float64),
                               tf.constant(seed, tf.int64)).numpy()


def normal_cdf(values):
  return 0.5 * (1.0 + np.vectorize(math.erf)(values / math.sqrt(2.0)))


def test_draws_are_standard_normal():
  draws = keyed_random.keyed_normal(
      tf.constant(keys(np.ones((1, 3)))), 0, 20000, 3).numpy().ravel()
  n = len(draws)  # 60,000
  assert abs(draws.mean()) < 4 / math.sqrt(n)
  assert abs(draws.var() - 1.0) < 4 * math.sqrt(2.0 / n)
  # Kolmogorov-Smirnov against N(0, 1): 1.95 / sqrt(n) is the 0.1% level.
  ordered = np.sort(draws.astype(np.float64))
  cdf = normal_cdf(ordered)
  ecdf = np.arange(1, n + 1) / n
  assert np.max(np.maximum(ecdf - cdf, cdf - (ecdf - 1 / n))) < 1.95 / math.sqrt(n)
  # Tails as a Normal's: P(|z| > 3) = 0.0027.
  assert abs(np.mean(np.abs(draws) > 3) - 0.0027) < 4 * math.sqrt(0.0027 / n)


def test_rows_differing_in_one_bit_get_unrelated_draws():
  rng = np.random.default_rng(0)
  x = rng.normal(size=(2000, 4)) * 1e6 + 1.7e9
  nudged = x.copy()
  nudged[:, 3] = np.nextafter(x[:, 3], np.inf)  # one ulp
  both = np.concatenate([x, nudged])
  draws = keyed_random.keyed_normal(tf.constant(keys(both)), 0, 1, 1).numpy()
  a, b = draws[0, :2000, 0], draws[0, 2000:, 0]
  assert abs(np.corrcoef(a, b)[0, 1]) < 4 / math.sqrt(2000)
  # Across rows, across samples and across dimensions: no correlation.
  many = keyed_random.keyed_normal(tf.constant(keys(x)), 0, 2, 2).numpy()
  flat = many.reshape(2, 2000, 2)
  for first, second in [(flat[0, :, 0], flat[1, :, 0]),
                        (flat[0, :, 0], flat[0, :, 1]),
                        (flat[0, :-1, 0], flat[0, 1:, 0])]:
    assert abs(np.corrcoef(first, second)[0, 1]) < 4 / math.sqrt(2000)


def test_keys_depend_on_the_row_and_the_seed_only():
  x = np.array([[1.0, np.nan, -0.0], [1.0, float("nan"), 0.0],
                [1.0, np.nan, 1e-300], [1.0, 0.0, np.nan]])
  first = keys(x)
  assert first[0] == first[1]  # any NaN, and -0.0 == 0.0
  assert len(set(first[1:].tolist())) == 3  # a changed value or position
  # A row's key does not depend on the other rows of the batch.
  assert keys(x[2:3])[0] == first[2]
  assert keys(np.concatenate([x[::-1], x]))[7] == first[3]
  assert keys(x, seed=(0, 1))[0] != first[0]
  assert keys(x, seed=(1, 0))[0] != first[0]
  assert keys(x, seed=(2**63 - 1, 5))[0] != keys(x, seed=(2**63 - 2, 5))[0]


def test_chunks_are_slices_of_one_sequence():
  key = tf.constant(keys(np.arange(6.0).reshape(3, 2)))
  whole = keyed_random.keyed_normal(key, 0, 10, 4).numpy()
  part = keyed_random.keyed_normal(key, 3, 4, 4).numpy()
  np.testing.assert_array_equal(part, whole[3:7])
  one_row = keyed_random.keyed_normal(key[1:2], 0, 10, 4).numpy()
  np.testing.assert_array_equal(one_row[:, 0], whole[:, 1])
