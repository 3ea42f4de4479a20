"""Distribution layers: the posterior q(z|x) and the decoder likelihoods p(x|z).

Every head is a `tfp.layers.DistributionLambda` subclass with an explicit
`get_config` (no pickled lambdas), a static `params_size(event_size)` telling
the network in front of it how many outputs to produce, and a floor under
every learned scale so that log-densities stay finite on constant or
discrete columns. Heads are registered as Keras-serialisable ("tfvae>...").

Likelihood heads work in standardised units: called on the decoder
network's outputs they return the family's distribution of
`u = (x - data_loc) / data_scale`, one scalar distribution per feature
(batch shape [..., D]), so that a model can sum log-densities over the
observed features only. All families are location-scale families, so the
distribution in data units is the same family with
`loc -> data_loc + data_scale * loc` and `scale -> data_scale * scale`
(`to_data_units`), and its log-density includes the log-Jacobian
`-sum(log data_scale)`.

A traced TFP distribution's `mean()` / `stddev()` are plain TensorFlow ops,
so the serving graphs built from these heads load without TFP.
"""

import math

import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp
import tf_keras

from tfvae import families
from tfvae import objectives

tfd = tfp.distributions

# softplus(_SOFTPLUS_ONE) == 1: start learned scales at one standard deviation.
_SOFTPLUS_ONE = math.log(math.e - 1.0)
# Atoms closer than this many scale floors are one atom (the commoner).
ATOM_SEPARATION = 40.0
_HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)
# Student's t degrees of freedom stay this far above their floor, so that
# df > 1 (the mean exists) holds in float32 even where softplus underflows.
_DF_MARGIN = 1e-3


def floored_softplus(raw, floor):
  """Returns `softplus(raw) + floor`, the positive scale used by every head.

  Args:
    raw: float Tensor of unconstrained values, any shape.
    floor: float >= 0 (or a Tensor broadcasting against `raw`, e.g. one
      floor per feature), the smallest value the result can take.

  Returns:
    Tensor shaped like `raw`, strictly greater than `floor`.
  """
  return tf.nn.softplus(raw) + floor


def inverse_softplus(value):
  """The raw value whose softplus is `value` (a Python float > 0)."""
  return math.log(math.expm1(value))


def _mean(distribution):
  return distribution.mean()


@tf_keras.saving.register_keras_serializable(package="tfvae")
class PosteriorNormal(tfp.layers.DistributionLambda):
  """Diagonal Normal posterior q(z|x) with a softplus scale and a floor.

  The input holds `[loc, raw_scale]` concatenated on the last axis; the scale
  is `softplus(raw_scale) + scale_floor`. Converted to a tensor (e.g. when a
  Keras layer consumes it) the posterior gives its mean: no random draw.

  #### Example

  ```python
  head = PosteriorNormal(latent_dim=5)
  params = tf_keras.layers.Dense(PosteriorNormal.params_size(5))(h)
  posterior = head(params)  # batch_shape [batch_size], event_shape [5]
  ```

  Args:
    latent_dim: Python int, size of z.
    scale_floor: Python float, smallest posterior standard deviation.
      Default value: `1e-4`.
    **kwargs: forwarded to `tf_keras.layers.Layer`.
  """

  def __init__(self, latent_dim, scale_floor=1e-4, **kwargs):
    if int(latent_dim) < 1:
      raise ValueError(f"latent_dim must be a positive integer, got {latent_dim!r}")
    if not scale_floor >= 0:
      raise ValueError(f"scale_floor must be >= 0, got {scale_floor!r}")
    self.latent_dim = int(latent_dim)
    self.scale_floor = float(scale_floor)
    super().__init__(make_distribution_fn=self._make_distribution,
                     convert_to_tensor_fn=_mean, **kwargs)
    self.built = True  # no weights to create

  @staticmethod
  def params_size(latent_dim):
    """Number of network outputs needed: a loc and a raw scale per dimension."""
    return 2 * int(latent_dim)

  def distribution_parameters(self, params):
    """Maps network outputs to the posterior's parameters.

    Args:
      params: float Tensor [..., 2 * latent_dim].

    Returns:
      dict with `loc` and `scale`, each [..., latent_dim].
    """
    loc, raw_scale = tf.split(params, 2, axis=-1)
    return {"loc": loc, "scale": floored_softplus(raw_scale, self.scale_floor)}

  @staticmethod
  def make_distribution(parameters):
    """The posterior from `distribution_parameters`, event_shape [latent_dim]."""
    return tfd.Independent(tfd.Normal(**parameters), reinterpreted_batch_ndims=1)

  def _make_distribution(self, params):
    return self.make_distribution(self.distribution_parameters(params))

  def get_config(self):
    config = tf_keras.layers.Layer.get_config(self)
    config.update(latent_dim=self.latent_dim, scale_floor=self.scale_floor)
    return config

  @classmethod
  def from_config(cls, config):
    # DistributionLambda.from_config expects a pickled function; ours has none.
    return cls(**config)


