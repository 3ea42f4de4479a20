"""Random draws keyed by a row's content: batch-independent and row-independent.

An importance-weighted estimate of log p(x) for a row must not depend on
which other rows were scored with it (the same row gives the same anomaly
score in any batch), yet different rows should get independent draws, so
that the Monte Carlo errors of a data set's rows average out in its mean
log-likelihood. Drawing from a generator keyed by (seed, the row's bits)
gives both: the draws of a row are a pure function of the seed and of the
row itself, and rows that differ in any bit get unrelated draws.

The generator is counter-based: the standard-normal draws for (row key,
sample k, dimensions 2q and 2q + 1) are the cosine and sine of the
Box-Muller transform of two 53-bit uniforms, each the SplitMix64
finaliser (Steele, Lea & Flood 2014) of the key advanced by the pair's
index. Plain TensorFlow integer ops (uint64 wraps
around), so exported graphs compute the same draws as the model.
"""

import math

import tensorflow as tf

from tfvae import validation

_GOLDEN = 0x9E3779B97F4A7C15  # 2**64 / golden ratio: SplitMix64's increment
_MIX_1 = 0xBF58476D1CE4E5B9
_MIX_2 = 0x94D049BB133111EB


def _u64(value):
  return tf.constant(value, tf.uint64)


def mix64(h):
  """The SplitMix64 finaliser: a bijection of uint64 that scrambles bits."""
  h = tf.bitwise.bitwise_xor(h, tf.bitwise.right_shift(h, _u64(30))) * _u64(
      _MIX_1)
  h = tf.bitwise.bitwise_xor(h, tf.bitwise.right_shift(h, _u64(27))) * _u64(
      _MIX_2)
  return tf.bitwise.bitwise_xor(h, tf.bitwise.right_shift(h, _u64(31)))


def row_keys(x, seed):
  """One uint64 key per row, from the seed and every bit of the row.

  Args:
    x: float64 Tensor [batch_size, input_dim]. All NaNs count as one value
      and -0.0 as 0.0, so that equal rows get equal keys.
    seed: int64 Tensor [2].

  Returns:
    uint64 Tensor [batch_size].
  """
  x = tf.convert_to_tensor(x, tf.float64)
  x = tf.where(tf.math.is_nan(x), tf.constant(math.nan, tf.float64), x + 0.0)
  bits = tf.bitcast(x, tf.uint64)
  width = tf.shape(x, out_type=tf.int64)[1]
  column = tf.bitcast(tf.range(width, dtype=tf.int64), tf.uint64)
  # Each column's bits are mixed with its position, then summed: a change
  # in any bit of any column changes the key.
  per_column = mix64(bits + (column + _u64(1)) * _u64(_GOLDEN))
  seed = tf.bitcast(tf.cast(seed, tf.int64), tf.uint64)
  base = mix64(mix64(seed[0] + _u64(_GOLDEN)) + seed[1])
  return mix64(tf.reduce_sum(per_column, axis=1) + base)


def keyed_normal(keys, first_sample, num_samples, dim):
  """Standard-normal draws [num_samples, batch_size, dim], float32.

  Draw (k, b, j) depends only on keys[b], first_sample + k and j, so a
  chunk of samples [first_sample, first_sample + num_samples) is the same
  slice of one long sequence however the samples are chunked.

  Args:
    keys: uint64 Tensor [batch_size], from `row_keys`.
    first_sample: int Tensor, the index of the first sample.
    num_samples: int Tensor, samples per row.
    dim: Python int, the dimension of each draw.
  """
  k = tf.range(num_samples, dtype=tf.int64) + tf.cast(first_sample, tf.int64)
  pairs = (dim + 1) // 2  # Box-Muller gives two draws per pair of uniforms
  q = tf.range(pairs, dtype=tf.int64)
  index = tf.bitcast(k[:, None, None] * (2 * dim) + 2 * q[None, None, :],
                     tf.uint64)  # [k, 1, pairs]
  counter = keys[None, :, None] + index * _u64(_GOLDEN)  # [k, B, pairs]

  def uniform(h):  # (0, 1), 53 bits
    top = tf.bitwise.right_shift(mix64(h), _u64(11))
    return (tf.cast(top, tf.float64) + 0.5) * 2.0**-53

  first = uniform(counter)
  angle = 2.0 * math.pi * uniform(counter + _u64(_GOLDEN))
  radius = tf.sqrt(-2.0 * tf.math.log(first))
  # Dimensions 2q and 2q + 1 are the pair's cosine and sine draws.
  both = tf.stack([radius * tf.cos(angle), radius * tf.sin(angle)], -1)
  shape = tf.concat([tf.shape(counter)[:2], [2 * pairs]], 0)
  return tf.cast(tf.reshape(both, shape)[..., :dim], tf.float32)


def seed_pair(seed):
  """A stateless seed int64 [2]: `[seed, 0]` from an int, or drawn from
  TensorFlow's global seed when seed is None."""
  seed = validation.check_seed(seed)
  if seed is None:
    return tf.random.uniform([2], 0, 2**62, dtype=tf.int64)
  return tf.constant([seed, 0], tf.int64)
