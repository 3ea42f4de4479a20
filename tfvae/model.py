"""The VAE: networks, heads and prior wired into a `tf_keras.Model`.

Training minimises the batch mean of

    -log p(x|z) + beta * KL(q(z|x) || N(0, I)),   z ~ q(z|x) (one sample),

with the KL in closed form (Kingma & Welling 2014). With a learned decoder
scale both terms are log-densities in nats, so `beta = 1` (the true negative
ELBO) needs no re-weighting.
"""

import warnings

import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp
import tf_keras

from tfvae import data as data_lib
from tfvae import heads
from tfvae import objectives

tfd = tfp.distributions

# Decoder rows evaluated at once by `marginal_log_likelihood`: bounds memory
# at about 64k x widest layer floats.
_MAX_DECODED_ROWS = 65536


def make_optimizer(learning_rate=1e-3):
  """Adam with each gradient element clipped to +-1e6.

  Adam's step does not depend on the gradient's scale, so the clip changes
  nothing in normal training; it stops one overflowing element (raw data of
  magnitude 1e6 with a small decoder scale) from turning Adam's moments into
  inf / inf = NaN.

  Args:
    learning_rate: Python float.

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
      for i, units in enumerate(hidden_units)
  ]
  layers.append(tf_keras.layers.Dense(output_size, name="params"))
  return tf_keras.Sequential(layers, name=name)


class Standardization(tf_keras.layers.Layer):
  """Holds per-feature `loc` and `scale` and maps x to (x - loc) / scale.

  Starts as the identity (loc 0, scale 1); `VAE.adapt` sets the statistics.
  """

  def __init__(self, input_dim, **kwargs):
    super().__init__(**kwargs)
    self.input_dim = int(input_dim)
    self.loc = self.add_weight(
        name="loc", shape=[self.input_dim], initializer="zeros", trainable=False)
    self.scale = self.add_weight(
        name="scale", shape=[self.input_dim], initializer="ones",
        trainable=False)

  def call(self, x):
    return (x - self.loc) / self.scale

  def get_config(self):
    config = super().get_config()
    config.update(input_dim=self.input_dim)
    return config


def compute_standardization(x):
  """Robust per-feature location and scale for `VAE.adapt`.

  The location is the median and the scale the interquartile range divided
  by 1.349 (the standard deviation for Gaussian data): a few outliers do not
  squash the bulk of a column. Columns whose interquartile range is zero
  (mostly one value, e.g. binary) fall back to the standard deviation, and
  constant columns to 1.

  Args:
    x: float array [num_examples, input_dim].

  Returns:
    (loc, scale): float32 arrays [input_dim], scale > 0.
  """
  x = np.asarray(x, dtype=np.float64)
  loc = np.median(x, axis=0)
  q25, q75 = np.percentile(x, [25, 75], axis=0)
  scale = (q75 - q25) / 1.349
  std = x.std(axis=0)
  # Spreads below float32 resolution at this magnitude are no spread at all.
  tiny = 8 * np.finfo(np.float32).eps * np.maximum(np.abs(loc), 1e-30)
  scale = np.where(scale > tiny, scale, np.where(std > tiny, std, 1.0))
  return loc.astype(np.float32), scale.astype(np.float32)


class VAE(tf_keras.Model):
  """Variational autoencoder for unrestricted real-valued data.

  Encoder: Dense layers -> `heads.PosteriorNormal`, q(z|x) a diagonal
  Normal with a softplus scale. Prior: N(0, I). Decoder: Dense layers -> a
  likelihood head p(x|z) (`heads.LIKELIHOODS`), reported in the data's own
  units.

  #### Example

  ```python
  model = tfvae.VAE(input_dim=13)
  model.adapt(x_train)          # optional: networks see standardised values
  model.compile()
  model.fit(x_train, epochs=50, validation_split=0.2)
  log_px = model.marginal_log_likelihood(x_test)   # nats per example
  ```

  Args:
    input_dim: Python int, number of features D.
    latent_dim: Python int, size of z. Default value: `5`.
    hidden_units: sequence of hidden-layer widths used by both the encoder
      and (reversed) the decoder; `None` gives one hidden layer of width
      `input_dim` as in the original snippet, `()` a linear encoder and
      decoder. Default value: `None`.
    activation: Keras activation of the hidden layers.
      Default value: `"leaky_relu"`.
    likelihood: decoder family, one of "gaussian", "gaussian_shared",
      "laplace", "student_t", "mse". The default, Student's t, came
      within 0.04 nats per example of the best family on every data set of
      `scripts/bench_quality.py`, where the Gaussian lost up to 1.8 nats.
      Default value: `"student_t"`.
    beta: Python float >= 0, the KL weight (after warm-up).
      Default value: `1.0`.
    kl_warmup_steps: Python int >= 0; beta rises linearly from 0 over this
      many optimizer steps. Default value: `0`.
    free_bits: Python float >= 0, nats per latent dimension below which the
      batch-mean KL gets no gradient. Default value: `0.0`.
    posterior_scale_floor: smallest posterior stddev. Default value: `1e-4`.
    likelihood_scale_floor: smallest decoder scale, in standardised units
      (data units when not adapted). Default value: `1e-3`.
    feature_names: optional sequence of D column names, kept for exports.
    **kwargs: forwarded to `tf_keras.Model` (e.g. `name`).
  """

  def __init__(self,
               input_dim,
               latent_dim=5,
               hidden_units=None,
               activation="leaky_relu",
               likelihood="student_t",
               beta=1.0,
               kl_warmup_steps=0,
               free_bits=0.0,
               posterior_scale_floor=1e-4,
               likelihood_scale_floor=1e-3,
               feature_names=None,
               **kwargs):
    kwargs.setdefault("name", "vae")
    super().__init__(**kwargs)
    self.input_dim = _positive_int(input_dim, "input_dim")
    self.latent_dim = _positive_int(latent_dim, "latent_dim")
    if hidden_units is None:
      hidden_units = (self.input_dim,)
    self.hidden_units = tuple(
        _positive_int(units, "hidden_units entry") for units in hidden_units)
    self.activation = activation
    tf_keras.activations.get(activation)  # fail early on an unknown name
    self.likelihood = likelihood
    if not beta >= 0:
      raise ValueError(f"beta must be >= 0, got {beta!r}")
    self.beta = float(beta)
    if int(kl_warmup_steps) < 0:
      raise ValueError(f"kl_warmup_steps must be >= 0, got {kl_warmup_steps!r}")
    self.kl_warmup_steps = int(kl_warmup_steps)
    if not free_bits >= 0:
      raise ValueError(f"free_bits must be >= 0, got {free_bits!r}")
    self.free_bits = float(free_bits)
    self.posterior_scale_floor = float(posterior_scale_floor)
    self.likelihood_scale_floor = float(likelihood_scale_floor)
    if feature_names is not None:
      feature_names = tuple(str(name) for name in feature_names)
      if len(feature_names) != self.input_dim:
        raise ValueError(
            f"feature_names has {len(feature_names)} names, "
            f"expected input_dim={self.input_dim}")
    self.feature_names = feature_names

    self.standardization = Standardization(self.input_dim, name="standardization")
    self.posterior_head = heads.PosteriorNormal(
        self.latent_dim, scale_floor=self.posterior_scale_floor, name="posterior")
    self.likelihood_head = heads.make_likelihood(
        likelihood, self.input_dim, scale_floor=self.likelihood_scale_floor,
        name="likelihood")
    self.encoder_net = build_mlp(
        self.hidden_units, activation,
        heads.PosteriorNormal.params_size(self.latent_dim), "encoder")
    self.decoder_net = build_mlp(
        self.hidden_units[::-1], activation,
        self.likelihood_head.params_size(self.input_dim), "decoder")
    # The KL weight in force, a variable so the schedule works inside `fit`.
    self.current_beta = tf.Variable(
        self.beta if self.kl_warmup_steps == 0 else 0.0,
        trainable=False, dtype=tf.float32, name="current_beta")

    self.loss_tracker = tf_keras.metrics.Mean(name="loss")
    self.distortion_tracker = tf_keras.metrics.Mean(name="reconstruction_nll")
    self.rate_tracker = tf_keras.metrics.Mean(name="kl")
    # Create every weight now, so `load_weights` works on a fresh model.
    self(tf.zeros([1, self.input_dim]))

  @property
  def metrics(self):
    return [self.loss_tracker, self.distortion_tracker, self.rate_tracker]

  @property
  def prior(self):
    """p(z) = N(0, I), event_shape [latent_dim]."""
    return tfd.Independent(
        tfd.Normal(tf.zeros([self.latent_dim]), 1.0), reinterpreted_batch_ndims=1)

  # -- The probabilistic pieces -------------------------------------------------

  def encode(self, x):
    """The posterior q(z|x).

    Args:
      x: float [batch_size, input_dim], in data units.

    Returns:
      A distribution with batch_shape [batch_size], event_shape [latent_dim].
    """
    x = self._as_tensor(x, "x", self.input_dim)
    return self.posterior_head(self.encoder_net(self.standardization(x)))

  def decode(self, z):
    """The likelihood p(x|z), in data units.

    Args:
      z: float [..., latent_dim].

    Returns:
      A distribution with batch_shape [...], event_shape [input_dim].
    """
    z = self._as_tensor(z, "z", self.latent_dim)
    # The network sees 2-D input: Keras would squeeze a [K, B, 1] sample
    # batch (latent_dim 1) to [K, B] when conforming it to the built shape.
    batch_shape = tf.shape(z)[:-1]
    params = self.decoder_net(tf.reshape(z, [-1, self.latent_dim]))
    params = tf.reshape(params, tf.concat([batch_shape, tf.shape(params)[-1:]], 0))
    return self.likelihood_head([
        params,
        tf.convert_to_tensor(self.standardization.loc),
        tf.convert_to_tensor(self.standardization.scale),
    ])

  def call(self, x, training=None):
    """The decoder mean at one posterior sample, [batch_size, input_dim]."""
    return self.decode(self.encode(x).sample()).mean()

  # -- Training -----------------------------------------------------------------

  def compile(self, optimizer=None, **kwargs):
    """Like `tf_keras.Model.compile`; the optimizer defaults to
    `make_optimizer()` (Adam, learning rate 1e-3)."""
    if optimizer is None:
      optimizer = make_optimizer()
    super().compile(optimizer=optimizer, **kwargs)

  def compute_loss_terms(self, x):
    """The objective's terms on one batch, each a scalar in nats per example.

    Args:
      x: float32 Tensor [batch_size, input_dim].

    Returns:
      dict with `loss` (minimised: distortion + beta * rate with free bits),
      `reconstruction_nll` (mean -log p(x|z)) and `kl` (mean analytic KL).
    """
    posterior = self.encode(x)
    z = posterior.sample()
    distortion = tf.reduce_mean(
        objectives.compute_distortion(self.decode(z), x))
    kl_per_dim = objectives.compute_gaussian_kl(posterior.mean(),
                                                posterior.stddev())
    kl = tf.reduce_mean(tf.reduce_sum(kl_per_dim, axis=-1))
    rate = objectives.compute_rate(kl_per_dim, self.free_bits)
    return {
        "loss": distortion + self.current_beta * rate,
        "reconstruction_nll": distortion,
        "kl": kl,
    }

  def _update_metrics(self, terms, batch_size):
    # Weighted by batch size, so epoch averages are per example even when
    # the last batch is short.
    self.loss_tracker.update_state(terms["loss"], batch_size)
    self.distortion_tracker.update_state(terms["reconstruction_nll"], batch_size)
    self.rate_tracker.update_state(terms["kl"], batch_size)
    logs = {metric.name: metric.result() for metric in self.metrics}
    if self.kl_warmup_steps:
      logs["beta"] = tf.identity(self.current_beta)
    return logs

  def train_step(self, data):
    x, _, _ = tf_keras.utils.unpack_x_y_sample_weight(data)
    if self.kl_warmup_steps:
      self.current_beta.assign(objectives.compute_linear_warmup(
          self.optimizer.iterations, self.kl_warmup_steps, self.beta))
    with tf.GradientTape() as tape:
      terms = self.compute_loss_terms(x)
    gradients = tape.gradient(terms["loss"], self.trainable_variables)
    self.optimizer.apply_gradients(zip(gradients, self.trainable_variables))
    return self._update_metrics(terms, tf.shape(x)[0])

  def test_step(self, data):
    x, _, _ = tf_keras.utils.unpack_x_y_sample_weight(data)
    return self._update_metrics(self.compute_loss_terms(x), tf.shape(x)[0])

  def fit(self, x=None, y=None, **kwargs):
    """`tf_keras.Model.fit` on x alone, after checking the data's width.

    Accepts a numpy array [N, input_dim] (with `validation_split` or
    `validation_data=(x_val,)`) or a `tf.data.Dataset` of x batches.
    `y` must be None: a VAE has no targets.
    """
    if y is not None:
      raise ValueError("a VAE trains on x alone; pass y=None")
    x = self._check_data(x, "x")
    if isinstance(x, np.ndarray) and not self.is_adapted:
      _warn_if_badly_scaled(x)
    validation_data = kwargs.get("validation_data")
    if isinstance(validation_data, (tuple, list)):
      kwargs["validation_data"] = tuple(
          self._check_data(part, "validation_data") for part in validation_data)
    elif validation_data is not None:
      kwargs["validation_data"] = self._check_data(
          validation_data, "validation_data")
    return super().fit(x, **kwargs)

  def evaluate(self, x=None, y=None, **kwargs):
    """`tf_keras.Model.evaluate` on x alone (see `fit`)."""
    if y is not None:
      raise ValueError("a VAE evaluates on x alone; pass y=None")
    return super().evaluate(self._check_data(x, "x"), **kwargs)

  def adapt(self, x):
    """Standardises the networks' inputs and outputs with statistics of x.

    The encoder then sees `(x - loc) / scale`, and the decoder's
    distribution is mapped back with `x = loc + scale * u`, so likelihoods,
    reconstructions and samples stay in the data's units (the log-Jacobian
    `-sum(log scale)` is part of every reported log-likelihood). See
    `compute_standardization` for the statistics.

    Args:
      x: float array [num_examples, input_dim], the training data.

    Returns:
      self, for chaining.
    """
    x = data_lib.validate_array(x, "adapt data", self.input_dim)
    loc, scale = compute_standardization(x)
    self.standardization.loc.assign(loc)
    self.standardization.scale.assign(scale)
    return self

  @property
  def is_adapted(self):
    """Whether `adapt` set non-trivial standardisation statistics."""
    return not (np.all(self.standardization.loc.numpy() == 0) and
                np.all(self.standardization.scale.numpy() == 1))

  # -- Inference ----------------------------------------------------------------

  def reconstruct(self, x):
    """The decoder mean at the posterior mean, numpy [batch_size, input_dim]."""
    return self.decode(self.encode(x).mean()).mean().numpy()

  def sample(self, num_examples, seed=None):
    """Draws new data x ~ p(x|z), z ~ p(z), in data units.

    Args:
      num_examples: Python int.
      seed: optional int; the same seed gives the same draws.

    Returns:
      float32 numpy array [num_examples, input_dim].
    """
    latent_seed, data_seed = tf.unstack(
        tf.random.experimental.stateless_split(_seed_pair(seed), 2))
    z = self.prior.sample(int(num_examples), seed=latent_seed)
    return self.decode(z).sample(seed=data_seed).numpy()

  @tf.function(reduce_retracing=True)
  def _log_importance_weights(self, x, num_samples, seed):
    posterior = self.encode(x)
    z = posterior.sample(num_samples, seed=seed)  # [K, B, latent_dim]
    return objectives.compute_log_importance_weights(
        log_likelihood=self.decode(z).log_prob(x),
        log_prior=self.prior.log_prob(z),
        log_posterior=posterior.log_prob(z))

  def marginal_log_likelihood(self, x, num_samples=1000, seed=None):
    """Importance-weighted estimates of log p(x) (Burda et al. 2016), nats.

    Uses q(z|x) as the proposal with `num_samples` draws per example. The
    estimate's expectation is a lower bound on log p(x) that tightens as
    `num_samples` grows. Work is split into chunks of at most 65,536
    decoded rows, so memory stays bounded for any N and K.

    Args:
      x: float array [N, input_dim], in data units.
      num_samples: Python int K >= 1.
      seed: optional int, for reproducible estimates.

    Returns:
      float64 numpy array [N], log p(x) per example, in nats.
    """
    x = data_lib.validate_array(x, "x", self.input_dim)
    num_samples = _positive_int(num_samples, "num_samples")
    samples_per_chunk = min(num_samples, _MAX_DECODED_ROWS)
    examples_per_chunk = max(1, _MAX_DECODED_ROWS // samples_per_chunk)
    seed = _seed_pair(seed)
    estimates = []
    for start in range(0, len(x), examples_per_chunk):
      x_chunk = tf.constant(x[start:start + examples_per_chunk])
      log_weights = []
      for done in range(0, num_samples, samples_per_chunk):
        seed, chunk_seed = tf.unstack(
            tf.random.experimental.stateless_split(seed, 2))
        log_weights.append(self._log_importance_weights(
            x_chunk, tf.constant(min(samples_per_chunk, num_samples - done)),
            chunk_seed))
      estimates.append(objectives.compute_iwae_log_likelihood(
          tf.cast(tf.concat(log_weights, axis=0), tf.float64)).numpy())
    return np.concatenate(estimates)

  def score(self, x, num_samples=1000, seed=None):
    """Anomaly scores: -log p(x) per example in nats (higher is stranger).

    Args:
      x: float array [N, input_dim].
      num_samples: importance samples per example.
      seed: optional int.

    Returns:
      float64 numpy array [N].
    """
    return -self.marginal_log_likelihood(x, num_samples=num_samples, seed=seed)

  # -- Config -------------------------------------------------------------------

  def get_config(self):
    return {
        "input_dim": self.input_dim,
        "latent_dim": self.latent_dim,
        "hidden_units": list(self.hidden_units),
        "activation": self.activation,
        "likelihood": self.likelihood,
        "beta": self.beta,
        "kl_warmup_steps": self.kl_warmup_steps,
        "free_bits": self.free_bits,
        "posterior_scale_floor": self.posterior_scale_floor,
        "likelihood_scale_floor": self.likelihood_scale_floor,
        "feature_names": (None if self.feature_names is None
                          else list(self.feature_names)),
        "name": self.name,
    }

  @classmethod
  def from_config(cls, config, custom_objects=None):
    return cls(**config)

  # -- Input checks -------------------------------------------------------------

  def _as_tensor(self, value, name, width):
    if isinstance(value, (tf.Tensor, tf.Variable)):
      return tf.cast(value, tf.float32)
    array = np.asarray(value)
    if array.ndim >= 1 and array.shape[-1] != width:
      raise ValueError(
          f"{name} has {array.shape[-1]} columns, but the model expects {width}")
    return tf.constant(array, dtype=tf.float32)

  def _check_data(self, value, name):
    if value is None:
      raise ValueError(f"{name}: no data given")
    if isinstance(value, tf.data.Dataset):
      spec = value.element_spec
      spec = spec[0] if isinstance(spec, tuple) else spec
      width = spec.shape[-1] if spec.shape.rank else None
      if width is not None and width != self.input_dim:
        raise ValueError(
            f"{name}: dataset elements have {width} columns, but the model "
            f"expects {self.input_dim}")
      return value
    return data_lib.validate_array(value, name, self.input_dim)


def _warn_if_badly_scaled(x):
  spread = np.std(x, axis=0)
  magnitude = np.max(np.abs(x), axis=0)
  if magnitude.max() > 1e3 or spread.max() > 1e2 or (
      spread[spread > 0].min(initial=1.0) < 1e-2):
    warnings.warn(
        "training on raw values whose columns range from std "
        f"{spread.min():.3g} to {spread.max():.3g} and magnitude up to "
        f"{magnitude.max():.3g}; call model.adapt(x) first to train on "
        "standardised values (likelihoods stay in data units)",
        stacklevel=3)


def _positive_int(value, name):
  if isinstance(value, bool) or int(value) != value or int(value) < 1:
    raise ValueError(f"{name} must be a positive integer, got {value!r}")
  return int(value)


def _seed_pair(seed):
  """A stateless seed [2] from an int, or a fresh random one for None."""
  if seed is None:
    seed = np.random.default_rng().integers(0, 2**31 - 1)
  return tf.constant([int(seed), 0], dtype=tf.int32)
