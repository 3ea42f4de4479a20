"""The VAE: networks, standardisation, heads and prior wired into a Keras model.

Training minimises the batch mean of

    -log p(x_obs|z) + beta * KL(q(z|x_obs) || N(0, I)),   z ~ q(z|x_obs),

with the KL in closed form and one reparameterised sample (Kingma & Welling
2014), or, with `num_train_samples=K > 1`, the negative importance-weighted
bound with K samples (Burda et al. 2016). With a learned decoder scale both
terms are log-densities in nats, so `beta = 1` (the true negative ELBO)
needs no re-weighting. `x_obs` is x without its missing (NaN) entries: the
decoder's log-density is summed over the observed features only (Mattei &
Frellsen 2019).

There is one path from x to z (`posterior_parameters`) and one from z to x
(`likelihood_parameters`); the trainer, the importance-weighted estimate,
the SavedModel export and the TensorBoard monitor all go through them.
"""

import warnings

import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp
import tf_keras

from tfvae import data as data_lib
from tfvae import families
from tfvae import heads
from tfvae import networks
from tfvae import objectives
from tfvae import preprocessing
from tfvae import statistics
from tfvae.inference import importance
from tfvae.inference import imputation
from tfvae.inference import sampling
from tfvae import validation

tfd = tfp.distributions

# Training steps per graph call, and XLA for the training step: the defaults
# of `compile`, measured by `scripts/bench_train.py` (see the README).
STEPS_PER_EXECUTION = 32
JIT_COMPILE = False


class UntrainedModelWarning(UserWarning):
  """Scoring, imputing or sampling with a model that was never trained."""


