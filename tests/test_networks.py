"""Networks: shapes, the missing-value indicator, the optimizer."""

import numpy as np
import tensorflow as tf

from tfvae import networks


def test_mlp_shapes():
  mlp = networks.build_mlp((8, 4), "relu", 3, "m")
  assert mlp(tf.zeros([5, 2])).shape == (5, 3)
  assert [layer.units for layer in mlp.layers] == [8, 4, 3]
  assert len(networks.build_mlp((), "relu", 3, "lin").layers) == 1


def test_indicator_weights_start_at_zero_and_change_nothing_without_gaps():
  rng = np.random.default_rng(0)
  values = tf.constant(rng.normal(size=(6, 3)), tf.float32)
  with_indicator = networks.EncoderNetwork(3, (5,), "leaky_relu", 4)
  without = networks.EncoderNetwork(3, (5,), "leaky_relu", 4,
                                    missing_indicator=False)
  no_gaps = tf.zeros([6, 3])
  with_indicator(values, no_gaps)
  without(values, no_gaps)
  for source, target in zip(with_indicator.dense_layers, without.dense_layers):
    target.set_weights(source.get_weights())
  np.testing.assert_array_equal(with_indicator(values, no_gaps),
                                without(values, no_gaps))
  # Gradients reach the indicator's kernel only through missing entries.
  with tf.GradientTape() as tape:
    out = tf.reduce_sum(with_indicator(values, no_gaps))
  gradient = tape.gradient(out, with_indicator.indicator_layer.kernel)
  np.testing.assert_array_equal(gradient, 0.0)
  gaps = tf.constant([[1.0, 0.0, 0.0]] * 6)
  with tf.GradientTape() as tape:
    out = tf.reduce_sum(with_indicator(values, gaps))
  gradient = tape.gradient(out, with_indicator.indicator_layer.kernel).numpy()
  assert np.any(gradient[0] != 0) and np.all(gradient[1:] == 0)


def test_optimizer_clips_each_element():
  optimizer = networks.make_optimizer(0.1)
  variable = tf.Variable([0.0, 0.0])
  optimizer.apply_gradients([(tf.constant([1e30, 1.0]), variable)])
  assert np.all(np.isfinite(variable.numpy()))