class LikelihoodHead(tfp.layers.DistributionLambda):
  """Base class of the decoder likelihoods p(x|z), in standardised units.

  Called on `params` [..., output_size] from the decoder network, it
  returns the distribution of each feature, batch_shape [..., event_size].
  Subclasses define `family_name`, `params_size` (the family's own
  outputs), `family_parameters` and `family`.

  **Atoms.** Real columns often hold a few values many times: zeros in a
  zero-inflated column, a cap (visibility 10 miles), the codes of a count.
  With `num_atoms=A > 0` each feature's distribution is a mixture of the
  family and A point masses at that column's atoms (the model supplies
  their places as `atom_loc`, NaN where a column has fewer, and how close
  a value must be to count as one, `atom_tolerance`), with mixture weights
  from A + 1 more decoder outputs per feature. Its log-density is taken
  against counting measure at the atoms and length elsewhere
  (`hurdle_log_prob`): a value at an atom scores the atom's probability
  given z, any other value the family's probability times its density.
  No spike width enters, so an exact repeat gains nothing from an
  arbitrary constant.

  Args:
    event_size: Python int, number of features D.
    scale_floor: Python float, smallest scale in standardised units.
      Default value: `1e-3`.
    num_atoms: Python int A >= 0, atoms per feature. Default value: `0`.
    **kwargs: forwarded to `tf_keras.layers.Layer`.
  """

  # The name in `tfvae.families` that `make_likelihood` builds this head for.
  family_name = None

  def __init__(self, event_size, scale_floor=1e-3, num_atoms=0, **kwargs):
    if int(event_size) < 1:
      raise ValueError(f"event_size must be a positive integer, got {event_size!r}")
    if not scale_floor > 0:
      raise ValueError(f"scale_floor must be > 0, got {scale_floor!r}")
    if int(num_atoms) < 0:
      raise ValueError(f"num_atoms must be >= 0, got {num_atoms!r}")
    self.event_size = int(event_size)
    self.scale_floor = float(scale_floor)
    self.num_atoms = int(num_atoms)
    super().__init__(make_distribution_fn=self._make_distribution,
                     convert_to_tensor_fn=_mean, **kwargs)
    # Any weights are created in the constructor: the model calls
    # `distribution_parameters` directly as well as through the layer.
    self.built = True

  @staticmethod
  def params_size(event_size):
    """The family's own outputs for D features (atoms not counted)."""
    raise NotImplementedError

  @property
  def output_size(self):
    """Decoder outputs this head takes: the family's, plus A + 1 mixture
    logits per feature with atoms."""
    atoms = self.event_size * (self.num_atoms + 1) if self.num_atoms else 0
    return self.params_size(self.event_size) + atoms

  def set_atom_logits(self, output_layer, logits):
    """Starts the mixture weights at `logits` [D, A + 1] (for instance the
    atoms' frequencies), by setting the biases of the decoder's output
    layer (a Dense layer of `output_size` units) that feed them."""
    bias = output_layer.bias.numpy()
    bias[self.params_size(self.event_size):] = np.ravel(logits)
    output_layer.bias.assign(bias)

  def family_parameters(self, params, scale_floor=None):
    """The family's parameters from its own outputs, standardised units.

    Args:
      params: float Tensor [..., params_size(event_size)].
      scale_floor: optional float32 Tensor [event_size], each feature's
        smallest scale (`Standardization.scale_floor`); default the head's
        `scale_floor` for every feature.

    Returns:
      dict of Tensors [..., event_size]: `loc`, `scale` and any further
      family parameter (`df` for Student's t).
    """
    raise NotImplementedError

  @staticmethod
  def family(parameters):
    """The scalar family from its parameters, batch shape [..., D]."""
    raise NotImplementedError

  def family_log_prob(self, parameters, u):
    """The family's log-density per feature, [..., D], in closed form.

    The same numbers as `family(parameters).log_prob(u)`, computed on the
    hot path of training and scoring with per-feature constants worked out
    once per feature (TFP works them out per element).
    """
    del parameters, u
    raise NotImplementedError

  def log_prob(self, parameters, u, atom_index=None):
    """log p(u) per feature, [..., D]: `make_distribution(parameters)`'s.

    With atoms, the density against counting measure at the atoms and
    Lebesgue measure elsewhere (`hurdle_log_prob`): a value at atom j
    scores log P(atom j), any other value log P(family) plus the family's
    log-density. The family never sees atom values, and no width enters.

    Args:
      parameters: dict from `distribution_parameters` (with `atom_loc` and
        `atom_tolerance` when the head has atoms), tensors [..., D].
      u: values [..., D] broadcastable against the parameters.
      atom_index: optional int32 [..., D] broadcastable against them: 0
        where a value is at none of its column's atoms, j at atom j
        (1-based); default `match_atoms` of u.
    """
    log_family = self.family_log_prob(parameters, u)
    if "count_half_width" in parameters:
      log_family = self.count_log_prob(parameters, u, log_family)
    if "atom_logits" not in parameters:
      return log_family
    if atom_index is None:
      atom_index = match_atoms(u, parameters["atom_loc"],
                               parameters["atom_tolerance"])
    return hurdle_log_prob(parameters["atom_logits"], parameters["atom_loc"],
                           log_family, atom_index,
                           parameters.get("atom_only"))

  @staticmethod
  def count_log_prob(parameters, u, log_density):
    """Count columns' log-probabilities in place of their log-densities.

    A count column is a discretised logistic (the likelihood PixelCNN++
    gives 8-bit values; Salimans et al. 2017) whatever the family of the
    real columns: with the decoder's loc and scale, its integer k
    (standardised: u) gets the logistic's probability between k - 1/2 and
    k + 1/2, and 0 all of it below 1/2: a probability mass function on 0,
    1, 2, ... Its CDF is a sigmoid, so the masses cost little in training
    (a Student's t CDF is an incomplete beta function, 35x slower per
    step). With atoms, the logistic's slot covers the integers that are
    not atoms, so its masses are divided by the mass it leaves them.

    Args:
      parameters: as `log_prob`'s, with `count_half_width` [D] (half a unit
        in standardised units; 0: not a count column) and
        `count_zero_edge` [D] (where 1/2 falls, standardised).
      u: values [..., D].
      log_density: the family's log-density at u, [..., D] (kept in the
        other columns).

    Returns:
      Tensor like log_density.
    """
    dtype = log_density.dtype
    half = tf.cast(parameters["count_half_width"], dtype)
    edge = tf.cast(parameters["count_zero_edge"], dtype)
    loc = tf.cast(parameters["loc"], dtype)
    scale = tf.cast(parameters["scale"], dtype)
    # Other columns get a unit bin too (their masses are discarded), so
    # that no empty bin puts an infinity into a gradient.
    counted = half > 0
    half = tf.where(counted, half, tf.ones([], dtype))
    log_mass = logistic_log_bin_mass(loc, scale, u, half, edge)
    if "atom_logits" in parameters:
      atom_loc = tf.cast(parameters["atom_loc"], dtype)  # [D, A]
      present = tf.logical_not(tf.math.is_nan(atom_loc))
      places = tf.where(present, atom_loc, tf.zeros([], dtype))
      masses = tf.exp(logistic_log_bin_mass(
          loc[..., None], scale[..., None], places, half[:, None],
          edge[:, None]))
      taken = tf.reduce_sum(tf.where(present, masses, tf.zeros([], dtype)), -1)
      log_mass -= tf.math.log1p(-tf.minimum(taken, 1.0 - 1e-6))
    return tf.where(counted, log_mass, log_density)

  def distribution_parameters(self, params, scale_floor=None):
    """Maps decoder outputs to the distribution's parameters.

    Args:
      params: float Tensor [..., output_size].
      scale_floor: optional per-feature floor (`family_parameters`).

    Returns:
      dict of Tensors [..., event_size]: the family's (`loc`, `scale`,
      `df`), and with atoms `atom_logits` [..., event_size, A + 1] (the
      family first, then the atoms).
    """
    params = tf.convert_to_tensor(params)
    size = self.params_size(self.event_size)
    parameters = self.family_parameters(params[..., :size], scale_floor)
    if self.num_atoms:
      logits = params[..., size:]
      parameters["atom_logits"] = tf.reshape(
          logits, tf.concat([tf.shape(logits)[:-1],
                             [self.event_size, self.num_atoms + 1]], 0))
    return parameters

  @classmethod
  def make_distribution(cls, parameters):
    """The distribution per feature from a parameter dict, batch [..., D].

    With `atom_logits`, `parameters` must also hold `atom_loc` and
    `atom_tolerance` [event_size, A] (NaN `atom_loc`: no such atom), in the
    units of `loc` (the model supplies them): a mixture of the family and
    point masses (`AtomMixture`, whose `log_prob` is `log_prob`'s).
    """
    if "count_mask" in parameters:
      raise NotImplementedError(
          "a model with count columns has no TFP distribution object (their "
          "logistic is binned): use log_prob, likelihood_parameters, sample")
    base = cls.family(parameters)
    if "atom_logits" not in parameters:
      return base
    shape = tf.shape(parameters["loc"])
    atom_loc = tf.cast(parameters["atom_loc"], parameters["loc"].dtype)
    places = tf.where(tf.math.is_nan(atom_loc), tf.zeros([], atom_loc.dtype),
                      atom_loc)
    tolerance = tf.cast(parameters["atom_tolerance"], atom_loc.dtype)
    spikes = [tfd.Deterministic(tf.broadcast_to(places[:, j], shape),
                                atol=tolerance[:, j])
              for j in range(atom_loc.shape[-1])]
    mixture = AtomMixture(
        cat=tfd.Categorical(logits=cls._masked_logits(parameters)),
        components=[base] + spikes)
    mixture.atom_loc = atom_loc
    mixture.atom_tolerance = tolerance
    mixture.atom_logits = parameters["atom_logits"]
    mixture.atom_only = parameters.get("atom_only")
    return mixture

  @staticmethod
  def _masked_logits(parameters):
    """The mixture logits with -inf where a column has no such atom (and
    in the family's slot of a categorical column)."""
    logits = parameters["atom_logits"]
    mask = absent_slots(parameters["atom_loc"], parameters.get("atom_only"))
    return tf.where(mask, tf.constant(-np.inf, logits.dtype), logits)

  @classmethod
  def mean_and_variance(cls, parameters):
    """The distribution's mean and variance per feature, [..., D] each.

    With atoms, by the law of total variance over the mixture's components
    (TFP's `Mixture` gives NaN when a component's variance is infinite, as
    a Student's t with df <= 2 has; here the variance is then infinite).
    """
    base = cls.column_family(parameters)
    mean, variance = base.mean(), base.variance()
    if "atom_logits" not in parameters:
      return mean, variance
    weights = cls.component_probabilities(parameters)
    atom_loc = tf.cast(parameters["atom_loc"], mean.dtype)
    atom_loc = tf.where(tf.math.is_nan(atom_loc), tf.zeros([], mean.dtype),
                        atom_loc)
    atom_second = tf.square(atom_loc)
    family_weight = weights[..., 0]
    mixture_mean = family_weight * mean + tf.reduce_sum(
        weights[..., 1:] * atom_loc, -1)
    family_second = tf.where(family_weight > 0,
                             family_weight * (variance + tf.square(mean)), 0.0)
    second = family_second + tf.reduce_sum(weights[..., 1:] * atom_second, -1)
    return mixture_mean, tf.maximum(second - tf.square(mixture_mean), 0.0)

  @classmethod
  def summary(cls, parameters):
    """What a user reads of the distribution per feature, [..., D] each:
    the family's `loc`, `scale` (and `df`), the `mean` and `stddev`
    (infinite where a Student's t has df <= 2), and with atoms
    `atom_probability`, the probability of a value at one of its column's
    atoms."""
    out = {name: parameters[name] for name in ("loc", "scale", "df")
           if name in parameters}
    mean, variance = cls.mean_and_variance(parameters)
    out["mean"] = mean
    out["stddev"] = tf.sqrt(variance)
    if "atom_logits" in parameters:
      out["atom_probability"] = 1.0 - cls.component_probabilities(
          parameters)[..., 0]
    return out

  @classmethod
  def column_family(cls, parameters):
    """`family(parameters)`, with the logistic of count columns in their
    place when `parameters` has a `count_mask` [D] (data units)."""
    base = cls.family(parameters)
    if "count_mask" not in parameters:
      return base
    return CountAwareFamily(base, parameters, parameters["count_mask"])

  @classmethod
  def component_probabilities(cls, parameters):
    """P(family), P(atom 1), ..., P(atom A) per feature: [..., D, A + 1]."""
    return tf.nn.softmax(cls._masked_logits(parameters), axis=-1)

  @classmethod
  def draw(cls, parameters, component_uniforms, value_uniforms, lower=None,
           upper=None):
    """Draws by inverse CDF from uniforms of the parameters' shape [..., D].

    `component_uniforms` picks the mixture component (with atoms), and
    `value_uniforms` the family's quantile; the same uniforms for every row
    make the draws of a row independent of the other rows. With `lower`
    and `upper` ([D], the parameters' units) the family is truncated to
    [lower, upper]: the quantile of F(lower) + v (F(upper) - F(lower)), an
    exact draw from the truncated family; where the interval holds almost
    none of the family's mass (below TRUNCATION_MIN_MASS) the untruncated
    draw is clipped instead.
    """
    family = cls.column_family(parameters)
    if lower is None:
      values = family.quantile(value_uniforms)
    else:
      # One cdf and one quantile call each (Student's t's are large graphs:
      # every call adds about a second to an export).
      shape = tf.shape(value_uniforms)
      bounds = family.cdf(tf.stack([
          tf.broadcast_to(tf.cast(lower, value_uniforms.dtype), shape),
          tf.broadcast_to(tf.cast(upper, value_uniforms.dtype), shape)]))
      low, high = bounds[0], bounds[1]
      inside = high - low > TRUNCATION_MIN_MASS
      values = family.quantile(tf.where(
          inside, low + value_uniforms * (high - low), value_uniforms))
      values = tf.clip_by_value(values, lower, upper)
    if "count_mask" in parameters:
      # A count column's slot draws its own integers (kept to the range by
      # clipping, as a coarse draw is).
      counts = count_quantile(parameters["loc"], parameters["scale"],
                              value_uniforms, parameters.get("atom_loc"))
      if lower is not None:
        counts = tf.clip_by_value(counts, tf.math.ceil(lower),
                                  tf.math.floor(upper))
      values = tf.where(parameters["count_mask"], counts, values)
    if "atom_logits" not in parameters:
      return values
    cumulative = tf.cumsum(cls.component_probabilities(parameters), axis=-1)
    component = tf.reduce_sum(tf.cast(
        cumulative[..., :-1] < component_uniforms[..., None], tf.int32), -1)
    if parameters.get("atom_only") is not None:  # a uniform of exactly 0
      component = tf.where(tf.cast(parameters["atom_only"], tf.bool),
                           tf.maximum(component, 1), component)
    atom_loc = tf.cast(parameters["atom_loc"], values.dtype)
    atom_loc = tf.where(tf.math.is_nan(atom_loc), tf.zeros([], values.dtype),
                        atom_loc)
    return tf.where(component == 0, values, _pick_atoms(atom_loc, component))

  @staticmethod
  def to_data_units(parameters, data_loc, data_scale):
    """The parameters of x = data_loc + data_scale * u, for u ~ the family.

    Exact for every location-scale family: only `loc` and `scale` change
    (the atoms' places and tolerances are the model's, in the units asked).

    Args:
      parameters: dict from `distribution_parameters`.
      data_loc, data_scale: Tensors [event_size] of the parameters' dtype.

    Returns:
      dict with the same keys.
    """
    mapped = dict(parameters)
    mapped["loc"] = data_loc + data_scale * parameters["loc"]
    mapped["scale"] = data_scale * parameters["scale"]
    return mapped

  def _make_distribution(self, params):
    return self.make_distribution(self.distribution_parameters(params))

  def get_config(self):
    config = tf_keras.layers.Layer.get_config(self)
    config.update(event_size=self.event_size, scale_floor=self.scale_floor,
                  num_atoms=self.num_atoms)
    return config

  @classmethod
  def from_config(cls, config):
    return cls(**config)


