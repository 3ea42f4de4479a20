"""Training / validation splits by a hash of the row index: the same rule
in memory and streamed, whatever the block sizes. No TensorFlow."""

import numpy as np

from tfvae import validation

def _row_uniforms(rows, seed):
  """A fixed pseudo-random number in [0, 1) per row index (splitmix64).

  The same row gets the same number in every pass over the file, whether
  the table is in memory or streamed, so a split made from it is stable.
  """
  with np.errstate(over="ignore"):
    z = (np.asarray(rows, np.uint64) + np.uint64(seed) * np.uint64(
        0x9E3779B97F4A7C15) + np.uint64(0x632BE59BD9B4E019))
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    z = z ^ (z >> np.uint64(31))
  return (z >> np.uint64(11)).astype(np.float64) / float(1 << 53)


def validation_rows(rows, validation_fraction, seed=0):
  """Which rows belong to the validation split: a boolean per row index.

  Args:
    rows: int array of 0-based data-row indices.
    validation_fraction: float in [0, 1).
    seed: int.

  Returns:
    bool array shaped like `rows`.
  """
  return _row_uniforms(rows, seed) < validation_fraction


def split(x, validation_fraction, seed=0):
  """Splits rows into training and validation arrays, in file order.

  Row i goes to validation when `validation_rows(i)`: the same rule as the
  streamed readers use, so a file gets the same split in memory or
  streamed. At least one row goes each way when the fraction is positive.

  Args:
    x: array [N, D].
    validation_fraction: float in [0, 1).
    seed: int.

  Returns:
    (x_train, x_validation).
  """
  validation_fraction = validation.check_fraction(validation_fraction,
                                                 "validation_fraction")
  if validation_fraction == 0:
    return x, x[:0]
  is_validation = validation_rows(np.arange(len(x)), validation_fraction, seed)
  if len(x) >= 2 and not is_validation.any():
    is_validation[int(np.argmin(_row_uniforms(np.arange(len(x)), seed)))] = True
  if is_validation.all():
    is_validation[int(np.argmax(_row_uniforms(np.arange(len(x)), seed)))] = False
  return x[~is_validation], x[is_validation]
