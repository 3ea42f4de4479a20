"""Generation: new rows x ~ p(x|z), z ~ p(z), in the data's units."""

import tensorflow as tf

from tfvae import keyed_random
from tfvae import validation


def sample(model, num_examples, seed=None):
  """Draws new data x ~ p(x|z), z ~ p(z), in data units.

  Values drawn at a column's atom are the atom exactly.

  Args:
    model: a `tfvae.VAE`.
    num_examples: Python int.
    seed: optional int in [0, 2**63); the same seed gives the same draws.
      None follows TensorFlow's global seed.

  Returns:
    float64 numpy array [num_examples, input_dim].
  """
  num_examples = validation.check_positive_int(num_examples, "num_examples")
  validation.warn_if_untrained(model, "sampling")
  latent_seed, data_seed = tf.unstack(
      tf.random.experimental.stateless_split(keyed_random.seed_pair(seed), 2))
  z = tf.random.stateless_normal([num_examples, model.latent_dim],
                                 seed=latent_seed)
  parameters = model.data_likelihood_parameters(
      model.standard_likelihood_parameters(z))
  # By inverse CDF (`heads.LikelihoodHead.draw`): a value drawn at an atom
  # is the atom itself.
  components, values = tf.unstack(tf.random.stateless_uniform(
      [2, num_examples, model.input_dim], seed=data_seed, dtype=tf.float64))
  return model.likelihood_head.draw(parameters, components, values).numpy()