# Below this much of a family's mass inside a column's range, a truncated
# draw is not computed (its quantiles lose their precision): the plain draw
# is clipped to the range instead.
TRUNCATION_MIN_MASS = 1e-9


def _pick_atoms(atom_loc, component):
  """atom_loc [D, A], component [..., D] in 0..A (0: none) -> [..., D]."""
  table = tf.concat([tf.zeros_like(atom_loc[:, :1]), atom_loc], -1)  # [D, A+1]
  flat = tf.reshape(component, [-1, tf.shape(table)[0]])  # [N, D]
  picked = tf.gather(table, tf.transpose(flat), batch_dims=1)  # [D, N]
  return tf.reshape(tf.transpose(picked), tf.shape(component))


def match_atoms(u, atom_loc, atom_tolerance):
  """Which atom each value sits at: int32 [..., D], 0 for none, j for atom j.

  Args:
    u: float [..., D].
    atom_loc: [D, A] in u's units, NaN where a column has no such atom.
    atom_tolerance: [D, A], how far from an atom a value still counts as
      that atom (half the column's resolution, or float rounding).
  """
  u = tf.convert_to_tensor(u)
  atom_loc = tf.cast(atom_loc, u.dtype)
  hit = tf.abs(u[..., None] - atom_loc) <= tf.cast(atom_tolerance, u.dtype)
  hit = tf.logical_and(hit, tf.logical_not(tf.math.is_nan(atom_loc)))
  first = tf.argmax(tf.cast(hit, tf.int32), axis=-1, output_type=tf.int32)
  return tf.where(tf.reduce_any(hit, -1), first + 1, 0)


