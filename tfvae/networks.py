"""The networks and the optimizer: Dense stacks, nothing probabilistic.

The encoder network takes the standardised values with missing entries set
to 0, and a missing-value indicator through its own zero-initialised
weights: on complete data the indicator is all zeros, so those weights get
no gradient and the network computes exactly what it would without them.
"""

import tf_keras

from tfvae import validation


def make_optimizer(learning_rate=1e-3):
  """Adam with each gradient element clipped to +-1e6.

  Adam's step does not depend on the gradient's scale, so the clip changes
  nothing in normal training; it stops one overflowing element (raw data of
  magnitude 1e6 with a small decoder scale) from turning Adam's moments into
  inf / inf = NaN.

  Args:
    learning_rate: Python float, or a `tf_keras` learning-rate schedule.

  Returns:
    A `tf_keras.optimizers.Adam`.
  """
  return tf_keras.optimizers.Adam(learning_rate=learning_rate, clipvalue=1e6)


def build_mlp(hidden_units, activation, output_size, name):
  """A stack of Dense layers ending in a linear layer of `output_size`.

  Args:
    hidden_units: sequence of ints, widths of the hidden layers (may be
      empty for a linear map).
    activation: Keras activation name for the hidden layers.
    output_size: Python int, width of the final linear layer.
    name: the Sequential's name.

  Returns:
    A `tf_keras.Sequential` mapping [..., in] to [..., output_size].
  """
  layers = [
      tf_keras.layers.Dense(units, activation=activation, name=f"hidden_{i}")
      for i, units in enumerate(validation.check_widths(hidden_units))
  ]
  layers.append(tf_keras.layers.Dense(output_size, name="params"))
  return tf_keras.Sequential(layers, name=name)


@tf_keras.saving.register_keras_serializable(package="tfvae")
class EncoderNetwork(tf_keras.layers.Layer):
  """An MLP of (values, missing indicator) -> posterior parameters.

  The first layer is `Dense(values) + Dense_no_bias(indicator)`, the
  indicator's kernel initialised at zero; then the activation and the
  remaining layers, as `build_mlp` builds them.

  Args:
    input_dim: Python int, number of features D.
    hidden_units: sequence of hidden widths (empty: linear).
    activation: Keras activation of the hidden layers.
    output_size: Python int, width of the output.
    missing_indicator: whether the indicator is an input. Without it,
      missing entries are only filled with 0.
    level_inputs: Python int, the width of the categorical columns'
      one-hot levels (0: none), a third input with its own first-layer
      kernel.
    **kwargs: forwarded to `tf_keras.layers.Layer`.
  """

  def __init__(self, input_dim, hidden_units, activation, output_size,
               missing_indicator=True, level_inputs=0, **kwargs):
    super().__init__(**kwargs)
    self.input_dim = int(input_dim)
    self.hidden_units = validation.check_widths(hidden_units)
    self.activation = activation
    self.output_size = int(output_size)
    self.missing_indicator = bool(missing_indicator)
    widths = list(self.hidden_units) + [self.output_size]
    self.dense_layers = [
        tf_keras.layers.Dense(units, name=f"hidden_{i}" if i < len(
            self.hidden_units) else "params")
        for i, units in enumerate(widths)
    ]
    self.indicator_layer = (
        tf_keras.layers.Dense(widths[0], use_bias=False,
                              kernel_initializer="zeros", name="missing")
        if self.missing_indicator else None)
    self.level_inputs = int(level_inputs)
    self.level_layer = (
        tf_keras.layers.Dense(widths[0], use_bias=False, name="levels")
        if self.level_inputs else None)
    self._activation_fn = tf_keras.activations.get(activation)

  def call(self, values, missing, levels=None):
    """values, missing: float32 [batch_size, input_dim] (missing None: all
    observed); levels: float32 [batch_size, level_inputs] one-hot (with
    categorical columns) -> [batch_size, output_size]."""
    h = self.dense_layers[0](values)
    if self.indicator_layer is not None and missing is not None:
      h = h + self.indicator_layer(missing)
    if self.level_layer is not None:
      h = h + self.level_layer(levels)
    for layer in self.dense_layers[1:]:
      h = layer(self._activation_fn(h))
    return h

  def get_config(self):
    config = super().get_config()
    config.update(input_dim=self.input_dim, hidden_units=list(self.hidden_units),
                  activation=self.activation, output_size=self.output_size,
                  missing_indicator=self.missing_indicator)
    if self.level_inputs:
      config.update(level_inputs=self.level_inputs)
    return config
