"""The standardisation layer: float64 statistics inside the model.

The encoder sees `(w - loc) / scale` and the decoder's distribution is
mapped back with `w = loc + scale * u`, where w is the column's working
value: x itself, or log x for a `positive` column (whose statistics, atoms
and range are then those of log x; `to_working`, `from_working`). The
subtraction happens in float64, so a column like `1e6 + N(0, 0.01)` or Unix
seconds (1.7e9) keeps its variation; only the standardised values, of order one, are cast to float32
for the networks. The statistics come from `tfvae.statistics`.
"""

import math

import numpy as np
import tensorflow as tf
import tf_keras

from tfvae import heads

# Standardised values beyond this magnitude are clipped before the encoder
# (they are a million robust standard deviations out: fill values, not
# data); the likelihood always sees the exact value.
ENCODER_INPUT_LIMIT = 1e6
# A value within this fraction of an atom of a column without a resolution
# is that atom: the float32 rounding of a float64 value (half an ulp, 6e-8).
ATOM_RELATIVE_TOLERANCE = 1e-7


@tf_keras.saving.register_keras_serializable(package="tfvae")
class Standardization(tf_keras.layers.Layer):
  """Holds per-feature `loc` and `scale` (float64) and standardises x.

  Starts as the identity (loc 0, scale 1, `adapted` False); `VAE.adapt`
  sets the statistics.

  A categorical column (`num_levels` > 0) holds level codes 0 .. L - 1:
  its loc stays 0 and its scale 1, and its atoms are its levels.

  Args:
    input_dim: Python int, number of features D.
    num_atoms: Python int, atom slots per column.
    num_levels: optional sequence of D ints: a categorical column's number
      of levels, 0 for a real column. Default: every column real.
    **kwargs: forwarded to `tf_keras.layers.Layer`.
  """

  def __init__(self, input_dim, num_atoms=0, num_levels=None, **kwargs):
    kwargs["dtype"] = "float64"  # the layer computes in float64
    super().__init__(**kwargs)
    self.input_dim = int(input_dim)
    self.num_atoms = int(num_atoms)
    self.num_levels = (tuple(int(n) for n in num_levels) if num_levels
                       else (0,) * self.input_dim)
    if len(self.num_levels) != self.input_dim or (
        max(self.num_levels) > self.num_atoms):
      raise ValueError(
          f"num_levels must give {self.input_dim} counts of at most "
          f"num_atoms={self.num_atoms}, got {num_levels!r}")
    self.loc = self.add_weight(
        name="loc", shape=[self.input_dim], dtype=tf.float64,
        initializer="zeros", trainable=False)
    self.scale = self.add_weight(
        name="scale", shape=[self.input_dim], dtype=tf.float64,
        initializer="ones", trainable=False)
    self.adapted = self.add_weight(
        name="adapted", shape=[], dtype=tf.bool, initializer="zeros",
        trainable=False)
    # Each column's atoms in data units (`tfvae.statistics.compute_atoms`),
    # NaN where it has fewer than `num_atoms`.
    self.atoms = self.add_weight(
        name="atoms", shape=[self.input_dim, self.num_atoms], dtype=tf.float64,
        initializer=tf_keras.initializers.Constant(float("nan")),
        trainable=False)
    # Each column's recording resolution in data units
    # (`tfvae.statistics.compute_resolution`), 0 where it has none; a
    # positive column's too (the grid of x, not of log x).
    self.resolution = self.add_weight(
        name="resolution", shape=[self.input_dim], dtype=tf.float64,
        initializer="zeros", trainable=False)
    # Each column's smallest and largest training value in data units
    # (-inf and inf: unknown, as in models saved before they were kept).
    self.lower = self.add_weight(
        name="lower", shape=[self.input_dim], dtype=tf.float64,
        initializer=tf_keras.initializers.Constant(-float("inf")),
        trainable=False)
    self.upper = self.add_weight(
        name="upper", shape=[self.input_dim], dtype=tf.float64,
        initializer=tf_keras.initializers.Constant(float("inf")),
        trainable=False)
    self.set_column_types(None)

  def set_column_types(self, column_types):
    """Which columns are `positive` (worked on as log x) and `count`
    (integers, rounded on the way out): `column_types` D strings, or None
    for none."""
    kinds = np.asarray(column_types if column_types is not None
                       else ["real"] * self.input_dim)
    self.positive_mask = kinds == "positive"
    self.count_mask = kinds == "count"

  @property
  def has_positive(self):
    return bool(self.positive_mask.any())

  @property
  def has_count(self):
    return bool(self.count_mask.any())

  def to_working(self, x):
    """x [..., D] (float64 Tensor) -> the working values: log x in
    positive columns (-inf where x <= 0: no density there), x elsewhere;
    NaN stays NaN."""
    if not self.has_positive:
      return x
    safe = tf.where(x > 0, x, tf.ones([], tf.float64))
    logged = tf.where(x > 0, tf.math.log(safe),
                      tf.constant(-float("inf"), tf.float64))
    positive = tf.logical_and(tf.constant(self.positive_mask),
                              tf.logical_not(tf.math.is_nan(x)))
    return tf.where(positive, logged, x)

  def impossible(self, x):
    """Which rows of x [N, D] (numpy, data units) hold a value their
    column's type rules out: <= 0 in a positive column, a negative or
    fractional value in a count column. bool [N]."""
    x = np.asarray(x, np.float64)
    with np.errstate(invalid="ignore"):
      bad = (self.positive_mask & (x <= 0)) | (self.count_mask & (
          (x < 0) | (x != np.round(x))))
    return (bad & ~np.isnan(x)).any(axis=1)

  def from_working(self, w):
    """Working values [..., D] (float64 Tensor) -> data units: exp in
    positive columns, counts rounded to integers >= 0."""
    if self.has_positive:
      w = tf.where(tf.constant(self.positive_mask), tf.exp(w), w)
    if self.has_count:
      w = tf.where(tf.constant(self.count_mask),
                   tf.maximum(tf.round(w), 0.0) + 0.0, w)
    return w

  def working_log_jacobian(self, u):
    """log |dw/dx| per value [..., D] for standardised values u (float64):
    -log x = -w in positive columns, 0 elsewhere."""
    if not self.has_positive:
      return tf.zeros_like(u)
    w = self.loc + self.scale * u
    # x <= 0 has no density (w = -inf): its log-density is -inf already.
    return tf.where(tf.logical_and(tf.constant(self.positive_mask),
                                   tf.math.is_finite(w)), -w, tf.zeros_like(w))

  def count_parameters(self):
    """A count column's bin in standardised units, float64 [D] each:
    `count_half_width`, half of one unit (0 in other columns), and
    `count_zero_edge`, the edge between the bins of 0 and 1."""
    count = tf.constant(self.count_mask)
    return {"count_half_width": tf.where(count, 0.5 / self.scale, 0.0),
            "count_zero_edge": tf.where(count, (0.5 - self.loc) / self.scale,
                                        0.0)}

  def set_statistics(self, loc, scale, atoms=None, resolution=None,
                     value_range=None):
    """Sets the statistics: loc, scale [input_dim] (scale > 0), the atoms
    [input_dim, num_atoms] (NaN: none), the resolution [input_dim] and the
    range (lower [input_dim], upper [input_dim])."""
    self.loc.assign(tf.cast(loc, tf.float64))
    self.scale.assign(tf.cast(scale, tf.float64))
    if atoms is not None:
      self.atoms.assign(tf.cast(atoms, tf.float64))
    if resolution is not None:
      self.resolution.assign(tf.cast(resolution, tf.float64))
    if value_range is not None:
      self.lower.assign(tf.cast(value_range[0], tf.float64))
      self.upper.assign(tf.cast(value_range[1], tf.float64))
    self.adapted.assign(True)

  def scale_floor(self, floor, dtype=tf.float32):
    """The smallest scale per column in standardised units, [input_dim]:
    `floor`, or the column's resolution over sqrt(2 pi) if more, so that no
    density exceeds about one over the resolution (a Normal of that scale
    peaks at exactly 1 / resolution)."""
    resolution = self.resolution / (self.scale * math.sqrt(2.0 * math.pi))
    if self.has_positive:  # on the log scale a grid's step is not one width
      resolution = tf.where(self.positive_mask, tf.zeros_like(resolution),
                            resolution)
    return tf.cast(tf.maximum(resolution, floor), dtype)

  def load_own_variables(self, store):
    """Loads the variables; a model saved before the resolution existed
    (four variables) gets resolution 0, and one saved before the range
    (five) an unknown range: each computes what it did."""
    variables = (self.loc, self.scale, self.adapted, self.atoms,
                 self.resolution, self.lower, self.upper)
    count = len(store.keys())
    if count not in (4, 5):
      return super().load_own_variables(store)
    for index, variable in enumerate(variables[:count]):
      variable.assign(store[f"{index}"])
    if count == 4:
      self.resolution.assign(tf.zeros_like(self.resolution))
    self.lower.assign(tf.fill([self.input_dim],
                              tf.constant(-float("inf"), tf.float64)))
    self.upper.assign(tf.fill([self.input_dim],
                              tf.constant(float("inf"), tf.float64)))

  def atom_tolerance(self):
    """How far from an atom a value still counts as that atom, data units,
    float64 [input_dim, num_atoms]: half the column's resolution (the
    atom's bin), or else float32 rounding of the atom (a value parsed
    as float32 still matches the float64 atom)."""
    atoms = tf.where(tf.math.is_nan(self.atoms), tf.zeros([], tf.float64),
                     self.atoms)
    half_bin = 0.5 * self.resolution[:, None]
    if self.has_positive:
      # A positive column's atoms are log x: half its bin, r / 2, is
      # r / (2 x) there (to first order).
      half_bin = tf.where(self.positive_mask[:, None],
                          half_bin * tf.exp(-atoms), half_bin)
    return tf.maximum(half_bin,
                      ATOM_RELATIVE_TOLERANCE * tf.maximum(
                          tf.abs(atoms), 1e-6 * self.scale[:, None]))

  def atom_parameters(self, standardized):
    """The atoms' places and tolerances, [input_dim, num_atoms] each: in
    standardised units (float64) or in data units. NaN places: no such
    atom."""
    tolerance = self.atom_tolerance()
    if standardized:
      parameters = {
          "atom_loc": (self.atoms - self.loc[:, None]) / self.scale[:, None],
          "atom_tolerance": tolerance / self.scale[:, None]}
    else:
      parameters = {"atom_loc": tf.convert_to_tensor(self.atoms),
                    "atom_tolerance": tolerance}
    if self.has_categories:
      parameters["atom_only"] = tf.constant(self.categorical_mask)
    return parameters

  @property
  def has_categories(self):
    """Whether any column is categorical."""
    return any(self.num_levels)

  @property
  def categorical_mask(self):
    """numpy bool [input_dim]: True for the categorical columns."""
    return np.asarray(self.num_levels) > 0

  def atom_index(self, u):
    """Which atom each standardised value u [..., input_dim] (float64)
    sits at: int32, 0 for none, j for the j-th atom (1-based)."""
    standard = self.atom_parameters(standardized=True)
    return heads.match_atoms(u, standard["atom_loc"], standard["atom_tolerance"])

  def call(self, x):
    """(w - loc) / scale in float64, x [..., input_dim] in data units, w
    its working value (`to_working`; NaN stays NaN)."""
    return (self.to_working(tf.cast(x, tf.float64)) - self.loc) / self.scale

  def log_scale(self):
    """log(scale) per feature, float64 [input_dim]: the log-Jacobian of the
    map from data units to standardised units."""
    return tf.math.log(self.scale)

  def get_config(self):
    config = super().get_config()
    config.pop("dtype", None)
    config.update(input_dim=self.input_dim, num_atoms=self.num_atoms)
    if self.has_categories:
      config.update(num_levels=list(self.num_levels))
    return config