def absent_slots(atom_loc, atom_only=None):
  """Which of a column's A + 1 mixture slots do not exist: bool [D, A + 1].

  An atom slot is absent where the column has no such atom (NaN place);
  the family's slot (the first) where the column is categorical
  (`atom_only` [D], True: every value is one of its atoms, its levels).
  """
  absent = tf.math.is_nan(atom_loc)
  family = tf.zeros_like(absent[:, :1])
  if atom_only is not None:
    family = tf.cast(atom_only, tf.bool)[:, None]
  return tf.concat([family, absent], -1)


def hurdle_log_prob(atom_logits, atom_loc, log_family, atom_index,
                    atom_only=None):
  """The log-density of a mixture of a family and point masses, per feature.

  Against the base measure that counts each atom and measures the rest by
  length (Lebesgue): a value at atom j has log-density log P(atom j), a
  value at no atom log P(family) + the family's log-density there. It is a
  proper likelihood (the base measure does not depend on the parameters),
  its atom terms are probabilities (no width, no units), and the family is
  fitted to the values that are not atoms only.

  Args:
    atom_logits: float [..., D, A + 1], the family's logit first.
    atom_loc: [D, A], NaN where a column has no such atom (its logit is
      left out of the normaliser).
    log_family: float [..., D], the family's log-density at each value.
    atom_index: int32 [..., D] broadcastable against log_family (see
      `match_atoms`).
    atom_only: optional bool [D]: True for a categorical column, whose
      values are all atoms (its levels): the family's slot is left out, so
      the atoms' probabilities are a softmax over the levels alone.

  Returns:
    Tensor [..., D] of log_family's dtype.
  """
  dtype = log_family.dtype
  # The [..., D, A + 1] work runs in float32 (the logits come from a float32
  # network), over the last axis (measured: faster than transposing the
  # slots to the front, `scripts/bench_likelihood.py`).
  logits = tf.cast(atom_logits, tf.float32)
  # Finite stand-ins for -inf (exp gives 0 all the same) keep the gradients
  # of a column without atoms finite.
  mask = tf.where(absent_slots(atom_loc, atom_only),
                  objectives.NEGLIGIBLE_LOG_WEIGHT, 0.0)  # [D, A + 1]
  logits = logits + mask
  # The normaliser over the last axis of A + 1 slots, and the slot each
  # value sits in picked by a gather (the same slots for every sample).
  peak = tf.reduce_max(logits, -1, keepdims=True)
  log_normalizer = peak[..., 0] + tf.math.log(
      tf.reduce_sum(tf.exp(logits - peak), -1))
  if atom_index.shape.rank > logits.shape.rank - 1:  # values with more batch
    logits = tf.broadcast_to(logits, tf.concat([tf.broadcast_dynamic_shape(
        tf.shape(logits)[:-1], tf.shape(atom_index)), tf.shape(logits)[-1:]],
                                               0))
  index = tf.broadcast_to(atom_index[..., None],
                          tf.concat([tf.shape(logits)[:-1], [1]], 0))
  picked = tf.gather(logits, index, batch_dims=logits.shape.rank - 1)[..., 0]
  log_component = tf.cast(picked - log_normalizer, dtype)
  return log_component + tf.where(atom_index == 0, log_family,
                                  tf.zeros([], dtype))


