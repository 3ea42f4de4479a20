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


import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp
import tf_keras

from tfvae import bounds
from tfvae import families
from tfvae import heads
from tfvae import networks
from tfvae import objectives
from tfvae import preprocessing
from tfvae import statistics
from tfvae.inference import levels as levels_lib
from tfvae.inference import methods
from tfvae import validation
from tfvae.training import recipe
from tfvae.training import steps as steps_lib

tfd = tfp.distributions

# Training steps per graph call, and XLA for the training step: the defaults
# of `compile`, measured by `scripts/bench_train.py` (see the README).
STEPS_PER_EXECUTION = 32
JIT_COMPILE = False


# The constructor's arguments, as `get_config` writes them.
_CONFIG_FIELDS = (
    "input_dim", "latent_dim", "hidden_units", "activation", "likelihood",
    "beta", "kl_warmup_steps", "free_bits", "num_train_samples",
    "missing_train_samples", "min_df", "df_transform",
    "posterior_scale_floor", "likelihood_scale_floor", "missing_indicator",
    "num_atoms", "feature_names", "categories", "column_types",
    "ignored_columns", "seed")


# The settings that may wait for the data ("auto"): `VAE.resolve`.
_RESOLVED_FROM_DATA = ("hidden_units", "num_train_samples", "df_transform",
                       "num_atoms")

# What a saved config without one of these settings was built with (the
# constructor's defaults before they followed the recipe).
_SAVED_CONFIG_DEFAULTS = {"latent_dim": 5, "hidden_units": recipe.SNIPPET,
                          "num_train_samples": 1, "df_transform": "softplus",
                          "num_atoms": 8}

# Where it was first defined; raised by `validation.warn_if_untrained`.
UntrainedModelWarning = validation.UntrainedModelWarning


