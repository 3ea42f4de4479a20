"""Distribution layers: the posterior q(z|x) and the decoder likelihoods p(x|z).

Every head is a `tfp.layers.DistributionLambda` subclass with an explicit
`get_config` (no pickled lambdas), a static `params_size(event_size)` telling
the network in front of it how many outputs to produce, and a floor under
every learned scale so that log-densities stay finite on constant or
discrete columns.

Likelihood heads work in two coordinate systems. The decoder network emits
parameters for *standardised* data; `distribution_parameters` maps them back
to the data's own units with the affine map `x = data_loc + data_scale * u`.
For the location-scale families used here that push-forward is again a member
of the family (loc -> data_loc + data_scale * loc, scale -> data_scale *
scale), so the returned distribution's `log_prob` already includes the
log-Jacobian `-sum(log data_scale)`: every likelihood is in data units.

`distribution_parameters` and `moments` use TensorFlow ops only, so the
serving graphs in `tfvae.export` can call them without TFP.
"""

import math

import tensorflow as tf
import tensorflow_probability as tfp
import tf_keras

tfd = tfp.distributions

# softplus(_SOFTPLUS_ONE) == 1: start learned scales at one standard deviation.
_SOFTPLUS_ONE = math.log(math.e - 1.0)


def floored_softplus(raw, floor):
  """Returns `softplus(raw) + floor`, the positive scale used by every head.

  Args:
    raw: float Tensor of unconstrained values, any shape.
    floor: Python float >= 0, the smallest scale the result can take.

  Returns:
    Tensor shaped like `raw`, strictly greater than `floor`.
  """
  return tf.nn.softplus(raw) + floor


class PosteriorNormal(tfp.layers.DistributionLambda):
  """Diagonal Normal posterior q(z|x) with a softplus scale and a floor.

  The input holds `[loc, raw_scale]` concatenated on the last axis; the scale
  is `softplus(raw_scale) + scale_floor`.

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
    super().__init__(
        make_distribution_fn=self._make_distribution,
        convert_to_tensor_fn=tfd.Distribution.sample,
        **kwargs)

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

  def _make_distribution(self, params):
    return tfd.Independent(
        tfd.Normal(**self.distribution_parameters(params)),
        reinterpreted_batch_ndims=1)

  def get_config(self):
    config = tf_keras.layers.Layer.get_config(self)
    config.update(latent_dim=self.latent_dim, scale_floor=self.scale_floor)
    return config

  @classmethod
  def from_config(cls, config):
    # DistributionLambda.from_config expects a pickled function; ours has none.
    return cls(**config)


class LikelihoodHead(tfp.layers.DistributionLambda):
  """Base class of the decoder likelihoods p(x|z), in the data's own units.

  Called on `[params, data_loc, data_scale]`: `params` [..., params_size]
  from the decoder network and the per-feature standardisation
  `data_loc`, `data_scale` [event_size] (zeros and ones when the model
  was not adapted). Subclasses define `params_size`,
  `_standard_parameters` and `_family`.

  Args:
    event_size: Python int, number of features D.
    scale_floor: Python float, smallest scale in standardised units.
      Default value: `1e-3`.
    **kwargs: forwarded to `tf_keras.layers.Layer`.
  """

  # Name used by `make_likelihood` and `VAE(likelihood=...)`.
  family_name = None

  def __init__(self, event_size, scale_floor=1e-3, **kwargs):
    if int(event_size) < 1:
      raise ValueError(f"event_size must be a positive integer, got {event_size!r}")
    if not scale_floor > 0:
      raise ValueError(f"scale_floor must be > 0, got {scale_floor!r}")
    self.event_size = int(event_size)
    self.scale_floor = float(scale_floor)
    super().__init__(
        make_distribution_fn=self._make_distribution,
        convert_to_tensor_fn=tfd.Distribution.mean,
        **kwargs)

  @staticmethod
  def params_size(event_size):
    raise NotImplementedError

  def _standard_parameters(self, params):
    """Returns the family's parameters for standardised data, as a dict."""
    raise NotImplementedError

  @staticmethod
  def _family(parameters):
    """Builds the scalar TFP distribution from `distribution_parameters`."""
    raise NotImplementedError

  @staticmethod
  def moments(parameters):
    """Mean and standard deviation from `distribution_parameters`, TF ops only.

    Args:
      parameters: dict from `distribution_parameters`.

    Returns:
      (mean, stddev), each [..., event_size].
    """
    raise NotImplementedError

  def distribution_parameters(self, params, data_loc, data_scale):
    """Maps decoder outputs to the family's parameters in data units.

    Args:
      params: float Tensor [..., params_size(event_size)].
      data_loc: float Tensor [event_size].
      data_scale: float Tensor [event_size], positive.

    Returns:
      dict of Tensors [..., event_size]: `loc`, `scale` and any further
      family parameters (`df` for Student's t).
    """
    parameters = self._standard_parameters(tf.convert_to_tensor(params))
    parameters["loc"] = data_loc + data_scale * parameters["loc"]
    parameters["scale"] = data_scale * parameters["scale"]
    return parameters

  def _make_distribution(self, inputs):
    params, data_loc, data_scale = inputs
    return tfd.Independent(
        self._family(self.distribution_parameters(params, data_loc, data_scale)),
        reinterpreted_batch_ndims=1)

  def get_config(self):
    config = tf_keras.layers.Layer.get_config(self)
    config.update(event_size=self.event_size, scale_floor=self.scale_floor)
    return config

  @classmethod
  def from_config(cls, config):
    return cls(**config)