def logistic_log_bin_mass(loc, scale, u, half, edge):
  """log P(u - half < U <= u + half) for U ~ Logistic(loc, scale), with
  everything below u + half where u < edge (the bin of 0); broadcast.

  A bin right of the centre is mirrored to the left (the logistic is
  symmetric), and the mass is the difference of two log-CDFs there,
  log F(y) = -softplus(-y) with y = (x - loc) / scale: no tail loses its
  digits, and no branch that is thrown away holds an infinity that would
  reach a gradient.
  """
  at_zero = u < edge
  y_upper = (u + half - loc) / scale
  y_lower = (u - half - loc) / scale
  # The bin of 0 is F(upper) itself; in the difference below it gets a
  # stand-in bin, [-1, 0] (its own could be two equal log-CDFs of 0).
  y_lower = tf.where(at_zero, -tf.ones_like(y_lower), y_lower)
  y_stand_in = tf.where(at_zero, tf.zeros_like(y_upper), y_upper)
  mirror = tf.logical_and(y_stand_in + y_lower > 0.0,
                          tf.logical_not(at_zero))
  high = tf.where(mirror, -y_lower, y_stand_in)
  low = tf.where(mirror, -y_stand_in, y_lower)
  log_bin = tfp.math.log_sub_exp(-tf.math.softplus(-high),
                                 -tf.math.softplus(-low))
  return tf.where(at_zero, -tf.math.softplus(-y_upper), log_bin)