@tf_keras.saving.register_keras_serializable(package="tfvae")
class VAE(methods.InferenceMethods, tf_keras.Model):
  """Variational autoencoder for unrestricted real-valued data.

  Encoder: Dense layers -> `heads.PosteriorNormal`, q(z|x) a diagonal
  Normal with a softplus scale. Prior: N(0, I). Decoder: Dense layers -> a
  likelihood head p(x|z) (`tfvae.families`), reported in the data's own
  units. Missing values (NaN) are allowed everywhere x is.

  Calling the model (`model(x)`, `predict`) gives a deterministic
  reconstruction: the decoder's mean at the posterior mean, in data units.
  What a trained model answers (`marginal_log_likelihood`, `anomaly_score`,
  `calibrate`, `impute`, `sample`) is `tfvae.inference.methods`'.

  Settings left `"auto"` are chosen from the data exactly as `tfvae-train`
  chooses them (`tfvae.training.recipe.resolve`): the latent width from D
  at once; the hidden layers, K, Student's t's `df_transform` and the atom
  slots by `adapt` (or the first `fit`) from the number of training rows
  and the atoms found. Until then the model has no weights. `get_config`
  holds the resolved values, so a saved model reloads unchanged.

  #### Example

  ```python
  model = tfvae.VAE(input_dim=13)
  model.adapt(x_train)          # chooses the architecture, standardises
  model.compile()
  model.fit(x_train, validation_data=x_val)  # the recipe's batches, early stopping
  log_px = model.marginal_log_likelihood(x_test)   # nats per example
  ```

  Args:
    input_dim: Python int, number of features D.
    latent_dim: Python int, size of z; `"auto"`:
      `recipe.latent_width(D)`, min(D, max(8, D // 2)) and at least 2 (5
      with the snippet's architecture). Default value: `"auto"`.
    hidden_units: hidden-layer widths of the encoder and (reversed) the
      decoder; `()`: linear maps; `"snippet"`: one layer of width
      `input_dim` (the original TF1 snippet); `"auto"`: two layers of 128
      units, 256 from `LARGE_FROM_ROWS` training rows. Default: `"auto"`.
    activation: Keras activation of the hidden layers. Default: `"leaky_relu"`.
    likelihood: decoder family, one of `tfvae.families.NAMES`.
      Default value: `"student_t"` (see docs/benchmarks.md).
    beta: Python float >= 0, the KL weight (after warm-up). Default: `1.0`.
    kl_warmup_steps: Python int >= 0; beta rises linearly from 0 over this
      many optimizer steps. Default value: `0`.
    free_bits: Python float >= 0, nats per latent dimension below which the
      batch-mean KL gets no gradient (K = 1 only). Default value: `0.0`.
    num_train_samples: Python int K >= 1; K > 1 trains on the
      importance-weighted bound; `"auto"`: 10, 50 from `LARGE_FROM_ROWS`
      training rows (1 with `free_bits`), lowered where an epoch would
      outgrow the recipe's budget (`recipe.train_samples_within_budget`:
      K = 5 for 2 million rows of 256 columns). Default value: `"auto"`.
    missing_train_samples: K for batches with missing values (MIWAE; see
      docs/missing-values.md). Default: `None`, `max(20, num_train_samples)`
      (within the same budget when `num_train_samples` is `"auto"`).
    min_df: Student's t degrees-of-freedom floor (>= 1). Default: `1.0`.
    df_transform: Student's t's raw_df -> df map, "softplus" or "exp"
      (`heads.StudentTLikelihood`); `"auto"`: "exp" from `LARGE_FROM_ROWS`
      training rows. Default value: `"auto"`.
    posterior_scale_floor: smallest posterior stddev. Default value: `1e-4`.
    likelihood_scale_floor: smallest decoder scale, in standardised units
      (data units when not adapted), raised per column to its resolution
      over sqrt(2 pi) after `adapt`. Default value: `1e-3`.
    missing_indicator: whether the encoder sees which values are missing
      (missing values enter as 0). Default value: `True`.
    num_atoms: atom slots per column (values held by at least 1% of the
      rows, found by `adapt`; `heads.LikelihoodHead`); 0 turns atoms off;
      `"auto"`: as many as `adapt` finds in the busiest column, at most 8
      (0 without `adapt`): every slot costs time on each step. Ignored by
      the `mse` family. Default value: `"auto"`.
    feature_names: optional sequence of D column names, kept for exports.
    categories: optional sequence of D entries: None for a real column, the
      levels of a categorical one, which then holds their codes 0 .. L - 1
      (`tfvae.data.columns`; the readers find them). A categorical column
      is modelled by a softmax over its levels given z (its atoms, with no
      continuous part), enters the encoder one-hot, and is imputed with its
      most probable level. Default: every column real.
    column_types: the numeric columns' families: None (default) models
      each as `real` (the continuous family with atoms); a sequence of D
      types or a dict name -> type chooses `real`, `positive` (strictly
      positive: the family on log x, with the Jacobian in every reported
      density; outputs exp of the log-scale values) or `count`
      (non-negative integers: each integer k gets the family's probability
      between k - 1/2 and k + 1/2, all of it below 1/2 at 0; outputs
      rounded); `"auto"`: each numeric column typed from the data by
      `adapt` (`tfvae.data.columns.infer_numeric_type`). Categorical
      columns are typed by `categories`. `adapt` checks the values: a
      value <= 0 in a positive column, or a negative or fractional one in
      a count column, is an error naming its row and column.
    ignored_columns: optional names of the training file's columns the
      model was trained without (identifiers, free text): readers leave
      them out of files to score.
    seed: optional int in [0, 2**63) for the training noise; None draws one
      from TensorFlow's global seed (`tf_keras.utils.set_random_seed`).
    **kwargs: forwarded to `tf_keras.Model` (e.g. `name`).
  """

  # The training and evaluation functions are traced without autograph:
  # the steps hold no Python control flow on tensors (the loop over a
  # call's steps is `steps.run_steps`' explicit `tf.while_loop`), and
  # converting them took a fifth of a first one-epoch `fit` on the demo's
  # table (`scripts/bench_startup.py`, contender `autograph`: 0.12.0's).
  step_functions_autograph = False
  # On data with gaps the training and evaluation steps draw K for the
  # batch (`missing_train_samples` with gaps, else `num_train_samples`) in
  # one graph when both bounds are importance-weighted
  # (`bounds.batch_terms`); False traces both bounds under a `tf.cond`, as
  # up to 0.12.1 (`scripts/bench_startup.py`, contender `gap_cond`).
  gap_bound_in_one_graph = True

  def __init__(self,
               input_dim,
               latent_dim=recipe.AUTO,
               hidden_units=recipe.AUTO,
               activation="leaky_relu",
               likelihood=families.DEFAULT,
               beta=1.0,
               kl_warmup_steps=0,
               free_bits=0.0,
               num_train_samples=recipe.AUTO,
               missing_train_samples=None,
               min_df=heads.StudentTLikelihood.DEFAULT_MIN_DF,
               df_transform=recipe.AUTO,
               posterior_scale_floor=1e-4,
               likelihood_scale_floor=1e-3,
               missing_indicator=True,
               num_atoms=recipe.AUTO,
               feature_names=None,
               categories=None,
               column_types=None,
               ignored_columns=None,
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
    settings = validation.check_model_settings(
        input_dim, latent_dim, hidden_units, likelihood, beta,
        kl_warmup_steps, free_bits, num_train_samples, missing_train_samples,
        min_df, df_transform, posterior_scale_floor, likelihood_scale_floor,
        missing_indicator, num_atoms, feature_names)
    for name, value in settings.items():
      setattr(self, name, value)
    self.categories = validation.check_categories(categories, self.input_dim,
                                                  self.num_atoms)
    self.column_types = validation.check_column_types(
        column_types, self.input_dim, self.feature_names, self.categories)
    self.ignored_columns = (tuple(str(name) for name in ignored_columns)
                            if ignored_columns else None)
    self.activation = activation
    tf_keras.activations.get(activation)  # fail early on an unknown name
    self._data_has_gaps = None  # unknown until `fit` sees the data
    # Quantiles of held-out rows' anomaly scores (`calibrate`), or None.
    self.score_reference = None
    # Each categorical column's weight of its level probabilities against
    # its frequencies in imputation (`calibrate_levels`), or None.
    self.level_calibration = None
    seed = validation.check_seed(seed)
    if seed is None:  # follow TensorFlow's global seed
      seed = int(tf.random.uniform([], 0, 2**62, dtype=tf.int64))
    self.seed = seed
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
    self.standardization = None  # built with the networks (`_build`)
    if not self.unresolved_settings:
      self._build()

  @property
  def unresolved_settings(self):
    """The settings still "auto", which `adapt` or `fit` choose (`resolve`)."""
    return tuple(name for name in _RESOLVED_FROM_DATA
                 if recipe.is_unset(getattr(self, name)))

  def resolve(self, num_rows, atoms_found=0):
    """Chooses the settings left "auto" for `num_rows` training rows, as
    `tfvae-train` does (`tfvae.training.recipe.resolve`), and creates the
    weights. A model already resolved is left alone.

    Args:
      num_rows: Python int, training rows.
      atoms_found: the most atoms any column holds (`find_atoms`): the
        slots of `num_atoms="auto"`, at most the recipe's.

    Returns:
      self, for chaining.
    """
    if not self.unresolved_settings:
      return self
    settings = recipe.resolve(
        {name: getattr(self, name) for name in _RESOLVED_FROM_DATA},
        num_rows, self.input_dim)
    if self.num_atoms == recipe.AUTO:
      # A categorical column's levels are its atoms: slots for them all.
      settings["num_atoms"] = max(min(int(atoms_found), settings["num_atoms"]),
                                  max(self.num_levels))
    if self.missing_train_samples is None:  # within the epoch's budget
      settings["missing_train_samples"] = recipe.missing_train_samples(
          num_rows, self.input_dim,
          settings.get("hidden_units", self.hidden_units),
          settings.get("latent_dim", self.latent_dim),
          settings["num_train_samples"])
    for name, value in settings.items():
      setattr(self, name, value)
    self._build()
    return self

  def _check_resolved(self):
    if self.unresolved_settings:
      raise ValueError(
          "this VAE's architecture is chosen from the data and has no "
          f"weights yet ({', '.join(self.unresolved_settings)} are 'auto'): "
          "call adapt(x) or fit(x) first, or pass them")

  @property
  def num_levels(self):
    """Each column's number of levels, 0 for a real column: a tuple of D
    ints."""
    if self.categories is None:
      return (0,) * self.input_dim
    return tuple(0 if levels is None else len(levels)
                 for levels in self.categories)

  def _build(self):
    """Creates the layers and every weight, so `load_weights` works."""
    self.standardization = preprocessing.Standardization(
        self.input_dim, num_atoms=self.num_atoms,
        num_levels=self.num_levels if self.categories else None,
        name="standardization")
    if isinstance(self.column_types, tuple):
      self.standardization.set_column_types(self.column_types)
    self.posterior_head = heads.PosteriorNormal(
        self.latent_dim, scale_floor=self.posterior_scale_floor,
        name="posterior")
    head_options = ({"min_df": self.min_df, "df_transform": self.df_transform}
                    if self.likelihood == families.STUDENT_T else {})
    self.likelihood_head = heads.make_likelihood(
        self.likelihood, self.input_dim,
        scale_floor=self.likelihood_scale_floor, num_atoms=self.num_atoms,
        name="likelihood", **head_options)
    self.encoder_net = networks.EncoderNetwork(
        self.input_dim, self.hidden_units, self.activation,
        heads.PosteriorNormal.params_size(self.latent_dim),
        missing_indicator=self.missing_indicator,
        level_inputs=sum(self.num_levels), name="encoder")
    self.decoder_net = networks.build_mlp(
        self.hidden_units[::-1], self.activation,
        self.likelihood_head.output_size,
        "decoder")
    self(tf.zeros([1, self.input_dim], tf.float64))

  @property
  def metrics(self):
    metrics = [self.loss_tracker, self.distortion_tracker, self.rate_tracker,
               self.gradient_norm_tracker]
    if self.objective_differs:
      metrics.append(self.objective_tracker)
    return metrics

  @property
  def objective_differs(self):
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
    return (self.standardization is not None and
            bool(self.standardization.adapted.numpy()))

  # -- x -> z and z -> x: the one path each way ---------------------------------

  def standardize(self, x):
    """x [B, D] (any float, NaN: missing) -> (u float64 [B, D], observed bool)."""
    u = self.standardization(x)
    return u, tf.logical_not(tf.math.is_nan(u))

  def _network_inputs(self, u, observed, known_complete=False):
    """The encoder's inputs, float32: values (missing set to 0), the
    indicator (None where `known_complete` promises it is all 0: its
    product with the indicator's kernel is then exactly 0), and with
    categorical columns their levels one-hot (all 0 where missing; the
    column's own value input is 0)."""
    limit = preprocessing.ENCODER_INPUT_LIMIT
    values = tf.clip_by_value(tf.where(observed, u, 0.0), -limit, limit)
    inputs = [tf.cast(values, tf.float32),
              None if known_complete else
              tf.cast(tf.logical_not(observed), tf.float32)]
    if self.categories is None:
      return inputs
    categorical = tf.constant(self.standardization.categorical_mask)
    inputs[0] = tf.where(categorical, 0.0, inputs[0])
    one_hot = []
    for index, count in enumerate(self.num_levels):
      if count:
        code = tf.where(observed[:, index], tf.cast(u[:, index], tf.int32), -1)
        one_hot.append(tf.one_hot(code, count, dtype=tf.float32))
    inputs.append(tf.concat(one_hot, -1))
    return inputs

  def posterior_from_standard(self, u, observed, known_complete=False):
    """q(z|x)'s `loc` and `scale` [B, latent_dim] from standardised values;
    `known_complete=True` (training on data without gaps) skips the
    missing-value indicator's all-zero product."""
    return self.posterior_head.distribution_parameters(
        self.encoder_net(*self._network_inputs(u, observed, known_complete)))

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
    self._check_resolved()
    z = tf.convert_to_tensor(z, tf.float32)
    batch_shape = tf.shape(z)[:-1]
    # The network sees 2-D input: Keras would squeeze a [K, B, 1] sample
    # batch (latent_dim 1) to [K, B] when conforming it to the built shape.
    params = self.decoder_net(tf.reshape(z, [-1, self.latent_dim]))
    params = tf.reshape(params, tf.concat([batch_shape, tf.shape(params)[-1:]], 0))
    parameters = self.likelihood_head.distribution_parameters(
        params, self.standardization.scale_floor(self.likelihood_scale_floor))
    if self.num_atoms:
      parameters.update(self.standardization.atom_parameters(standardized=True))
    if self.standardization.has_count:
      parameters.update({
          name: tf.cast(value, tf.float32) for name, value in
          self.standardization.count_parameters().items()})
    return parameters

  def data_likelihood_parameters(self, standard):
    """Standardised parameters -> the same in data units, float64: working
    units, that is, log x for a positive column, and a count column's
    family before it is binned (`Standardization.from_working` maps values
    back)."""
    parameters = self.likelihood_head.to_data_units(
        {name: tf.cast(value, tf.float64) for name, value in standard.items()
         if not name.startswith("count_")},
        self.standardization.loc, self.standardization.scale)
    if self.num_atoms:
      parameters.update(self.standardization.atom_parameters(standardized=False))
    if self.standardization.has_count:
      parameters["count_mask"] = tf.constant(self.standardization.count_mask)
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
    z = validation.checked_tensor(z, "z", self.latent_dim)
    return self.likelihood_head.summary(self.data_likelihood_parameters(
        self.standard_likelihood_parameters(z)))

  def decode(self, z):
    """The likelihood p(x|z) in data units (float64).

    Args:
      z: float [..., latent_dim].

    Returns:
      A distribution with batch_shape [...], event_shape [input_dim].
    """
    z = validation.checked_tensor(z, "z", self.latent_dim)
    parameters = self.data_likelihood_parameters(
        self.standard_likelihood_parameters(z))
    return tfd.Independent(self.likelihood_head.make_distribution(parameters),
                           reinterpreted_batch_ndims=1)

  def log_likelihood(self, standard, u, observed, dtype, atom_index=None):
    """log p(x_obs|z) in data units, [..., batch_size].

    Computed in standardised units (where the values are of order one)
    minus the log-Jacobian of the observed values that are not at an atom
    (`log_jacobian`): a value at an atom scores its probability, in no
    units.

    Args:
      standard: the likelihood's parameters at z in standardised units,
        `standard_likelihood_parameters(z)`, each [..., batch_size, D].
      u: float64 [batch_size, input_dim], standardised x.
      observed: bool [batch_size, input_dim].
      dtype: the dtype of the log-density (float64 when scoring, so that
        extreme values give finite numbers).
      atom_index: optional `atom_index(u)`, if the caller has it.
    """
    if atom_index is None:
      atom_index = self.atom_index(u)
    log_prob = self.column_log_prob(standard, u, observed, dtype, atom_index)
    return tf.reduce_sum(log_prob, axis=-1) - tf.cast(
        self.log_jacobian(observed, atom_index, u), dtype)

  def column_log_prob(self, standard, u, observed, dtype, atom_index):
    """Each observed value's log p(x_d|z) in standardised units (densities
    per standard deviation; a value at an atom, or a level, its
    probability), 0 where missing: [..., batch_size, D] of `dtype`."""
    # The atoms' mixture logits stay float32 (`log_prob` works on them in
    # float32): casting [..., D, A + 1] to float64 and back costs more than
    # the family's log-density.
    standard = {name: value if name == "atom_logits" else tf.cast(value, dtype)
                for name, value in standard.items()}
    u_filled = tf.cast(tf.where(observed, u, 0.0), dtype)
    log_prob = self.likelihood_head.log_prob(standard, u_filled, atom_index)
    if self.standardization.has_count:
      # A count column's non-integers and negative values have no mass.
      w = self.standardization.loc + self.standardization.scale * tf.cast(
          tf.where(observed, u, 0.0), tf.float64)
      nearest = tf.round(w)
      off = tf.logical_or(
          tf.abs(w - nearest) > 1e-6 * tf.maximum(tf.abs(w), 1.0),
          nearest < 0)
      impossible = tf.logical_and(off, self.standardization.count_mask)
      log_prob = tf.where(impossible, tf.constant(-float("inf"), dtype),
                          log_prob)
    return tf.where(observed, log_prob, tf.zeros([], dtype))

  def atom_index(self, u):
    """Which atom each standardised value u [..., input_dim] (float64) sits
    at: int32, 0 for none (always, without atoms), j for the j-th."""
    if not self.num_atoms:
      return tf.zeros(tf.shape(u), tf.int32)
    return self.standardization.atom_index(u)

  def log_jacobian(self, observed, atom_index, u=None):
    """What maps densities per standard deviation to densities in data
    units, float64 [batch_size]: the sum over each row's observed values
    not at an atom of log(scale), and log x in positive columns (given u).
    Count columns score probabilities: nothing.

    Args:
      observed: bool [batch_size, input_dim].
      atom_index: int32 [batch_size, input_dim] (`atom_index`).
      u: float64 [batch_size, input_dim], standardised x: needed when the
        model has positive columns.
    """
    counted = tf.logical_and(observed, tf.equal(atom_index, 0))
    standardization = self.standardization
    per_value = tf.broadcast_to(standardization.log_scale(), tf.shape(counted))
    if standardization.has_positive:
      if u is None:
        raise ValueError("log_jacobian of a model with positive columns "
                         "needs u")
      per_value = per_value - standardization.working_log_jacobian(
          tf.where(observed, u, 0.0))
    if standardization.has_count:
      counted = tf.logical_and(counted,
                               tf.logical_not(standardization.count_mask))
    return tf.reduce_sum(tf.where(counted, per_value, 0.0), axis=-1)

  def call(self, x, training=None):
    """The deterministic reconstruction: decoder mean at the posterior mean.

    Args:
      x: float [batch_size, input_dim], data units (NaN: missing).

    Returns:
      float64 Tensor [batch_size, input_dim], data units.
    """
    del training
    mean = self.likelihood_parameters(self.posterior_parameters(x)["loc"])["mean"]
    return self.standardization.from_working(mean)

  # -- Training -----------------------------------------------------------------

  def compile(self, optimizer=None, loss=None, metrics=None, loss_weights=None,
              weighted_metrics=None, **kwargs):
    """Like `tf_keras.Model.compile`; the optimizer defaults to
    `networks.make_optimizer()` (Adam, learning rate 1e-3). A VAE's loss
    and metrics are fixed, so `loss`, `metrics`, `loss_weights` and
    `weighted_metrics` are refused. `steps_per_execution` and `jit_compile`
    default to the fastest settings of `scripts/bench_train.py`
    (`STEPS_PER_EXECUTION`, `JIT_COMPILE`)."""
    validation.check_compile_arguments(
        loss=loss, metrics=metrics, loss_weights=loss_weights,
        weighted_metrics=weighted_metrics)
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

  def log_names(self, training):
    """The keys of `train_step`'s (training=True) or `test_step`'s logs,
    each a float32 scalar."""
    names = [self.loss_tracker.name, self.distortion_tracker.name,
             self.rate_tracker.name]
    if training and self.objective_differs:
      names.append(self.objective_tracker.name)
      if self.kl_warmup_steps:
        names.append("beta")
    if training:
      names.append(self.gradient_norm_tracker.name)
    return names

  def make_train_function(self, force=False):
    """Keras' training function, with the steps of one call in a loop
    that traces `train_step` once (`tfvae.training.steps`)."""
    return self._make_step_loop(super().make_train_function, "train", force)

  def make_test_function(self, force=False):
    """Keras' evaluation function, `test_step` traced once."""
    return self._make_step_loop(super().make_test_function, "test", force)

  def _make_step_loop(self, make, kind, force):
    """Keras' `make_<kind>_function`, its steps run by `steps.run_steps`.

    Keras' single-step function (built with `steps_per_execution` set to 1
    for the moment, so the step, its distribution and its counters are
    Keras' own) is looped over `steps_per_execution` steps. Keras' own
    function where it runs one step a call, eagerly or under a cluster
    coordinator.
    """
    current = getattr(self, f"{kind}_function")
    if current is not None and not force:
      return current
    steps = self._steps_per_execution
    if (steps is None or self.run_eagerly or self._cluster_coordinator or
        self.autotune_steps_per_execution or int(steps.numpy()) == 1):
      return make(force)
    count = int(steps.numpy())
    steps.assign(1)
    try:
      one_step = make(force=True).python_function
    finally:
      steps.assign(count)
    names = self.log_names(kind == "train")

    def function(iterator):
      return steps_lib.run_steps(lambda: one_step(iterator), steps,
                                 steps_lib.zero_logs(names))

    function = tf.function(function, reduce_retracing=True,
                           autograph=self.step_functions_autograph)
    setattr(self, f"{kind}_function", function)
    if kind == "train":
      self.train_tf_function = function
    return function

  def _update_metrics(self, terms, sample_weight, objective=None):
    updates = [(self.loss_tracker, terms["loss"]),
               (self.distortion_tracker, terms["distortion"]),
               (self.rate_tracker, terms["kl"])]
    if objective is not None:
      updates.append((self.objective_tracker, objective))
    for tracker, value in updates:
      tracker.update_state(value, sample_weight)
    logs = {tracker.name: _aggregated_result(tracker) for tracker, _ in updates}
    if self.kl_warmup_steps and objective is not None:
      logs["beta"] = tf.identity(self.current_beta)
    return logs

  def train_step(self, data):
    x, y, sample_weight = tf_keras.utils.unpack_x_y_sample_weight(data)
    del y
    if self.kl_warmup_steps:
      self.current_beta.assign(objectives.compute_linear_warmup(
          self.optimizer.iterations, self.kl_warmup_steps, self.beta))
    seed = self._step_seed(self.optimizer.iterations, 0)
    with tf.GradientTape() as tape:
      betas = {"loss": self.beta}
      if self.objective_differs and self.kl_warmup_steps:
        betas["objective"] = self.current_beta
      terms = bounds.batch_terms(self, x, seed, betas, sample_weight,
                                 self._data_has_gaps is False)
      # Summed over this replica's examples and divided by the global batch
      # size, so gradients summed over replicas are those of the batch mean.
      scaled = tf.nn.compute_average_loss(terms["objective"],
                                          sample_weight=sample_weight)
    # Zero, not None, for the indicator's kernel on data without gaps: the
    # gradient it always had there.
    gradients = tape.gradient(
        scaled, self.trainable_variables,
        unconnected_gradients=tf.UnconnectedGradients.ZERO)
    self.optimizer.apply_gradients(zip(gradients, self.trainable_variables))
    self.gradient_norm_tracker.update_state(tf.linalg.global_norm(gradients))
    logs = self._update_metrics(
        terms, sample_weight,
        terms["objective"] if self.objective_differs else None)
    logs["gradient_norm"] = _aggregated_result(self.gradient_norm_tracker)
    return logs

  def test_step(self, data):
    # The objective the user asked for: the target beta, the real KL, no
    # warm-up, no free bits. Early stopping on val_loss selects on it.
    x, y, sample_weight = tf_keras.utils.unpack_x_y_sample_weight(data)
    del y
    terms = bounds.batch_terms(
        self, x, self._step_seed(self._test_counter, 1), {"loss": self.beta},
        sample_weight, self._data_has_gaps is False)
    return self._update_metrics(terms, sample_weight)

  def predict_step(self, data):
    x, _, _ = tf_keras.utils.unpack_x_y_sample_weight(data)
    return self(x, training=False)

  def fit(self, x=None, y=None, batch_size=None, epochs=None, verbose="auto",
          callbacks=None, validation_split=0.0, validation_data=None,
          shuffle=True, class_weight=None, sample_weight=None, patience=None,
          lr_patience=None, **kwargs):
    """`tf_keras.Model.fit` on x alone, with `tfvae-train`'s recipe for
    what is left unset.

    Accepts a numpy array [N, input_dim] (float64 keeps large offsets
    exact; NaN marks a missing value) with `validation_split` (the last
    rows, as in Keras) or `validation_data` (an array, `(x_val,)` or
    `(x_val, None, sample_weight_val)`), or a batched `tf.data.Dataset` of
    x (or of `(x, None, sample_weight)`). `sample_weight` [N] weights each
    row's contribution to the ELBO (a weight of 2 counts a row twice).
    `y` and `class_weight` must be None: a VAE has no targets.

    Unset settings follow the recipe (`tfvae.training.recipe`), so this
    trains the model `tfvae-train` trains: settings of the constructor
    left "auto" are chosen now if `adapt` has not chosen them; `batch_size`
    grows with the training rows; `epochs` is at most `MAX_EPOCHS`; with
    validation rows, training stops after `patience` epochs without a
    better validation loss and keeps the best weights; the learning rate
    halves after `lr_patience` epochs without progress (down to 1/64 of
    where it started). A callback of the same kind in `callbacks`
    (`EarlyStopping`, `ReduceLROnPlateau`) replaces the recipe's, and
    `patience=0` / `lr_patience=0` turn them off.
    """
    validation.check_no_targets(y, class_weight)
    validation_split = validation.check_fraction(validation_split)
    num_rows = validation.fit_num_rows(x, validation_split, validation_data)
    if self.unresolved_settings:
      if num_rows is None:
        raise ValueError(
            "fit cannot count the rows of this dataset to choose the "
            f"settings left 'auto' ({', '.join(self.unresolved_settings)}): "
            "call adapt(dataset) first, or pass them")
      self.resolve(num_rows)
    settings = recipe.default_recipe(num_rows or 1, self.input_dim)
    if batch_size is None and num_rows is not None and not hasattr(
        x, "element_spec"):
      batch_size = settings["batch_size"]
    self._fit_batch_size = batch_size  # for `refit`
    if epochs is None:
      epochs = recipe.MAX_EPOCHS
    has_validation = bool(validation_split) or validation_data is not None
    from tfvae.training import callbacks as callbacks_lib  # pylint: disable=g-import-not-at-top
    callbacks = list(callbacks or []) + callbacks_lib.recipe_callbacks(
        callbacks, has_validation, validation.check_non_negative_int(
            settings["patience"] if patience is None else patience,
            "patience"),
        validation.check_non_negative_int(
            settings["lr_patience"] if lr_patience is None else lr_patience,
            "lr_patience"), self._starting_learning_rate())
    x = self._fit_input(x, "x", for_training=True)
    sample_weight = validation.fit_sample_weight(sample_weight, x)
    if (self.categories is not None and validation_data is not None and
        not hasattr(validation_data, "element_spec")):
      validation_data = self.encode_table(
          validation_data[0] if isinstance(validation_data, tuple)
          else validation_data)
    validation_data = validation.fit_validation_data(
        validation_data, self.input_dim, self.feature_names)
    self._note_gaps(x, validation_data)
    # The optimizer's slots now, not in the first step: a step that
    # creates variables makes tf.function trace the training function
    # twice. (Keras' legacy optimizers have no `build`; they trace twice.)
    if hasattr(getattr(self, "optimizer", None), "build"):
      with self.distribute_strategy.scope():
        self.optimizer.build(self.trainable_variables)
    return super().fit(
        x, validation.placeholder_targets(x, sample_weight),
        batch_size=batch_size, epochs=epochs, verbose=verbose,
        callbacks=callbacks, validation_split=validation_split,
        validation_data=validation_data,
        shuffle=shuffle, sample_weight=sample_weight, **kwargs)

  def refit(self, x, history=None, batch_size=None, verbose=0):
    """A fresh model of this one's settings trained on every row of `x` for
    the epoch count that early stopping chose, replaying that run's
    learning rates: what `tfvae-train --refit` (`TrainConfig(refit=True)`)
    trains and `tfvae-impute` fills a table's gaps with (0.012 column
    standard deviations lower RMSE on the imputation benchmark's 20% cells,
    docs/missing-values.md). With `tf_keras.utils.set_random_seed(s)` just
    before, the same model as `TrainConfig(seed=s, refit=True)` on the same
    rows (the training rows, then the validation rows).

    Args:
      x: numpy array [N, input_dim] (or a table the model reads), every
        row to train on: typically the training and validation rows of the
        first fit, concatenated.
      history: the first fit's `History` (what `fit` returned) or its
        `.history` dict, which must hold `val_loss` (and `lr`, if the
        learning rate changed); default this model's last `fit`.
      batch_size: default the first fit's.
      verbose: Keras' verbosity for the new fit.

    Returns:
      The new, adapted, compiled and fitted `VAE`; this model is unchanged.

    Raises:
      ValueError: no history with validation losses.
    """
    history = self.history if history is None else history
    logs = getattr(history, "history", history) or {}
    losses = np.asarray(logs.get("val_loss") or [], np.float64)
    if not np.isfinite(losses).any():
      raise ValueError(
          "refit needs the history of a fit with validation rows, to know "
          "how many epochs to train: fit(x_train, validation_data=x_val) "
          "first, or pass history=")
    best_epoch = int(np.nanargmin(losses)) + 1
    rates = list(logs.get("lr") or [self._starting_learning_rate()])
    fresh = type(self).from_config(self.get_config())
    fresh.adapt(x)
    fresh.compile(
        tf_keras.optimizers.deserialize(
            tf_keras.optimizers.serialize(self.optimizer)),
        steps_per_execution=int(self._steps_per_execution.numpy()),
        jit_compile=self._jit_compile)
    schedule = tf_keras.callbacks.LearningRateScheduler(
        lambda epoch, _: float(rates[min(epoch, len(rates) - 1)]))
    fresh.fit(x, epochs=best_epoch,
              batch_size=batch_size or getattr(self, "_fit_batch_size", None),
              shuffle=True, callbacks=[schedule], patience=0, lr_patience=0,
              verbose=verbose)
    return fresh

  def _starting_learning_rate(self):
    """The optimizer's learning rate as a float (None: a schedule, or not
    compiled yet)."""
    rate = getattr(getattr(self, "optimizer", None), "learning_rate", None)
    try:
      return float(tf_keras.backend.get_value(rate))
    except (TypeError, ValueError):
      return None

  def _note_gaps(self, x, validation_data=None, test_only=False):
    """Notes whether the data have gaps (None: unknown, a dataset); without
    any the steps skip the MIWAE branch (half the tracing time)."""
    gaps = validation.has_gaps(x, validation_data)
    if gaps != self._data_has_gaps:
      self._data_has_gaps = gaps
      self.test_function = None
      if not test_only:
        self.train_function = None

  def evaluate(self, x=None, y=None, batch_size=None, verbose="auto",
               sample_weight=None, **kwargs):
    """`tf_keras.Model.evaluate` on x alone (see `fit`)."""
    validation.check_no_targets(y, action="evaluates")
    x = self._fit_input(x, "x")
    sample_weight = validation.fit_sample_weight(sample_weight, x)
    if not kwargs.get("_use_cached_eval_dataset"):  # not fit's validation
      self._note_gaps(x, test_only=True)
    return super().evaluate(
        x, validation.placeholder_targets(x, sample_weight),
        batch_size=batch_size, verbose=verbose, sample_weight=sample_weight,
        **kwargs)

  def predict(self, x, batch_size=None, verbose="auto", **kwargs):
    """Deterministic reconstructions, numpy float64 [N, input_dim] (see `call`)."""
    return super().predict(self._fit_input(x, "x"), batch_size=batch_size,
                           verbose=verbose, **kwargs)

  def adapt(self, x, batch_size=65536):
    """Standardises the networks' inputs and outputs with statistics of x.

    The encoder then sees `(x - loc) / scale` (in float64) and the decoder's
    distribution is mapped back, so every reported number stays in the
    data's units, log-Jacobian included. Each column's recording resolution
    (which floors its scales: `statistics.compute_resolution`) and atoms
    are found in x too.

    Args:
      x: an array [num_examples, input_dim], a batched `tf.data.Dataset`,
        or a data file's path (`statistics.compute_statistics_of`).
      batch_size: rows per block when reading a file.

    Returns:
      self, for chaining.
    """
    if self.categories is not None and not isinstance(x, str) and not hasattr(
        x, "element_spec"):
      x = self.encode_table(x)
    loc, scale, sample, value_range, num_rows = (
        statistics.compute_statistics_of(x, self.input_dim, self.seed,
                                         self.feature_names, batch_size,
                                         return_num_rows=True))
    return self.adapt_to_sample(loc, scale, sample, value_range, num_rows)

  def adapt_to_sample(self, loc, scale, sample, value_range=None,
                      num_rows=None):
    """`adapt` with the statistics known: loc, scale [input_dim], rows
    [n, input_dim] (all, or a sample) for the resolution and the atoms,
    each column's range (lower, upper) [input_dim] (default: the rows')
    and the number of training rows (default n), which settings left
    "auto" are chosen for (`resolve`)."""
    sample = np.asarray(sample, np.float64)
    if isinstance(self.column_types, str):  # "auto": typed from the rows
      from tfvae.data import columns  # pylint: disable=g-import-not-at-top
      self.column_types = columns.column_types_of(sample, self.categories)
    # Resolutions are in data units (a positive column's too: its values'
    # grid); the atoms of a positive column are found on the log scale,
    # where its grid is not even.
    resolution = statistics.compute_resolution(sample)
    atom_resolution = resolution
    if self.column_types is not None:
      from tfvae.data import columns  # pylint: disable=g-import-not-at-top
      columns.check_numeric_values(sample, self.column_types,
                                   self.feature_names, "the training rows")
      if self.standardization is not None:
        self.standardization.set_column_types(self.column_types)
      positive = np.asarray(self.column_types) == columns.POSITIVE
      if positive.any():  # their statistics are those of log x
        with np.errstate(invalid="ignore", divide="ignore"):
          sample = np.where(positive, np.log(sample), sample)
        loc, scale = (np.array(v, np.float64) for v in (loc, scale))
        working_loc, working_scale = statistics.compute_standardization(
            sample[:, positive])
        loc[positive], scale[positive] = working_loc, working_scale
        if value_range is not None:
          with np.errstate(invalid="ignore", divide="ignore"):
            value_range = tuple(np.where(positive, np.log(bound), bound)
                                for bound in value_range)
        atom_resolution = np.where(positive, 0.0, resolution)
    if value_range is None:
      value_range = statistics.compute_range(sample)
    atoms, frequencies = self.find_atoms(sample, scale, atom_resolution)
    if self.unresolved_settings:
      self.resolve(len(sample) if num_rows is None else num_rows,
                   statistics.most_atoms(atoms))
      atoms = atoms[:, :self.num_atoms]
      frequencies = frequencies[:, :self.num_atoms]
    self.set_statistics(loc, scale, atoms, frequencies,
                        resolution=resolution, value_range=value_range)
    return self

  def _categorical_statistics(self, loc, scale, resolution, value_range):
    """A categorical column's statistics: codes are not standardised (loc
    0, scale 1), their resolution is 1 and their range 0 .. L - 1."""
    levels = np.asarray(self.num_levels)
    categorical = levels > 0
    loc = np.where(categorical, 0.0, np.asarray(loc, np.float64))
    scale = np.where(categorical, 1.0, np.asarray(scale, np.float64))
    if resolution is not None:
      resolution = np.where(categorical, 1.0,
                            np.asarray(resolution, np.float64))
    if value_range is not None:
      value_range = (np.where(categorical, 0.0, value_range[0]),
                     np.where(categorical, levels - 1.0, value_range[1]))
    return loc, scale, resolution, value_range

  def _level_atoms(self, x, atoms, frequencies):
    """The atoms with each categorical column's levels (codes) as its
    atoms and their frequencies in x."""
    width = max(atoms.shape[1], max(self.num_levels))
    grown = np.full([self.input_dim, width], np.nan)
    grown[:, :atoms.shape[1]] = atoms
    shares = np.zeros([self.input_dim, width])
    shares[:, :frequencies.shape[1]] = frequencies
    for index, count in enumerate(self.num_levels):
      if not count:
        continue
      column = x[:, index]
      observed = column[~np.isnan(column)].astype(np.int64)
      grown[index] = np.nan
      grown[index, :count] = np.arange(count)
      shares[index] = 0.0
      shares[index, :count] = np.bincount(
          observed, minlength=count)[:count] / max(len(observed), 1)
    return grown, shares

  def find_atoms(self, x, scale, resolution=None):
    """(atoms, frequencies) of the rows x for this model
    (`statistics.compute_atoms`): at most `num_atoms` per column (the
    recipe's most while it is "auto"), atoms closer than 40 scale floors
    (or the column's resolution, if more) merged, columns on a coarse grid
    treated as discrete."""
    separation = heads.ATOM_SEPARATION * self.likelihood_scale_floor * (
        np.asarray(scale, np.float64))
    coarse = None
    if resolution is not None:
      separation = np.maximum(separation, resolution)
      coarse = statistics.is_coarse_grid(resolution, scale)
    most = (recipe.default_recipe(1, self.input_dim)["num_atoms"]
            if self.num_atoms == recipe.AUTO else self.num_atoms)
    found = statistics.compute_atoms(x, most, min_separation=separation,
                                     coarse=coarse)
    if self.categories is None:
      return found
    return self._level_atoms(np.asarray(x, np.float64), *found)

  def set_statistics(self, loc, scale, atoms=None, atom_frequencies=None,
                     resolution=None, value_range=None):
    """Sets what `adapt` computes: loc, scale [input_dim], the atoms
    [input_dim, num_atoms] with their frequencies (which start the
    decoder's mixture weights where the data have them), the resolution
    [input_dim] and the range (lower, upper) [input_dim] that samples
    keep to."""
    if self.categories is not None:
      loc, scale, resolution, value_range = self._categorical_statistics(
          loc, scale, resolution, value_range)
    self.standardization.set_statistics(loc, scale, atoms, resolution,
                                        value_range)
    if self.num_atoms and atom_frequencies is not None:
      self.likelihood_head.set_atom_logits(
          self.decoder_net.layers[-1],
          statistics.compute_atom_logits(atom_frequencies))

  # -- Inference: `sample`, `marginal_log_likelihood`, `anomaly_score`,
  # `calibrate`, `impute`, ... come from `tfvae.inference.methods`.

  def reconstruct(self, x):
    """The decoder mean at the posterior mean, numpy float64 [N, input_dim]."""
    return self(self.as_data_tensor(x)).numpy()

  # -- Config -------------------------------------------------------------------

  def get_config(self):
    config = {name: getattr(self, name) for name in _CONFIG_FIELDS}
    if not isinstance(self.hidden_units, str):  # "auto" until resolved
      config["hidden_units"] = list(self.hidden_units)
    if self.feature_names is not None:
      config["feature_names"] = list(self.feature_names)
    config["name"] = self.name
    if self.score_reference is not None:
      config["score_reference"] = [float(v) for v in self.score_reference]
    if self.level_calibration is not None:
      # Plain lists (Keras wraps a dict attribute in trackable wrappers).
      config["level_calibration"] = levels_lib.check(self.level_calibration,
                                                 self.num_levels)
    return config

  @classmethod
  def from_config(cls, config, custom_objects=None):
    del custom_objects
    config = dict(config)
    for name, value in _SAVED_CONFIG_DEFAULTS.items():
      if config.get(name) is None:  # saved before the setting existed
        config[name] = value
    reference = config.pop("score_reference", None)
    level_calibration = config.pop("level_calibration", None)
    model = cls(**config)
    if reference is not None:
      model.score_reference = np.asarray(reference, np.float64)
    model.level_calibration = levels_lib.check(level_calibration,
                                           model.num_levels)
    return model

  # -- Input checks -------------------------------------------------------------

  def as_data_tensor(self, x):
    """x as a checked float Tensor [batch_size, input_dim]
    (`validation.data_tensor`): the entry of every path from x."""
    self._check_resolved()
    if self.categories is not None:
      x = self.encode_table(x)
    return validation.data_tensor(x, self.input_dim, self.feature_names)

  def encode_table(self, x):
    """x with categorical columns as level codes: a DataFrame (matched by
    column name) or object array of texts and numbers is encoded
    (`tfvae.data.columns.encode_frame`); numbers are checked to be codes.
    Tensors pass through."""
    from tfvae.data import columns  # pylint: disable=g-import-not-at-top
    if tf.is_tensor(x) or isinstance(x, tf.Variable):
      return x
    if hasattr(x, "columns") and self.feature_names is not None:
      order = validation.column_order([str(c) for c in x.columns],
                                      self.feature_names, "x")
      if order is not None:
        x = x.iloc[:, order]
    array = np.asarray(x.to_numpy() if hasattr(x, "to_numpy") else x)
    if array.dtype == object:
      return columns.encode_frame(array, self.categories)
    if array.ndim == 2 and np.issubdtype(array.dtype, np.number):
      columns.check_codes(array.astype(np.float64), self.categories)
    return x

  def _fit_input(self, value, name, for_training=False):
    trainable = ((self.standardization.loc.numpy(),
                  self.standardization.scale.numpy(), self.is_adapted)
                 if for_training else None)
    if self.categories is not None and not hasattr(value, "element_spec"):
      value = self.encode_table(value)
    return validation.fit_input(value, name, self.input_dim,
                                self.feature_names, trainable)


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