class _NormalMoments:
  """Mixin: Normal parameters are already the mean and the stddev."""

  @staticmethod
  def _family(parameters):
    return tfd.Normal(loc=parameters["loc"], scale=parameters["scale"])

  @staticmethod
  def moments(parameters):
    return parameters["loc"], parameters["scale"]


class GaussianLikelihood(_NormalMoments, LikelihoodHead):
  """Diagonal Normal with mean(z) and a softplus scale(z) per feature.

  Heteroscedastic: the scale is an output of the decoder network.
  Input `[loc, raw_scale]` [..., 2 * event_size].
  """

  family_name = "gaussian"

  @staticmethod
  def params_size(event_size):
    return 2 * int(event_size)

  def _standard_parameters(self, params):
    loc, raw_scale = tf.split(params, 2, axis=-1)
    return {"loc": loc, "scale": floored_softplus(raw_scale, self.scale_floor)}


class _SharedScaleMixin:
  """A per-feature raw scale weight that does not depend on z."""

  def build(self, input_shape):
    self.raw_scale = self.add_weight(
        name="raw_scale",
        shape=[self.event_size],
        initializer=tf_keras.initializers.Constant(_SOFTPLUS_ONE),
        trainable=True)
    super().build(input_shape)

  @staticmethod
  def params_size(event_size):
    return int(event_size)

  def _shared_scale(self, loc):
    return tf.broadcast_to(
        floored_softplus(self.raw_scale, self.scale_floor), tf.shape(loc))


class SharedScaleGaussianLikelihood(_SharedScaleMixin, _NormalMoments,
                                    LikelihoodHead):
  """Normal with mean(z) and a learned per-feature scale independent of z.

  The calibrated decoder of Rybkin et al. (2021), "Simple and Effective VAE
  Training with Calibrated Decoders" (sigma-VAE). Input: loc [..., event_size].
  """

  family_name = "gaussian_shared"

  def _standard_parameters(self, params):
    return {"loc": params, "scale": self._shared_scale(params)}


class LaplaceLikelihood(LikelihoodHead):
  """Diagonal Laplace with loc(z) and a softplus scale(z) per feature.

  Heavier tails than the Normal; its NLL is an L1 reconstruction error with
  a learned per-feature scale. Input `[loc, raw_scale]` [..., 2 * event_size].
  """

  family_name = "laplace"

  @staticmethod
  def params_size(event_size):
    return 2 * int(event_size)

  def _standard_parameters(self, params):
    loc, raw_scale = tf.split(params, 2, axis=-1)
    return {"loc": loc, "scale": floored_softplus(raw_scale, self.scale_floor)}

  @staticmethod
  def _family(parameters):
    return tfd.Laplace(loc=parameters["loc"], scale=parameters["scale"])

  @staticmethod
  def moments(parameters):
    return parameters["loc"], math.sqrt(2.0) * parameters["scale"]