def count_quantile(loc, scale, uniforms, atom_loc=None):
  """Inverse CDF of a count column's logistic slot, [..., D] (data units).

  The slot's probabilities are the logistic's bins of the integers that
  are not atoms, divided by the mass it leaves them (`count_log_prob`), so
  its k-th value is found where G(k) = F(k + 1/2) - (the atoms' mass up to
  k) reaches v (1 - the atoms' mass): a fixed point reached in at most A +
  1 rounds (each round can only pass more atoms), and never an atom.

  Args:
    loc, scale: the logistic's parameters, [..., D].
    uniforms: float [..., D] in [0, 1).
    atom_loc: optional [D, A] atom places (NaN: none).
  """
  dtype = loc.dtype
  tiny = tf.constant(1e-12, dtype)
  if atom_loc is None:
    masses = tf.zeros(tf.concat([tf.shape(loc), [1]], 0), dtype)
    places = tf.fill(tf.shape(masses), tf.constant(-1.0, dtype))
    rounds = 1
  else:
    atom_loc = tf.cast(atom_loc, dtype)
    present = tf.logical_not(tf.math.is_nan(atom_loc))
    places = tf.where(present, atom_loc, -tf.ones([], dtype))  # [D, A]
    half = tf.constant(0.5, dtype)  # data units: unit bins, 0's below 1/2
    masses = tf.where(present, tf.exp(logistic_log_bin_mass(
        loc[..., None], scale[..., None], places, half, half)),
                      tf.zeros([], dtype))
    rounds = int(atom_loc.shape[-1]) + 1
  target = tf.cast(uniforms, dtype) * (1.0 - tf.reduce_sum(masses, -1))
  k = -tf.ones_like(loc)
  for _ in range(rounds):
    passed = tf.reduce_sum(tf.where(places <= k[..., None], masses,
                                    tf.zeros([], dtype)), -1)
    p = tf.clip_by_value(target + passed, tiny, 1.0 - tiny)
    x = loc + scale * (tf.math.log(p) - tf.math.log1p(-p))
    k = tf.maximum(tf.math.ceil(x - 0.5), 0.0)
  return k


class CountAwareFamily:
  """The family of each column with a count column's logistic in its
  place: log_prob, cdf, quantile, mean and variance per column, [..., D].
  (Count columns' binning is `count_log_prob`'s, their draws
  `count_quantile`'s.)"""

  def __init__(self, base, parameters, count_mask):
    self.base = base
    self.logistic = tfd.Logistic(loc=parameters["loc"],
                                 scale=parameters["scale"])
    self.mask = tf.cast(count_mask, tf.bool)

  def _pick(self, name, *args):
    return tf.where(self.mask, getattr(self.logistic, name)(*args),
                    getattr(self.base, name)(*args))

  def log_prob(self, x):
    return self._pick("log_prob", x)

  def cdf(self, x):
    return self._pick("cdf", x)

  def quantile(self, p):
    return self._pick("quantile", p)

  def mean(self):
    return self._pick("mean")

  def variance(self):
    return self._pick("variance")


class AtomMixture(tfd.Mixture):
  """TFP's `Mixture` of a family and `Deterministic` atoms whose `log_prob`
  is the density against counting measure at the atoms
  (`hurdle_log_prob`), the model's likelihood; sampling, mean and variance
  are the mixture's. `make_distribution` sets `atom_loc`,
  `atom_tolerance` and `atom_logits`."""

  def _log_prob(self, x):
    log_family = self.components[0].log_prob(x)
    return hurdle_log_prob(
        self.atom_logits, self.atom_loc, log_family,
        match_atoms(x, self.atom_loc, self.atom_tolerance), self.atom_only)


