"""Generation: new rows x ~ p(x|z), z ~ p(z), in the data's units.

Rows are drawn in chunks of `CHUNK_ROWS`, chunk c from its own key (the
seed folded with c), so row i depends only on the seed and i: the first
ten rows of a million are the ten rows of `sample(10)`, and a file written
in chunks equals one array drawn at once.

"As recorded" (the default) gives rows that look like the training table:
each column's family is truncated to the column's training range (an
exact draw from p(x_j | z) restricted to [min, max], by inverse CDF; the
atoms lie inside the range), and values are rounded to the column's
recording resolution (`tfvae.statistics.compute_resolution`: whole numbers
stay whole, prices keep their cents). Without it, the model's own draws.
"""

import warnings

import numpy as np
import tensorflow as tf

from tfvae import keyed_random
from tfvae import validation
from tfvae.inference import levels

# Rows drawn per call of the decoder; also the unit of reproducibility.
CHUNK_ROWS = 65536


def chunk_seed(seed_pair, index):
  """The key of chunk `index`: chunk 0 uses the seed itself (so `sample`
  of one chunk draws what it always drew), later chunks fold their index
  in. int64 [2]."""
  if index == 0:
    return seed_pair
  return tf.random.experimental.stateless_fold_in(seed_pair, index)


def draw_rows(model, num_examples, seed_pair, as_recorded=True):
  """One chunk: float64 Tensor [num_examples, input_dim] from a key.

  Args:
    model: a `tfvae.VAE`.
    num_examples: int (or int32 scalar Tensor), rows to draw.
    seed_pair: int64 [2], the chunk's key.
    as_recorded: truncate to each column's range and round to its
      resolution.
  """
  latent_seed, data_seed = tf.unstack(
      tf.random.experimental.stateless_split(seed_pair, 2))
  z = tf.random.stateless_normal([num_examples, model.latent_dim],
                                 seed=latent_seed)
  # Row-major [N, 2, D]: row i's uniforms are the same whatever N is
  # (TensorFlow's stateless draws are consistent in their prefix).
  components, values = tf.unstack(tf.random.stateless_uniform(
      [num_examples, 2, model.input_dim], seed=data_seed, dtype=tf.float64),
      axis=1)
  return draw_given_z(model, z, components, values, as_recorded)


def draw_given_z(model, z, components, values, as_recorded=True,
                 calibrated_levels=False):
  """x ~ p(x|z) by inverse CDF, float64 [..., D], in data units.

  The one place where values are drawn from the decoder: `sample`,
  conditional generation and multiple imputation all come here.

  Args:
    model: a `tfvae.VAE`.
    z: float32 [..., latent_dim].
    components, values: float64 uniforms [..., D]: the first pick each
      value's mixture component (a value drawn at an atom is the atom
      itself), the second the family's quantile.
    as_recorded: truncate each column's family to its training range and
      round to its resolution.
    calibrated_levels: draw categorical columns from the level
      probabilities blended with their frequencies by the model's
      `level_calibration` (draws given observed cells: imputation), if it
      has one (`tfvae.inference.levels`).
  """
  parameters = model.data_likelihood_parameters(
      model.standard_likelihood_parameters(z))
  if calibrated_levels and getattr(model, "level_calibration",
                                   None) is not None:
    parameters = _calibrated_parameters(model, parameters)
  standardization = model.standardization
  if not as_recorded:
    return standardization.from_working(
        model.likelihood_head.draw(parameters, components, values))
  drawn = model.likelihood_head.draw(parameters, components, values,
                                     lower=standardization.lower,
                                     upper=standardization.upper)
  # Rounded in data units (a positive column's grid is one of x).
  return round_to_resolution(
      standardization.from_working(drawn), standardization.resolution,
      standardization.from_working(standardization.lower),
      standardization.from_working(standardization.upper))


def _calibrated_parameters(model, parameters):
  """The likelihood parameters with each categorical column's level
  probabilities w p(level | z) + (1 - w) f(level) (the blend of
  `tfvae.inference.levels`, per z: averaged over the posterior it is the
  blend of the posterior's probabilities)."""
  probabilities = model.likelihood_head.component_probabilities(
      parameters)  # [..., D, A + 1]
  slots = int(probabilities.shape[-1])
  weights, shares = levels.as_arrays(model.level_calibration, slots - 1)
  columns = [i for i, n in enumerate(model.num_levels) if n]
  every_weight = np.ones(model.input_dim)
  every_weight[columns] = weights
  every_share = np.zeros([model.input_dim, slots])
  every_share[columns, 1:] = shares
  blended = levels.blend(probabilities, every_weight, every_share)
  logits = parameters["atom_logits"]
  return {**parameters,
          "atom_logits": tf.cast(tf.math.log(blended), logits.dtype)}


def round_to_resolution(x, resolution, lower, upper):
  """x [..., D] rounded to each column's resolution [D] (0: none), kept
  within [lower, upper] [D] (a rounded value can step past a bound that is
  not itself on the grid). Tensors, float64."""
  has_grid = resolution > 0
  step = tf.where(has_grid, resolution, tf.ones_like(resolution))
  # + 0.0 turns a rounded -0.0 into 0.0 (no "-0" in a file).
  rounded = tf.where(has_grid, tf.round(x / step) * step, x) + 0.0
  return tf.clip_by_value(rounded, lower, upper)


def iter_samples(model, num_examples, seed=None, as_recorded=True):
  """Yields the rows of `sample` chunk by chunk, float64 numpy arrays
  [<= CHUNK_ROWS, input_dim], so that any number of rows needs the memory
  of one chunk."""
  num_examples = validation.check_positive_int(num_examples, "num_examples")
  validation.warn_if_untrained(model, "sampling")
  if as_recorded and model.is_adapted and not np.isfinite(
      model.standardization.lower.numpy()).any():
    warnings.warn(
        "this model was saved before tfvae kept each column's training range "
        "(tfvae < 0.4): its samples are not kept to the range",
        validation.DataWarning, stacklevel=3)
  seed_pair = keyed_random.seed_pair(seed)
  for index, start in enumerate(range(0, num_examples, CHUNK_ROWS)):
    count = min(CHUNK_ROWS, num_examples - start)
    yield model.sample_chunk(tf.constant(count, tf.int32),
                             chunk_seed(seed_pair, index),
                             as_recorded=as_recorded).numpy()


def sample(model, num_examples, seed=None, as_recorded=True):
  """Draws new rows x ~ p(x|z), z ~ p(z), in data units.

  Values drawn at a column's atom are the atom exactly.

  Args:
    model: a `tfvae.VAE`.
    num_examples: Python int.
    seed: optional int in [0, 2**63); the same seed gives the same draws,
      and row i the same value whatever `num_examples` is. None follows
      TensorFlow's global seed.
    as_recorded: True (default): within each column's training range and
      rounded to its resolution; False: the model's own draws.

  Returns:
    float64 numpy array [num_examples, input_dim].
  """
  return np.concatenate(list(iter_samples(model, num_examples, seed,
                                          as_recorded)), axis=0)