class StudentTLikelihood(LikelihoodHead):
  """Diagonal Student's t with loc(z), scale(z) and learned per-feature df.

  The degrees of freedom are `min_df + softplus(raw_df)` with `min_df > 2`,
  so the mean and the standard deviation always exist.
  Input `[loc, raw_scale]` [..., 2 * event_size].

  Args:
    event_size: Python int, number of features D.
    scale_floor: Python float, smallest scale in standardised units.
      Default value: `1e-3`.
    min_df: Python float > 2, the smallest degrees of freedom.
      Default value: `2.1`.
    **kwargs: forwarded to `tf_keras.layers.Layer`.
  """

  family_name = "student_t"

  def __init__(self, event_size, scale_floor=1e-3, min_df=2.1, **kwargs):
    if not min_df > 2:
      raise ValueError(
          f"min_df must be > 2 so that the stddev exists, got {min_df!r}")
    self.min_df = float(min_df)
    super().__init__(event_size, scale_floor=scale_floor, **kwargs)

  def build(self, input_shape):
    # Start at df = min_df + 5, a moderately heavy tail.
    self.raw_df = self.add_weight(
        name="raw_df",
        shape=[self.event_size],
        initializer=tf_keras.initializers.Constant(math.log(math.expm1(5.0))),
        trainable=True)
    super().build(input_shape)

  @staticmethod
  def params_size(event_size):
    return 2 * int(event_size)

  def _standard_parameters(self, params):
    loc, raw_scale = tf.split(params, 2, axis=-1)
    df = tf.broadcast_to(floored_softplus(self.raw_df, self.min_df), tf.shape(loc))
    return {
        "loc": loc,
        "scale": floored_softplus(raw_scale, self.scale_floor),
        "df": df,
    }

  @staticmethod
  def _family(parameters):
    return tfd.StudentT(
        df=parameters["df"], loc=parameters["loc"], scale=parameters["scale"])

  @staticmethod
  def moments(parameters):
    df = parameters["df"]
    return parameters["loc"], parameters["scale"] * tf.sqrt(df / (df - 2.0))

  def get_config(self):
    config = super().get_config()
    config.update(min_df=self.min_df)
    return config


class FixedScaleGaussianLikelihood(_NormalMoments, LikelihoodHead):
  """Normal with mean(z) and the fixed scale implied by `MSE + 1e-4 * KL`.

  The original snippet minimised `mean((x - mu)**2) + 1e-4 * KL`, the mean
  taken over the D features. Multiplying by `1 / (1e-4 * D)` gives
  `sum((x - mu)**2) / (1e-4 * D) + KL`, which is the negative ELBO of a
  Gaussian decoder with the fixed variance `sigma**2 = 1e-4 * D / 2` (plus a
  constant). Training this head with the usual negative ELBO therefore
  follows the snippet's objective exactly, while every reported number is an
  honest log-likelihood in nats. Input: loc [..., event_size].

  Args:
    event_size: Python int, number of features D.
    scale_floor: unused except for config compatibility; the scale is fixed.
      Default value: `1e-3`.
    kl_weight: Python float, the snippet's KL weight.
      Default value: `1e-4`.
    **kwargs: forwarded to `tf_keras.layers.Layer`.
  """

  family_name = "mse"

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

  def _standard_parameters(self, params):
    return {"loc": params, "scale": tf.fill(tf.shape(params), self.fixed_scale)}

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
    family: one of `LIKELIHOODS`: "gaussian", "gaussian_shared", "laplace",
      "student_t", "mse".
    event_size: Python int, number of features D.
    scale_floor: Python float, smallest scale in standardised units.
    **kwargs: forwarded to the head's constructor.

  Returns:
    A `LikelihoodHead`.

  Raises:
    ValueError: if `family` is not a registered family.
  """
  if family not in LIKELIHOODS:
    raise ValueError(
        f"unknown likelihood {family!r}; expected one of {sorted(LIKELIHOODS)}")
  return LIKELIHOODS[family](event_size, scale_floor=scale_floor, **kwargs)