class LocationScaleLikelihood(LikelihoodHead):
  """A family given by a location and a scale per feature, both outputs of
  the decoder network (the scale through a floored softplus).

  Input `[loc, raw_scale]` [..., 2 * event_size]. A family names its
  `distribution` (a TFP class taking `loc` and `scale`) and writes its
  log-density `log_density(loc, scale, u)`; heads whose scale does not
  depend on z override `params_size` and `family_parameters`.
  """

  distribution = None

  @staticmethod
  def params_size(event_size):
    return 2 * int(event_size)

  def family_parameters(self, params, scale_floor=None):
    loc, raw_scale = tf.split(params, 2, axis=-1)
    floor = self.scale_floor if scale_floor is None else scale_floor
    return {"loc": loc, "scale": floored_softplus(raw_scale, floor)}

  @classmethod
  def family(cls, parameters):
    return cls.distribution(loc=parameters["loc"], scale=parameters["scale"])

  def family_log_prob(self, parameters, u):
    return self.log_density(parameters["loc"], parameters["scale"], u)

  @staticmethod
  def log_density(loc, scale, u):
    """log p(u) elementwise, [..., event_size]."""
    raise NotImplementedError


@tf_keras.saving.register_keras_serializable(package="tfvae")
class GaussianLikelihood(LocationScaleLikelihood):
  """Normal with mean(z) and a softplus scale(z) per feature.

  Heteroscedastic: the scale is an output of the decoder network.
  """

  family_name = families.GAUSSIAN
  distribution = tfd.Normal

  @staticmethod
  def log_density(loc, scale, u):
    y = (u - loc) / scale
    return -0.5 * tf.square(y) - tf.math.log(scale) - _HALF_LOG_2PI


@tf_keras.saving.register_keras_serializable(package="tfvae")
class SharedScaleGaussianLikelihood(GaussianLikelihood):
  """Normal with mean(z) and a learned per-feature scale independent of z.

  The calibrated decoder of Rybkin et al. (2021), "Simple and Effective VAE
  Training with Calibrated Decoders" (sigma-VAE). Input: loc [..., event_size].
  """

  family_name = families.GAUSSIAN_SHARED

  def __init__(self, event_size, scale_floor=1e-3, **kwargs):
    super().__init__(event_size, scale_floor=scale_floor, **kwargs)
    self.raw_scale = self.add_weight(
        name="raw_scale", shape=[self.event_size],
        initializer=tf_keras.initializers.Constant(_SOFTPLUS_ONE),
        trainable=True)

  @staticmethod
  def params_size(event_size):
    return int(event_size)

  def family_parameters(self, params, scale_floor=None):
    params = tf.convert_to_tensor(params)
    scale = floored_softplus(self.raw_scale, self.scale_floor
                             if scale_floor is None else scale_floor)
    return {"loc": params,
            "scale": tf.broadcast_to(tf.cast(scale, params.dtype),
                                     tf.shape(params))}


@tf_keras.saving.register_keras_serializable(package="tfvae")
class LaplaceLikelihood(LocationScaleLikelihood):
  """Laplace with loc(z) and a softplus scale(z) per feature.

  Heavier tails than the Normal; its NLL is an L1 reconstruction error with
  a learned per-feature scale.
  """

  family_name = families.LAPLACE
  distribution = tfd.Laplace

  @staticmethod
  def log_density(loc, scale, u):
    return -tf.abs(u - loc) / scale - tf.math.log(2.0 * scale)


@tf_keras.saving.register_keras_serializable(package="tfvae")
class StudentTLikelihood(LocationScaleLikelihood):
  """Student's t with loc(z), scale(z) and learned per-feature df.

  The degrees of freedom are `min_df + softplus(raw_df) + 0.001` > `min_df`
  (the 0.001 keeps df above the floor in float32 too). An optimizer's step
  moves df by about the learning rate, so df stays near its start
  (min_df + 5) unless the data pull it steadily: Gaussian data left it
  near 13 after 50,000 steps, 0.004 nats per feature short of a Gaussian.
  With `df_transform="exp"` (`min_df + 0.001 + exp(raw_df)`, raw_df
  clipped to [-20, log 1e5]) a step changes df by a fraction of itself,
  so df reaches either end (1.5 or 100) in a few thousand steps; measured
  in `scripts/bench_quality.py`, that gained 0.017 nats per example on the
  synthetic `nonlinear` set and lost 0.14 to 0.22 on two small real tables
  (diabetes, concrete): softplus is the head's default, and `tfvae-train`
  uses exp from `training.LARGE_FROM_ROWS` training rows. With `min_df >= 1`
  the mean always exists (it is `loc`); the standard deviation
  `scale * sqrt(df / (df - 2))` exists only where df > 2 and is infinite
  elsewhere (TFP's `stddev()` returns inf there, and so do the served
  `x_stddev` outputs; `scale` and `df` describe the spread in every case).
  Input `[loc, raw_scale]` [..., 2 * event_size].

  Args:
    event_size: Python int, number of features D.
    scale_floor: Python float, smallest scale in standardised units.
      Default value: `1e-3`.
    min_df: Python float >= 1, the degrees of freedom's floor; 1 allows
      tails as heavy as a Cauchy's. Default value: `1.0` (chosen by
      `scripts/bench_quality.py`; see the README).
    df_transform: "softplus" or "exp", how raw_df maps to df (see above).
      Default value: `"softplus"`.
    **kwargs: forwarded to `tf_keras.layers.Layer`.
  """

  family_name = families.STUDENT_T
  DEFAULT_MIN_DF = 1.0
  DF_TRANSFORMS = families.DF_TRANSFORMS

  def __init__(self, event_size, scale_floor=1e-3, min_df=DEFAULT_MIN_DF,
               df_transform="softplus", **kwargs):
    if not min_df >= 1:
      raise ValueError(
          f"min_df must be >= 1 so that the mean exists, got {min_df!r}")
    self.min_df = float(min_df)
    self.df_transform = families.check_df_transform(df_transform)
    super().__init__(event_size, scale_floor=scale_floor, **kwargs)
    # Start at df = min_df + 5: a moderately heavy tail either way.
    initial = (math.log(5.0) if df_transform == "exp"
               else inverse_softplus(5.0))
    self.raw_df = self.add_weight(
        name="raw_df", shape=[self.event_size],
        initializer=tf_keras.initializers.Constant(initial), trainable=True)

  def degrees_of_freedom(self):
    """The per-feature degrees of freedom, float32 [event_size]."""
    if self.df_transform == "softplus":
      return floored_softplus(self.raw_df, self.min_df + _DF_MARGIN)
    return self.min_df + _DF_MARGIN + tf.exp(
        tf.clip_by_value(self.raw_df, -20.0, math.log(1e5)))

  def family_parameters(self, params, scale_floor=None):
    parameters = super().family_parameters(params, scale_floor)
    loc = parameters["loc"]
    parameters["df"] = tf.broadcast_to(
        tf.cast(self.degrees_of_freedom(), loc.dtype), tf.shape(loc))
    return parameters

  @staticmethod
  def family(parameters):
    return tfd.StudentT(df=parameters["df"], loc=parameters["loc"],
                        scale=parameters["scale"])

  def family_log_prob(self, parameters, u):
    scale = parameters["scale"]
    df = tf.cast(self.degrees_of_freedom(), scale.dtype)  # [D]: per feature
    constant = (tf.math.lgamma(0.5 * (df + 1.0)) - tf.math.lgamma(0.5 * df) -
                0.5 * tf.math.log(df * math.pi))
    y = (u - parameters["loc"]) / scale
    return (constant - tf.math.log(scale) -
            0.5 * (df + 1.0) * objectives.log1p_square(y / tf.sqrt(df)))

  def get_config(self):
    config = super().get_config()
    config.update(min_df=self.min_df, df_transform=self.df_transform)
    return config