@tf_keras.saving.register_keras_serializable(package="tfvae")
class VAE(tf_keras.Model):
  """Variational autoencoder for unrestricted real-valued data.

  Encoder: Dense layers -> `heads.PosteriorNormal`, q(z|x) a diagonal
  Normal with a softplus scale. Prior: N(0, I). Decoder: Dense layers -> a
  likelihood head p(x|z) (`tfvae.families`), reported in the data's own
  units. Missing values (NaN) are allowed everywhere x is.

  Calling the model (`model(x)`, `predict`) gives a deterministic
  reconstruction: the decoder's mean at the posterior mean, in data units.

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
    likelihood: decoder family, one of `tfvae.families.NAMES`.
      Default value: `"student_t"` (see the README's benchmark).
    beta: Python float >= 0, the KL weight (after warm-up).
      Default value: `1.0`.
    kl_warmup_steps: Python int >= 0; beta rises linearly from 0 over this
      many optimizer steps. Default value: `0`.
    free_bits: Python float >= 0, nats per latent dimension below which the
      batch-mean KL gets no gradient (single-sample training only).
      Default value: `0.0`.
    num_train_samples: Python int K >= 1; K > 1 trains on the
      importance-weighted bound with K samples. Default value: `1`.
    missing_train_samples: K for batches with missing values (MIWAE,
      Mattei & Frellsen 2019): with gaps, the single-sample ELBO's
      amortisation gap biases the decoder (measured on probabilistic PCA
      with 30% hidden: 18% below the closed-form fit with K = 1, 0.8% with
      K = 20). Default value: `None`, i.e. `max(20, num_train_samples)`.
    min_df: Student's t degrees-of-freedom floor (>= 1).
      Default value: `1.0`.
    df_transform: how Student's t's raw_df maps to df, "softplus" or "exp"
      (`heads.StudentTLikelihood`: "exp" lets df reach Gaussian or
      Cauchy-like tails quickly). Default value: `"softplus"`.
    posterior_scale_floor: smallest posterior stddev. Default value: `1e-4`.
    likelihood_scale_floor: smallest decoder scale, in standardised units
      (data units when not adapted). Default value: `1e-3`.
    missing_indicator: whether the encoder sees which values are missing
      (besides the observed values, with missing ones set to 0).
      Default value: `True`.
    num_atoms: the most atoms per column (values held by at least 1% of
      the rows, found by `adapt`), each modelled as a spike as narrow as
      the likelihood's scale floor, mixed with the family with weights that
      depend on z (`heads.LikelihoodHead`); 0 turns atoms off. Ignored by
      the `mse` family. Default value: `8`.
    feature_names: optional sequence of D column names, kept for exports.
    seed: optional int in [0, 2**63) for the training noise; None draws one
      from TensorFlow's global seed (`tf_keras.utils.set_random_seed`).
    **kwargs: forwarded to `tf_keras.Model` (e.g. `name`).
  """

  def __init__(self,
               input_dim,
               latent_dim=5,
               hidden_units=None,
               activation="leaky_relu",
               likelihood=families.DEFAULT,
               beta=1.0,
               kl_warmup_steps=0,
               free_bits=0.0,
               num_train_samples=1,
               missing_train_samples=None,
               min_df=heads.StudentTLikelihood.DEFAULT_MIN_DF,
               df_transform="softplus",
               posterior_scale_floor=1e-4,
               likelihood_scale_floor=1e-3,
               missing_indicator=True,
               num_atoms=8,
               feature_names=None,
               seed=None,
               **kwargs):
    kwargs.setdefault("name", "vae")
    kwargs["autocast"] = False  # x stays float64 until it is standardised
    for keras_only in ("trainable", "dtype"):
      kwargs.pop(keras_only, None)
    super().__init__(**kwargs)
    # Step logs are aggregated over replicas inside the step (see
    # `_aggregated_result`), so every replica returns the same values.
    self.distribute_reduction_method = "first"
    self.input_dim = validation.check_positive_int(input_dim, "input_dim")
    self.latent_dim = validation.check_positive_int(latent_dim, "latent_dim")
    if hidden_units is None:
      hidden_units = (self.input_dim,)
    self.hidden_units = validation.check_widths(hidden_units)
    self.activation = activation
    tf_keras.activations.get(activation)  # fail early on an unknown name
    self.likelihood = families.check_family(likelihood)
    self.beta = validation.check_finite(beta, "beta", minimum=0)
    self.kl_warmup_steps = validation.check_non_negative_int(
        kl_warmup_steps, "kl_warmup_steps")
    self.free_bits = validation.check_finite(free_bits, "free_bits", minimum=0)
    self.num_train_samples = validation.check_positive_int(
        num_train_samples, "num_train_samples")
    if missing_train_samples is None:
      missing_train_samples = max(20, self.num_train_samples)
    self.missing_train_samples = validation.check_positive_int(
        missing_train_samples, "missing_train_samples")
    if self.free_bits and self.num_train_samples > 1:
      raise ValueError("free_bits applies to single-sample training; use "
                       "num_train_samples=1 with free_bits")
    self.min_df = validation.check_finite(min_df, "min_df", minimum=1)
    self.df_transform = heads.check_df_transform(df_transform)
    self.posterior_scale_floor = validation.check_finite(
        posterior_scale_floor, "posterior_scale_floor", minimum=0)
    self.likelihood_scale_floor = validation.check_finite(
        likelihood_scale_floor, "likelihood_scale_floor", minimum=0,
        exclusive=True)
    self.missing_indicator = bool(missing_indicator)
    self._data_has_gaps = None  # unknown until `fit` sees the data
    self.num_atoms = (0 if self.likelihood == families.MSE else
                      validation.check_non_negative_int(num_atoms, "num_atoms"))
    if feature_names is not None:
      feature_names = tuple(str(name) for name in feature_names)
      if len(feature_names) != self.input_dim:
        raise ValueError(
            f"feature_names has {len(feature_names)} names, "
            f"expected input_dim={self.input_dim}")
    self.feature_names = feature_names
    seed = validation.check_seed(seed)
    if seed is None:  # follow TensorFlow's global seed
      seed = int(tf.random.uniform([], 0, 2**62, dtype=tf.int64))
    self.seed = seed

    self.standardization = preprocessing.Standardization(
        self.input_dim, num_atoms=self.num_atoms, name="standardization")
    self.posterior_head = heads.PosteriorNormal(
        self.latent_dim, scale_floor=self.posterior_scale_floor,
        name="posterior")
    head_options = ({"min_df": self.min_df, "df_transform": df_transform}
                    if self.likelihood == families.STUDENT_T else {})
    self.likelihood_head = heads.make_likelihood(
        self.likelihood, self.input_dim,
        scale_floor=self.likelihood_scale_floor, num_atoms=self.num_atoms,
        name="likelihood", **head_options)
    self.encoder_net = networks.EncoderNetwork(
        self.input_dim, self.hidden_units, activation,
        heads.PosteriorNormal.params_size(self.latent_dim),
        missing_indicator=self.missing_indicator, name="encoder")
    self.decoder_net = networks.build_mlp(
        self.hidden_units[::-1], activation, self.likelihood_head.output_size,
        "decoder")
    # The KL weight in force, a variable so the schedule works inside `fit`.
    self.current_beta = tf.Variable(
        self.beta if self.kl_warmup_steps == 0 else 0.0,
        trainable=False, dtype=tf.float32, name="current_beta")

    self.loss_tracker = tf_keras.metrics.Mean(name="loss")
    self.distortion_tracker = tf_keras.metrics.Mean(name="reconstruction_nll")
    self.rate_tracker = tf_keras.metrics.Mean(name="kl")
    self.objective_tracker = tf_keras.metrics.Mean(name="objective")
    # The global norm of each step's gradient (this worker's, under
    # tf.distribute), averaged over the epoch: training logs only.
    self.gradient_norm_tracker = tf_keras.metrics.Mean(name="gradient_norm")
    # Create every weight now, so `load_weights` works on a fresh model.
    self(tf.zeros([1, self.input_dim], tf.float64))

  @property
  def metrics(self):
    metrics = [self.loss_tracker, self.distortion_tracker, self.rate_tracker,
               self.gradient_norm_tracker]
    if self._objective_differs:
      metrics.append(self.objective_tracker)
    return metrics

  @property
  def _objective_differs(self):
    """Whether training minimises something other than the reported loss."""
    return bool(self.kl_warmup_steps or self.free_bits)

  @property
  def prior(self):
    """p(z) = N(0, I), event_shape [latent_dim]."""
    return tfd.Independent(
        tfd.Normal(tf.zeros([self.latent_dim]), 1.0), reinterpreted_batch_ndims=1)

  @property
  def is_adapted(self):
    """Whether `adapt` has set the standardisation statistics."""
    return bool(self.standardization.adapted.numpy())

  # -- x -> z and z -> x: the one path each way ---------------------------------

  def standardize(self, x):
    """x [B, D] (any float, NaN: missing) -> (u float64 [B, D], observed bool)."""
    u = self.standardization(x)
    return u, tf.logical_not(tf.math.is_nan(u))

  @staticmethod
  def _network_inputs(u, observed):
    """The encoder's inputs: values (missing set to 0) and the indicator, f32."""
    limit = preprocessing.ENCODER_INPUT_LIMIT
    values = tf.clip_by_value(tf.where(observed, u, 0.0), -limit, limit)
    return (tf.cast(values, tf.float32),
            tf.cast(tf.logical_not(observed), tf.float32))

  def posterior_from_standard(self, u, observed):
    return self.posterior_head.distribution_parameters(
        self.encoder_net(*self._network_inputs(u, observed)))

  def posterior_parameters(self, x):
    """The parameters of q(z|x): plain tensors, no sampling.

    Args:
      x: float [batch_size, input_dim] in data units (float64 keeps the
        precision of large offsets); NaN marks a missing value.

    Returns:
      dict with `loc` and `scale`, float32 [batch_size, latent_dim].
    """
    return self.posterior_from_standard(*self.standardize(
        self.as_data_tensor(x)))

  def encode(self, x):
    """The posterior q(z|x): batch_shape [batch_size], event_shape [latent_dim].

    The encoder network's output goes through the `tfp.layers` head; its
    parameters are those of `posterior_parameters`.
    """
    u, observed = self.standardize(self.as_data_tensor(x))
    return self.posterior_head(self.encoder_net(
        *self._network_inputs(u, observed)))

  def standard_likelihood_parameters(self, z):
    """The likelihood's parameters in standardised units, float32 [..., D]
    (with the atoms' places and widths when the model has atoms)."""
    z = tf.convert_to_tensor(z, tf.float32)
    batch_shape = tf.shape(z)[:-1]
    # The network sees 2-D input: Keras would squeeze a [K, B, 1] sample
    # batch (latent_dim 1) to [K, B] when conforming it to the built shape.
    params = self.decoder_net(tf.reshape(z, [-1, self.latent_dim]))
    params = tf.reshape(params, tf.concat([batch_shape, tf.shape(params)[-1:]], 0))
    parameters = self.likelihood_head.distribution_parameters(params)
    if self.num_atoms:
      parameters["atom_loc"] = tf.cast(
          self.standardization.standardized_atoms(), tf.float32)
      parameters["atom_scale"] = tf.fill([self.input_dim, self.num_atoms],
                                         self.likelihood_scale_floor)
    return parameters

  def data_likelihood_parameters(self, standard):
    """Standardised parameters -> the same in data units, float64."""
    parameters = self.likelihood_head.to_data_units(
        {name: tf.cast(value, tf.float64) for name, value in standard.items()},
        self.standardization.loc, self.standardization.scale)
    if self.num_atoms:
      parameters["atom_loc"] = tf.convert_to_tensor(self.standardization.atoms)
      parameters["atom_scale"] = (self.likelihood_scale_floor *
                                  self.standardization.scale[:, None] *
                                  tf.ones([1, self.num_atoms], tf.float64))
    return parameters

  def likelihood_parameters(self, z):
    """The parameters of p(x|z) in data units: plain float64 tensors.

    Args:
      z: float [..., latent_dim].

    Returns:
      dict of float64 Tensors [..., input_dim]: the family's `loc` and
      `scale` (and `df` for Student's t), the distribution's `mean` and
      `stddev` (infinite where a Student's t has df <= 2), and with atoms
      `atom_probability`, the probability that a value sits at one of its
      column's atoms (the atoms themselves are `standardization.atoms`).
    """
    z = self._as_tensor(z, "z", self.latent_dim)
    parameters = self.data_likelihood_parameters(
        self.standard_likelihood_parameters(z))
    out = {name: parameters[name] for name in ("loc", "scale", "df")
           if name in parameters}
    mean, variance = self.likelihood_head.mean_and_variance(parameters)
    out["mean"] = mean
    out["stddev"] = tf.sqrt(variance)
    if self.num_atoms:
      out["atom_probability"] = 1.0 - self.likelihood_head.component_probabilities(
          parameters)[..., 0]
    return out

  def decode(self, z):
    """The likelihood p(x|z) in data units (float64).

    Args:
      z: float [..., latent_dim].

    Returns:
      A distribution with batch_shape [...], event_shape [input_dim].
    """
    z = self._as_tensor(z, "z", self.latent_dim)
    parameters = self.data_likelihood_parameters(
        self.standard_likelihood_parameters(z))
    return tfd.Independent(self.likelihood_head.make_distribution(parameters),
                           reinterpreted_batch_ndims=1)

  def log_likelihood(self, standard, u, observed, dtype):
    """log p(x_obs|z) in data units, [..., batch_size].

    Computed in standardised units (where the values are of order one)
    minus the log-Jacobian of the observed features.

    Args:
      standard: the likelihood's parameters at z in standardised units,
        `standard_likelihood_parameters(z)`, each [..., batch_size, D].
      u: float64 [batch_size, input_dim], standardised x.
      observed: bool [batch_size, input_dim].
      dtype: the dtype of the log-density (float64 when scoring, so that
        extreme values give finite numbers).
    """
    # The atoms' mixture logits stay float32 (`log_prob` works on them in
    # float32): casting [..., D, A + 1] to float64 and back costs more than
    # the family's log-density.
    standard = {name: value if name == "atom_logits" else tf.cast(value, dtype)
                for name, value in standard.items()}
    u_filled = tf.cast(tf.where(observed, u, 0.0), dtype)
    log_prob = self.likelihood_head.log_prob(standard, u_filled)
    log_prob = tf.where(observed, log_prob, tf.zeros([], dtype))
    log_jacobian = tf.reduce_sum(
        tf.where(observed, self.standardization.log_scale(), 0.0), axis=-1)
    return tf.reduce_sum(log_prob, axis=-1) - tf.cast(log_jacobian, dtype)

  def call(self, x, training=None):
    """The deterministic reconstruction: decoder mean at the posterior mean.

    Args:
      x: float [batch_size, input_dim], data units (NaN: missing).

    Returns:
      float64 Tensor [batch_size, input_dim], data units.
    """
    del training
    return self.likelihood_parameters(self.posterior_parameters(x)["loc"])["mean"]

  # -- Training -----------------------------------------------------------------

  def compile(self, optimizer=None, loss=None, metrics=None, loss_weights=None,
              weighted_metrics=None, **kwargs):
    """Like `tf_keras.Model.compile`; the optimizer defaults to
    `networks.make_optimizer()` (Adam, learning rate 1e-3).

    A VAE's loss is its negative ELBO and its metrics are fixed (`loss`,
    `reconstruction_nll`, `kl`): `loss`, `metrics`, `loss_weights` and
    `weighted_metrics` would be ignored, so they are refused.

    `steps_per_execution` defaults to `STEPS_PER_EXECUTION` and
    `jit_compile` to `JIT_COMPILE`, the fastest settings measured by
    `scripts/bench_train.py` (metrics, callbacks and early stopping still
    act per epoch).
    """
    for name, value in (("loss", loss), ("metrics", metrics),
                        ("loss_weights", loss_weights),
                        ("weighted_metrics", weighted_metrics)):
      if value:
        raise ValueError(
            f"VAE.compile({name}=...) is not supported: a VAE minimises its "
            "negative ELBO and reports loss, reconstruction_nll and kl; "
            "pass only the optimizer (and Keras' execution options)")
    if optimizer is None:
      optimizer = networks.make_optimizer()
    kwargs.setdefault("steps_per_execution", STEPS_PER_EXECUTION)
    kwargs.setdefault("jit_compile", JIT_COMPILE)
    # An empty weighted_metrics tells Keras that sample weights are used on
    # purpose (the loss is weighted in train_step), which it otherwise warns.
    super().compile(optimizer=optimizer, weighted_metrics=[], **kwargs)

  def compile_from_config(self, config):
    """Recompiles a model loaded by `tf_keras.models.load_model`, with the
    saved optimizer (whose state the loader then restores)."""
    config = tf_keras.saving.deserialize_keras_object(config)
    self.compile(**config)
    self.optimizer.build(self.trainable_variables)

  def _step_seed(self, counter, salt):
    """A stateless seed [2] for one step: the model's seed and a counter."""
    return tf.stack([tf.constant(self.seed, tf.int64),
                     tf.cast(counter, tf.int64) * 4 + salt])

  def _per_example_terms(self, x, seed, betas, num_samples):
    """The objective's terms per example, in nats.

    Args:
      x: float [batch_size, input_dim] (NaN: missing).
      seed: stateless seed [2] for the posterior draws.
      betas: dict name -> KL weight; a negative bound is returned per name.
      num_samples: K, the posterior draws per example (1: the ELBO).

    Returns:
      dict of Tensors: `distortion` [B] (mean over the K draws of
      -log p(x_obs|z)), `kl` [B] (analytic), `kl_per_dim` [B, latent_dim],
      and per name in `betas` the negative bound [B] with that weight.
    """
    u, observed = self.standardize(x)
    posterior = self.posterior_from_standard(u, observed)
    loc, scale = posterior["loc"], posterior["scale"]
    noise = tf.random.stateless_normal(
        tf.concat([[num_samples], tf.shape(loc)], 0), seed=seed)
    z = loc + scale * noise  # [K, B, latent_dim]
    log_likelihood = self.log_likelihood(
        self.standard_likelihood_parameters(z), u, observed, tf.float32)
    kl_per_dim = objectives.compute_gaussian_kl(loc, scale)
    terms = {
        "distortion": -tf.reduce_mean(log_likelihood, axis=0),
        "kl": tf.reduce_sum(kl_per_dim, axis=-1),
        "kl_per_dim": kl_per_dim,
    }
    if num_samples > 1:
      log_prior = -0.5 * tf.reduce_sum(tf.square(z), -1)
      log_posterior = -tf.reduce_sum(
          0.5 * tf.square(noise) + tf.math.log(scale), -1)
    for name, beta in betas.items():
      if num_samples == 1:
        terms[name] = terms["distortion"] + beta * terms["kl"]
      else:  # the normalising constants of prior and posterior cancel
        terms[name] = -objectives.compute_iwae_log_likelihood(
            objectives.compute_log_importance_weights(
                log_likelihood, beta * log_prior, beta * log_posterior))
    return terms

  def _update_metrics(self, terms, sample_weight, objective=None):
    self.loss_tracker.update_state(terms["loss"], sample_weight)
    self.distortion_tracker.update_state(terms["distortion"], sample_weight)
    self.rate_tracker.update_state(terms["kl"], sample_weight)
    trackers = [self.loss_tracker, self.distortion_tracker, self.rate_tracker]
    if objective is not None:
      self.objective_tracker.update_state(objective, sample_weight)
      trackers.append(self.objective_tracker)
    logs = {metric.name: _aggregated_result(metric) for metric in trackers}
    if self.kl_warmup_steps and objective is not None:
      logs["beta"] = tf.identity(self.current_beta)
    return logs

  def _terms_for_batch(self, x, seed, betas, sample_weight):
    """Per-example terms with the bound for this batch: `num_train_samples`
    draws, or `missing_train_samples` when the batch has missing values
    (MIWAE, Mattei & Frellsen 2019). Adds `objective`, what is minimised."""

    def terms_with(num_samples):
      terms = self._per_example_terms(x, seed, betas, num_samples)
      if not self._objective_differs:
        terms["objective"] = terms["loss"]
      elif self.free_bits and num_samples == 1:
        # Free bits act on the batch-mean KL per dimension.
        rate = objectives.compute_rate(terms["kl_per_dim"], self.free_bits,
                                       sample_weight)
        terms["objective"] = terms["distortion"] + self.current_beta * rate
      elif "objective" not in terms:  # free bits do not apply with K > 1
        terms["objective"] = terms["loss"]
      terms.pop("kl_per_dim")
      return terms

    if (self.missing_train_samples == self.num_train_samples or
        self._data_has_gaps is False):
      return terms_with(self.num_train_samples)
    has_gap = tf.reduce_any(tf.math.is_nan(x))
    return tf.cond(has_gap, lambda: terms_with(self.missing_train_samples),
                   lambda: terms_with(self.num_train_samples))

  def train_step(self, data):
    x, y, sample_weight = tf_keras.utils.unpack_x_y_sample_weight(data)
    del y
    if self.kl_warmup_steps:
      self.current_beta.assign(objectives.compute_linear_warmup(
          self.optimizer.iterations, self.kl_warmup_steps, self.beta))
    seed = self._step_seed(self.optimizer.iterations, 0)
    with tf.GradientTape() as tape:
      betas = {"loss": self.beta}
      if self._objective_differs and self.kl_warmup_steps:
        betas["objective"] = self.current_beta
      terms = self._terms_for_batch(x, seed, betas, sample_weight)
      # Summed over this replica's examples and divided by the global batch
      # size, so gradients summed over replicas are those of the batch mean.
      scaled = tf.nn.compute_average_loss(terms["objective"],
                                          sample_weight=sample_weight)
    gradients = tape.gradient(scaled, self.trainable_variables)
    self.optimizer.apply_gradients(zip(gradients, self.trainable_variables))
    self.gradient_norm_tracker.update_state(tf.linalg.global_norm(gradients))
    logs = self._update_metrics(
        terms, sample_weight,
        terms["objective"] if self._objective_differs else None)
    logs["gradient_norm"] = _aggregated_result(self.gradient_norm_tracker)
    return logs

  def test_step(self, data):
    # The objective the user asked for: the target beta, the real KL, no
    # warm-up, no free bits. Early stopping on val_loss selects on it.
    x, y, sample_weight = tf_keras.utils.unpack_x_y_sample_weight(data)
    del y
    terms = self._terms_for_batch(
        x, self._step_seed(self._test_counter, 1), {"loss": self.beta},
        sample_weight)
    return self._update_metrics(terms, sample_weight)

  def predict_step(self, data):
    x, _, _ = tf_keras.utils.unpack_x_y_sample_weight(data)
    return self(x, training=False)

  def fit(self, x=None, y=None, batch_size=None, epochs=1, verbose="auto",
          callbacks=None, validation_split=0.0, validation_data=None,
          shuffle=True, class_weight=None, sample_weight=None, **kwargs):
    """`tf_keras.Model.fit` on x alone.

    Accepts a numpy array [N, input_dim] (float64 keeps large offsets
    exact; NaN marks a missing value) with `validation_split` (the last
    rows, as in Keras) or `validation_data` (an array, `(x_val,)` or
    `(x_val, None, sample_weight_val)`), or a batched `tf.data.Dataset` of
    x (or of `(x, None, sample_weight)`). `sample_weight` [N] weights each
    row's contribution to the ELBO (a weight of 2 counts a row twice).
    `y` and `class_weight` must be None: a VAE has no targets.
    """
    if y is not None:
      raise ValueError("a VAE trains on x alone; pass y=None")
    if class_weight is not None:
      raise ValueError("a VAE has no classes; use sample_weight to weight rows")
    validation_split = validation.check_fraction(validation_split)
    x = self._prepare_x(x, "x", for_training=True)
    if isinstance(x, tf.Tensor) and not self.is_adapted:
      _warn_if_badly_scaled(x.numpy())
    sample_weight = self._prepare_sample_weight(sample_weight, x)
    validation_data = self._prepare_validation_data(validation_data)
    self._note_gaps(x, validation_data)
    return super().fit(
        x, _placeholder_targets(x, sample_weight), batch_size=batch_size,
        epochs=epochs, verbose=verbose, callbacks=callbacks,
        validation_split=validation_split, validation_data=validation_data,
        shuffle=shuffle, sample_weight=sample_weight, **kwargs)

  def _note_gaps(self, x, validation_data=None, test_only=False):
    """Whether the data have missing values: False (arrays without any) lets
    the steps skip the MIWAE branch, which halves their tracing time; True
    or None (unknown: a dataset) keeps it. The compiled steps are rebuilt
    when this changes."""
    parts = [x] + (list(validation_data) if isinstance(
        validation_data, (tuple, list)) else [validation_data])
    gaps = False
    for part in parts:
      if part is None:
        continue
      if not isinstance(part, tf.Tensor):
        gaps = None
        break
      if bool(tf.reduce_any(tf.math.is_nan(part))):
        gaps = True
    if gaps != self._data_has_gaps:
      self._data_has_gaps = gaps
      self.test_function = None
      if not test_only:
        self.train_function = None

  def evaluate(self, x=None, y=None, batch_size=None, verbose="auto",
               sample_weight=None, **kwargs):
    """`tf_keras.Model.evaluate` on x alone (see `fit`)."""
    if y is not None:
      raise ValueError("a VAE evaluates on x alone; pass y=None")
    x = self._prepare_x(x, "x")
    sample_weight = self._prepare_sample_weight(sample_weight, x)
    if not kwargs.get("_use_cached_eval_dataset"):  # not fit's validation
      self._note_gaps(x, test_only=True)
    return super().evaluate(
        x, _placeholder_targets(x, sample_weight), batch_size=batch_size,
        verbose=verbose, sample_weight=sample_weight, **kwargs)

  def predict(self, x, batch_size=None, verbose="auto", **kwargs):
    """Deterministic reconstructions, numpy float64 [N, input_dim] (see `call`)."""
    return super().predict(self._prepare_x(x, "x"), batch_size=batch_size,
                           verbose=verbose, **kwargs)

  def adapt(self, x, batch_size=65536):
    """Standardises the networks' inputs and outputs with statistics of x.

    The encoder then sees `(x - loc) / scale` (computed in float64), and
    the decoder's distribution is mapped back with `x = loc + scale * u`,
    so likelihoods, reconstructions and samples stay in the data's units
    (the log-Jacobian `-sum(log scale)` is part of every reported
    log-likelihood). Only observed values count. See
    `tfvae.statistics.compute_standardization` for the statistics.

    Args:
      x: the training data: an array [num_examples, input_dim], a batched
        `tf.data.Dataset` of x, or a path to a data file; datasets and files
        are read in one streaming pass (statistics from a bounded reservoir
        sample, `tfvae.statistics.StreamingStatistics`).
      batch_size: rows per block when reading a file.

    Returns:
      self, for chaining.
    """
    if isinstance(x, tf.data.Dataset):
      validation.check_dataset(x, "adapt data", self.input_dim)
      stats = statistics.StreamingStatistics(self.input_dim, seed=self.seed)
      for element in x:
        element = element[0] if isinstance(element, tuple) else element
        stats.update(validation.validate_array(element.numpy(), "adapt data",
                                             self.input_dim))
      loc, scale = stats.result()
      sample = stats.sample
    elif isinstance(x, (str, bytes)) or hasattr(x, "__fspath__"):
      reader = data_lib.open_table(x, expected_width=self.input_dim)
      stats = statistics.StreamingStatistics(self.input_dim, seed=self.seed)
      for block, _ in reader.iter_blocks(batch_size):
        stats.update(block)
      loc, scale = stats.result()
      sample = stats.sample
    else:
      sample = validation.validate_array(x, "adapt data", self.input_dim,
                                       expected_names=self.feature_names)
      loc, scale = statistics.compute_standardization(sample)
    self.set_statistics(loc, scale, *self.find_atoms(sample, scale))
    return self

  def find_atoms(self, x, scale):
    """(atoms, frequencies) of the rows x for this model: at most
    `num_atoms` per column, spikes that would overlap merged."""
    return statistics.compute_atoms(
        x, self.num_atoms, min_separation=heads.ATOM_SEPARATION *
        self.likelihood_scale_floor * np.asarray(scale))

  def set_statistics(self, loc, scale, atoms=None, atom_frequencies=None):
    """Sets what `adapt` computes: loc, scale [input_dim] and the atoms
    [input_dim, num_atoms] with their frequencies (which start the
    decoder's mixture weights where the data have them)."""
    self.standardization.set_statistics(loc, scale, atoms)
    if self.num_atoms and atom_frequencies is not None:
      frequencies = np.asarray(atom_frequencies, np.float64)
      continuous = np.maximum(1.0 - frequencies.sum(axis=1, keepdims=True),
                              1e-3)
      logits = np.log(np.concatenate([continuous, np.maximum(frequencies,
                                                             1e-6)], axis=1))
      output = self.decoder_net.layers[-1]
      bias = output.bias.numpy()
      bias[self.likelihood_head.params_size(self.input_dim):] = logits.ravel()
      output.bias.assign(bias)

  # -- Inference ----------------------------------------------------------------

  def reconstruct(self, x):
    """The decoder mean at the posterior mean, numpy float64 [N, input_dim]."""
    return self(self.as_data_tensor(x)).numpy()

  def sample(self, num_examples, seed=None):
    """Draws new data x ~ p(x|z), z ~ p(z), in data units.

    Values drawn at a column's atom are the atom exactly.

    Args:
      num_examples: Python int.
      seed: optional int in [0, 2**63); the same seed gives the same draws.
        None follows TensorFlow's global seed.

    Returns:
      float64 numpy array [num_examples, input_dim].
    """
    return sampling.sample(self, num_examples, seed)

  def importance_sample(self, x, noise, first_sample=0, with_moments=False,
                        gaps=True):
    """Importance samples z_k for estimating p(x_obs), with their log
    weights: `tfvae.inference.importance.importance_sample`."""
    return importance.importance_sample(
        self, self.as_data_tensor(x), noise, first_sample, with_moments, gaps)

  def keyed_noise(self, x, seed, first_sample, num_samples):
    """The draws of `marginal_log_likelihood` for rows x, keyed by each
    row: `tfvae.inference.importance.keyed_noise`."""
    return importance.keyed_noise(self, self.as_data_tensor(x), seed,
                                  first_sample, num_samples)

  # Compiled once per model (a `tf.function` method keeps its graphs with
  # the instance), called by `tfvae.inference` on chunks of rows.

  @tf.function(reduce_retracing=True, autograph=False)
  def iwae_logsumexp(self, x, seed, first_sample, num_samples, gaps):
    """logsumexp_k log w_k per row over keyed draws, float64 [B]."""
    return importance.iwae_logsumexp(self, x, seed, first_sample, num_samples,
                                     gaps)

  @tf.function(reduce_retracing=True, autograph=False)
  def imputation_moments(self, x, noise, first_sample):
    """(log sum w [B], weighted mean [B, D], second moment [B, D])."""
    return imputation.moments(self, x, noise, first_sample)

  @tf.function(reduce_retracing=True, autograph=False)
  def imputation_draws(self, x, noise, uniforms):
    """M draws of x from p(x_mis | x_obs), [M, B, D]."""
    return imputation.draws(self, x, noise, uniforms)

  def marginal_log_likelihood(self, x, num_samples=1000, seed=None, verbose=0):
    """Importance-weighted estimates of log p(x_obs) (Burda et al. 2016), nats.

    Uses q(z|x) as the proposal with `num_samples` draws per example. The
    draws are keyed by the seed and the row's values (`keyed_noise`), so a
    row's estimate does not depend on which rows are scored with it, while
    different rows get independent draws and the errors of a data set's
    rows average out in its mean. The
    estimate's expectation is a lower bound on log p(x) that tightens as
    `num_samples` grows. Work is split into chunks of at most 65,536
    decoded (row, sample) pairs, so memory stays bounded for any N and K.
    Log-densities are computed in float64.

    Rows with missing values get log p(x_obs), the density of their
    observed values only: rows with different numbers of observed values
    have log-likelihoods of different dimension (see `anomaly_score(...,
    per_feature=True)`). A row with nothing observed gets 0 = log 1.

    Args:
      x: float array [N, input_dim], in data units (NaN: missing).
      num_samples: Python int K >= 1.
      seed: optional int in [0, 2**63), for reproducible estimates; None
        follows TensorFlow's global seed.
      verbose: 1 shows a progress line (standard error).

    Returns:
      float64 numpy array [N], log p(x_obs) per example, in nats.
    """
    return importance.marginal_log_likelihood(self, x, num_samples, seed,
                                              verbose)

  def impute(self, x, num_samples=1000, seed=None, num_imputations=None,
             return_std=False, verbose=0):
    """Fills missing values from p(x_mis | x_obs), by importance sampling.

    With q(z|x_obs) (the proposal of `marginal_log_likelihood`) and
    self-normalised weights w_k proportional to p(x_obs, z_k) / q(z_k):
    E[x_mis | x_obs] ~= sum_k w_k E[x_mis | z_k], and the predictive
    variance is sum_k w_k (Var[x_mis | z_k] + E[x_mis | z_k]^2) minus the
    square of the mean (law of total variance). With `num_imputations=M`,
    M draws from p(x_mis | x_obs) by sampling importance resampling, for
    multiple imputation. Observed entries are returned bit for bit, and a
    row's result does not depend on the other rows.

    Args:
      x: float array [N, input_dim] in data units; NaN marks what to fill.
      num_samples: importance samples K per row.
      seed: optional int in [0, 2**63); None follows the global seed.
      num_imputations: optional int M: return M draws instead of the mean.
      return_std: with the mean, also return the predictive standard
        deviation per entry (0 where observed; infinite where a Student's t
        likelihood has df <= 2).
      verbose: 1 shows a progress line.

    Returns:
      float64 [N, input_dim] (and the std [N, input_dim] with
      `return_std`), or with `num_imputations` float64 [M, N, input_dim].
    """
    return imputation.impute(self, x, num_samples, seed, num_imputations,
                             return_std, verbose)

  def anomaly_score(self, x, num_samples=1000, seed=None, per_feature=False,
                    verbose=0):
    """Anomaly scores: -log p(x_obs) per example in nats; higher is stranger.

    Args:
      x: float array [N, input_dim] (NaN: missing).
      num_samples: importance samples per example.
      seed: optional int.
      per_feature: divide each row's score by its number of observed
        values, to rank rows with different gaps against each other.
      verbose: 1 shows a progress bar.

    Returns:
      float64 numpy array [N]. A row with nothing observed scores 0.
    """
    return importance.anomaly_score(self, x, num_samples, seed, per_feature,
                                    verbose)

  def score(self, x, num_samples=1000, seed=None):
    """Deprecated: use `anomaly_score` (higher is stranger) or
    `marginal_log_likelihood` (higher is more likely)."""
    warnings.warn(
        "VAE.score is deprecated: it returns -log p(x) (higher is stranger), "
        "unlike scikit-learn's score; call anomaly_score instead",
        DeprecationWarning, stacklevel=2)
    return self.anomaly_score(x, num_samples=num_samples, seed=seed)

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
        "num_train_samples": self.num_train_samples,
        "missing_train_samples": self.missing_train_samples,
        "min_df": self.min_df,
        "df_transform": self.df_transform,
        "posterior_scale_floor": self.posterior_scale_floor,
        "likelihood_scale_floor": self.likelihood_scale_floor,
        "missing_indicator": self.missing_indicator,
        "num_atoms": self.num_atoms,
        "feature_names": (None if self.feature_names is None
                          else list(self.feature_names)),
        "seed": self.seed,
        "name": self.name,
    }

  @classmethod
  def from_config(cls, config, custom_objects=None):
    del custom_objects
    return cls(**config)

  # -- Input checks -------------------------------------------------------------

  def warn_if_untrained(self, what):
    """Warns when `what` (scoring, imputing, sampling) uses a model that no
    optimizer step has changed: its answers describe random weights."""
    optimizer = getattr(self, "optimizer", None)
    # `.numpy()`: under tf.distribute the counter is a mirrored variable.
    if optimizer is None or int(optimizer.iterations.numpy()) == 0:
      warnings.warn(
          f"{what} with a model that was never trained: its numbers describe "
          "random initial weights (call fit first, or load a trained "
          "checkpoint)", UntrainedModelWarning, stacklevel=3)

  def seed_pair(self, seed):
    """A stateless seed [2]: from an int, or drawn from the global seed."""
    seed = validation.check_seed(seed)
    if seed is None:
      return tf.random.uniform([2], 0, 2**62, dtype=tf.int64)
    return tf.constant([seed, 0], tf.int64)

  def _as_tensor(self, value, name, width, allow_missing=False):
    """A Tensor [..., width], checked: in a graph (a served signature) a
    value that is infinite, or NaN unless `allow_missing`, stops the call
    with an error naming `name`."""
    if isinstance(value, (tf.Tensor, tf.Variable)):
      if value.shape.rank and value.shape[-1] not in (None, width):
        raise ValueError(f"{name} has {value.shape[-1]} columns, but the model "
                         f"expects {width}")
      if tf.executing_eagerly():
        return value
      if allow_missing:
        return validation.refuse_infinity(value)
      return validation.refuse_non_finite(value, name)
    array = np.asarray(value)
    if array.ndim >= 1 and array.shape[-1] != width:
      raise ValueError(
          f"{name} has {array.shape[-1]} columns, but the model expects {width}")
    return tf.constant(array, dtype=tf.float32)

  def as_data_tensor(self, x):
    """x as a float Tensor [batch_size, input_dim], checked the same way
    whatever its type: arrays and eager tensors by `validate_array` (float64);
    symbolic tensors (a served signature, a traced function) by an op that
    stops the call on an infinite value (NaN is a missing value)."""
    if isinstance(x, (tf.Tensor, tf.Variable)):
      if not tf.executing_eagerly():
        return self._as_tensor(x, "x", self.input_dim, allow_missing=True)
      x = x.numpy()
    return tf.constant(validation.validate_array(
        x, "x", self.input_dim, expected_names=self.feature_names))

  def _prepare_x(self, value, name, for_training=False):
    """Arrays -> float64 tensors (Keras would cast numpy to float32)."""
    if value is None:
      raise ValueError(f"{name}: no data given")
    if isinstance(value, tf_keras.utils.experimental.DatasetCreator):
      return value  # a dataset per worker (tf.distribute)
    if isinstance(value, tf.data.Dataset):
      return validation.check_dataset(value, name, self.input_dim).map(validation.refuse_infinity)
    if isinstance(value, (tf.Tensor, tf.Variable)):
      value = value.numpy()
    values = validation.validate_array(value, name, self.input_dim,
                                     expected_names=self.feature_names)
    if for_training:
      validation.check_columns_observed(values, name, self.feature_names)
      validation.check_trainable(values, self.standardization.loc.numpy(),
                                 self.standardization.scale.numpy(),
                                 self.is_adapted, name)
    return tf.constant(values)

  @staticmethod
  def _prepare_sample_weight(sample_weight, x):
    if sample_weight is None:
      return None
    if isinstance(x, tf.data.Dataset):
      raise ValueError("with a dataset, put the weights in the dataset: "
                       "(x, None, sample_weight) elements")
    return validation.check_sample_weight(sample_weight, x.shape[0])

  def _prepare_validation_data(self, validation_data):
    if validation_data is None or isinstance(validation_data, tf.data.Dataset):
      return (None if validation_data is None else
              validation.check_dataset(validation_data, "validation_data",
                                   self.input_dim).map(
                  validation.refuse_infinity))
    if isinstance(validation_data, (tuple, list)) and not (
        validation_data and np.ndim(validation_data[0]) == 1):
      parts = list(validation_data)
      if not 1 <= len(parts) <= 3:
        raise ValueError("validation_data must be x_val, (x_val,), or "
                         "(x_val, None, sample_weight_val)")
      if len(parts) >= 2 and parts[1] is not None:
        raise ValueError("validation_data: a VAE has no targets; pass "
                         "(x_val,) or (x_val, None, sample_weight_val)")
      x_val = self._prepare_x(parts[0], "validation_data")
      if len(parts) == 3 and parts[2] is not None:
        weights = self._prepare_sample_weight(parts[2], x_val)
        return (x_val, _placeholder_targets(x_val, weights), weights)
      return (x_val,)
    return (self._prepare_x(validation_data, "validation_data"),)


