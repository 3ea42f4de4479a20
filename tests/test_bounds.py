"""The objective on a batch: which bound, with how many draws."""

import numpy as np
import tensorflow as tf

from tfvae import bounds
from tests import helpers

SEED = tf.constant([3, 4])


def gappy_model(num_train_samples, missing_train_samples):
  x = helpers.small_data(n=64)
  model = helpers.vae(input_dim=4, num_train_samples=num_train_samples,
                      missing_train_samples=missing_train_samples, seed=0)
  model.adapt(x)
  model.compile()
  gappy = x[:16].copy()
  gappy[np.arange(16) % 3 == 0, 1] = np.nan
  return model, x[16:32], gappy


def traced_terms(model, x):
  """`batch_terms` in a graph: its loss [batch] and the graph's op types."""
  function = tf.function(lambda x: bounds.batch_terms(
      model, x, SEED, {"loss": 1.0}, None)["loss"])
  concrete = function.get_concrete_function(tf.TensorSpec(x.shape, tf.float64))
  graph = concrete.graph.as_graph_def()
  ops = {node.op for node in graph.node}
  ops |= {node.op for f in graph.library.function for node in f.node_def}
  return function(tf.constant(x)).numpy(), ops


def test_a_batch_with_gaps_takes_the_missing_values_k():
  model, complete, gappy = gappy_model(3, 7)
  for x, k in ((complete, 3), (gappy, 7)):
    loss, ops = traced_terms(model, x)
    expected = bounds.per_example_terms(model, tf.constant(x), SEED,
                                        {"loss": 1.0}, k)["loss"].numpy()
    np.testing.assert_allclose(loss, expected, rtol=1e-6)
    # Two importance-weighted bounds are one graph whose K the batch picks
    # (a cond's gradient would carry both branches' intermediates).
    assert not ops & {"If", "StatelessIf"}, ops


def test_the_elbo_and_a_bound_with_gaps_are_two_branches():
  # K = 1 is the ELBO with the analytic KL, not a one-draw bound: a cond.
  model, complete, gappy = gappy_model(1, 5)
  for x, k in ((complete, 1), (gappy, 5)):
    loss, ops = traced_terms(model, x)
    expected = bounds.per_example_terms(model, tf.constant(x), SEED,
                                        {"loss": 1.0}, k)["loss"].numpy()
    np.testing.assert_allclose(loss, expected, rtol=1e-6)
    assert ops & {"If", "StatelessIf"}
