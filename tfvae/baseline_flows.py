"""Normalizing-flow density baselines for the quality benchmark (benchmarks
and tests only; outside the runtime import graph).

Two standard strong baselines for tabular density estimation, built from
TensorFlow Probability bijectors:

- a masked autoregressive flow (MAF; Papamakarios et al. 2017): layers of
  affine autoregressive transforms, each a MADE network (Germain et al.
  2015) giving every column's shift and log-scale from the columns before
  it, with the column order reversed between layers;
- a neural spline flow (NSF; Durkan et al. 2019), autoregressive variant:
  the same layers with monotone rational-quadratic splines on [-B, B]
  (identity outside) in place of the affine maps.

Columns are standardised first (the log-Jacobian is subtracted, so
densities are in data units). Training: Adam, minibatches, early stopping
on a validation split with the best weights kept; `tuned_flow` chooses a
configuration on validation.
"""

import math

import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp
import tf_keras

tfb = tfp.bijectors
tfd = tfp.distributions

# Configurations tried by `tuned_flow` (layers, hidden units per MADE layer).
CONFIGS = {
    "maf": ({"num_layers": 5, "hidden_units": 64},
            {"num_layers": 5, "hidden_units": 128}),
    "nsf": ({"num_layers": 2, "hidden_units": 64},
            {"num_layers": 4, "hidden_units": 64}),
}
# The splines' interval [-B, B] (standardised units) and number of bins.
SPLINE_BOUND = 4.0
SPLINE_BINS = 8
# Affine log-scales are bounded (soft-clipped) to +-this, for stability.
LOG_SCALE_LIMIT = 3.0


class Flow(tf.Module):
  """A MAF or NSF density on D standardised columns.

  Args:
    kind: "maf" or "nsf".
    event_size: D.
    num_layers: autoregressive layers.
    hidden_units: width of each MADE's two hidden layers.
    seed: int, for the networks' initial weights.
  """

  def __init__(self, kind, event_size, num_layers, hidden_units, seed=0):
    super().__init__(name=f"{kind}_flow")
    if kind not in CONFIGS:
      raise ValueError(f"kind must be one of {sorted(CONFIGS)}, got {kind!r}")
    self.kind = kind
    self.event_size = int(event_size)
    params = 2 if kind == "maf" else 3 * SPLINE_BINS - 1
    self.mades = [tfb.AutoregressiveNetwork(
        params=params, event_shape=[self.event_size],
        hidden_units=[hidden_units, hidden_units], activation="relu",
        kernel_initializer=tf_keras.initializers.GlorotUniform(seed + 17 * i))
                  for i in range(num_layers)]
    layers = []
    for index, made in enumerate(self.mades):
      if kind == "maf":
        layers.append(tfb.MaskedAutoregressiveFlow(
            shift_and_log_scale_fn=_affine_fn(made)))
      else:
        layers.append(tfb.MaskedAutoregressiveFlow(bijector_fn=_spline_fn(made)))
      if index + 1 < num_layers and self.event_size > 1:
        layers.append(tfb.Permute(list(reversed(range(self.event_size)))))
    base = tfd.MultivariateNormalDiag(loc=tf.zeros([self.event_size]))
    self.distribution = tfd.TransformedDistribution(
        base, tfb.Chain(list(reversed(layers))))
    self.distribution.log_prob(tf.zeros([1, self.event_size]))  # builds
    self._compiled = tf.function(
        self.distribution.log_prob,
        input_signature=[tf.TensorSpec([None, self.event_size], tf.float32)])

  def log_prob(self, u):
    """log-density of standardised rows u [N, D], float32 [N]."""
    return self.distribution.log_prob(tf.convert_to_tensor(u, tf.float32))

  def compiled_log_prob(self, u):
    """`log_prob` through one traced graph (for scoring many rows)."""
    return self._compiled(tf.convert_to_tensor(u, tf.float32))


def _affine_fn(made):
  def shift_and_log_scale(y):
    shift, log_scale = tf.unstack(made(y), axis=-1)
    return shift, LOG_SCALE_LIMIT * tf.tanh(log_scale / LOG_SCALE_LIMIT)
  return shift_and_log_scale