def _aggregated_result(metric):
  """A `Mean` metric's result over all replicas of a tf.distribute job.

  Inside a step each replica holds its own partial sums; Keras would add up
  the replicas' results (its "auto" reduction), which for means is wrong.
  """
  context = tf.distribute.get_replica_context()
  if context is None or context.num_replicas_in_sync == 1:
    return metric.result()
  total, count = context.all_reduce(
      tf.distribute.ReduceOp.SUM, [tf.identity(metric.total),
                                   tf.identity(metric.count)])
  return tf.math.divide_no_nan(total, count)


def _placeholder_targets(x, sample_weight):
  """Empty targets [N, 0] when rows are weighted.

  Keras packs `(x, None, w)` as `(x, w)`, which then reads as `(x, y)`; an
  empty `y` keeps the weights in the third place.
  """
  if sample_weight is None:
    return None
  return tf.zeros([x.shape[0], 0], tf.float32)


def _warn_if_badly_scaled(x):
  spread = np.nanstd(x, axis=0)
  magnitude = np.nanmax(np.abs(x), axis=0)
  if magnitude.max() > 1e3 or spread.max() > 1e2 or (
      spread[spread > 0].min(initial=1.0) < 1e-2):
    warnings.warn(
        "training on raw values whose columns range from std "
        f"{spread.min():.3g} to {spread.max():.3g} and magnitude up to "
        f"{magnitude.max():.3g}; call model.adapt(x) first to train on "
        "standardised values (likelihoods stay in data units)",
        stacklevel=3)