@tf_keras.saving.register_keras_serializable(package="tfvae")
class FixedScaleGaussianLikelihood(GaussianLikelihood):
  """Normal with mean(z) and the fixed scale implied by `MSE + 1e-4 * KL`.

  The original snippet minimised `mean((x - mu)**2) + 1e-4 * KL`, the mean
  taken over the D features. Multiplying by `1 / (1e-4 * D)` gives
  `sum((x - mu)**2) / (1e-4 * D) + KL`, which is the negative ELBO of a
  Gaussian decoder with the fixed variance `sigma**2 = 1e-4 * D / 2` (plus a
  constant). The scale is fixed in the units the networks see: on a model
  that was not adapted these are the data's units and training follows the
  snippet's objective exactly; after `adapt` they are standardised units,
  so the objective is the snippet's applied to standardised columns (each
  column's fixed scale in data units is `sigma * data_scale`). Every
  reported number is an honest log-likelihood in nats either way.
  Input: loc [..., event_size].

  Args:
    event_size: Python int, number of features D.
    scale_floor: unused except for config compatibility; the scale is fixed.
      Default value: `1e-3`.
    kl_weight: Python float, the snippet's KL weight.
      Default value: `1e-4`.
    **kwargs: forwarded to `tf_keras.layers.Layer`.
  """

  family_name = families.MSE

  def __init__(self, event_size, scale_floor=1e-3, kl_weight=1e-4, **kwargs):
    if not kl_weight > 0:
      raise ValueError(f"kl_weight must be > 0, got {kl_weight!r}")
    self.kl_weight = float(kl_weight)
    super().__init__(event_size, scale_floor=scale_floor, **kwargs)

  @property
  def fixed_scale(self):
    """The decoder standard deviation equivalent to the snippet's KL weight."""
    return math.sqrt(self.kl_weight * self.event_size / 2.0)

  @staticmethod
  def params_size(event_size):
    return int(event_size)

  def family_parameters(self, params, scale_floor=None):
    del scale_floor  # the scale is fixed
    params = tf.convert_to_tensor(params)
    return {"loc": params,
            "scale": tf.fill(tf.shape(params),
                             tf.constant(self.fixed_scale, params.dtype))}

  def get_config(self):
    config = super().get_config()
    config.update(kl_weight=self.kl_weight)
    return config


LIKELIHOODS = {
    head.family_name: head
    for head in (GaussianLikelihood, SharedScaleGaussianLikelihood,
                 LaplaceLikelihood, StudentTLikelihood,
                 FixedScaleGaussianLikelihood)
}


def make_likelihood(family, event_size, scale_floor=1e-3, **kwargs):
  """Builds the likelihood head registered under `family`.

  Args:
    family: one of `tfvae.families.NAMES`.
    event_size: Python int, number of features D.
    scale_floor: Python float, smallest scale in standardised units.
    **kwargs: forwarded to the head's constructor (`min_df` and
      `df_transform` for "student_t").

  Returns:
    A `LikelihoodHead`.

  Raises:
    ValueError: if `family` is not a family.
  """
  families.check_family(family)
  return LIKELIHOODS[family](event_size, scale_floor=scale_floor, **kwargs)