def _spline_fn(made):
  def bijector(y):
    out = made(y)
    bins = SPLINE_BINS
    width = 2.0 * SPLINE_BOUND
    # Every bin at least 1e-3 of the interval, slopes at least 1e-3.
    widths = (tf.nn.softmax(out[..., :bins]) * (1.0 - 1e-3 * bins) + 1e-3) * width
    heights = (tf.nn.softmax(out[..., bins:2 * bins]) * (1.0 - 1e-3 * bins) +
               1e-3) * width
    slopes = tf.nn.softplus(out[..., 2 * bins:]) + 1e-3
    return tfb.RationalQuadraticSpline(widths, heights, slopes,
                                       range_min=-SPLINE_BOUND)
  return bijector


def _train(flow, train, validation, seed, max_epochs, patience, batch_size,
           learning_rate=1e-3):
  """Adam on -log p; early stopping on the validation rows (best weights
  kept). Returns the best epoch (1-based)."""
  optimizer = tf.optimizers.Adam(learning_rate)
  variables = flow.trainable_variables
  rng = np.random.default_rng(seed)

  @tf.function
  def step(batch):
    with tf.GradientTape() as tape:
      loss = -tf.reduce_mean(flow.log_prob(batch))
    gradients = tape.gradient(loss, variables)
    gradients, _ = tf.clip_by_global_norm(gradients, 10.0)
    optimizer.apply_gradients(zip(gradients, variables))
    return loss

  validation_loss = tf.function(lambda u: -tf.reduce_mean(flow.log_prob(u)))
  best = (math.inf, 0, [v.numpy() for v in variables])
  train32 = train.astype(np.float32)
  for epoch in range(1, max_epochs + 1):
    order = rng.permutation(len(train32))
    for start in range(0, len(order), batch_size):
      step(tf.constant(train32[order[start:start + batch_size]]))
    loss = float(validation_loss(tf.constant(validation.astype(np.float32))))
    if np.isfinite(loss) and loss < best[0]:
      best = (loss, epoch, [v.numpy() for v in variables])
    elif epoch - best[1] >= patience:
      break
  for variable, value in zip(variables, best[2]):
    variable.assign(value)
  return best[1]


def fit_flow(kind, train, validation, num_layers, hidden_units, seed=0,
             max_epochs=300, patience=20):
  """A flow fitted to rows `train` [N, D] (early stopping on `validation`).

  Returns:
    (log-density function x [M, D] -> float64 [M] in data units, the
    validation log-likelihood per row (nats), the best epoch).
  """
  everything = np.concatenate([train, validation])
  mean, std = everything.mean(0), everything.std(0)
  std = np.where(std > 0, std, 1.0)
  log_jacobian = float(np.sum(np.log(std)))
  tf.random.set_seed(seed)
  flow = Flow(kind, train.shape[1], num_layers, hidden_units, seed)
  batch_size = int(min(512, max(64, len(train) // 16)))
  epoch = _train(flow, (train - mean) / std, (validation - mean) / std, seed,
                 max_epochs, patience, batch_size)

  def log_density(x):
    u = ((np.asarray(x, np.float64) - mean) / std).astype(np.float32)
    return flow.compiled_log_prob(u).numpy().astype(np.float64) - log_jacobian

  return log_density, float(np.mean(log_density(validation))), epoch


def tuned_flow(kind, train, validation, seed=0):
  """A MAF ("maf") or NSF ("nsf") with its configuration chosen on the
  validation rows (`CONFIGS`): the configuration's model as early stopping
  left it (fitted on `train`; refitting on all rows for a fixed number of
  epochs diverged on small tables with repeated values).

  Returns:
    (log-density function x -> [N] nats in data units, description).
  """
  best = None
  for config in CONFIGS[kind]:
    log_density, score, epoch = fit_flow(kind, train, validation, seed=seed,
                                         **config)
    if best is None or score > best[0]:
      best = (score, log_density, epoch, config)
  _, log_density, epoch, config = best
  return log_density, (f"{config['num_layers']} layers of "
                       f"{config['hidden_units']}, {epoch} epochs")
