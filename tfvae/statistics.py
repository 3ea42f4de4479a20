"""Per-feature standardisation statistics, in numpy (no TensorFlow).

`VAE.adapt` stores a location and a scale per feature so that the networks
see `(x - loc) / scale`. The statistics are robust (median and
interquartile range) so that a few gross errors do not squash the bulk of a
column, computed in float64 on the observed (non-NaN) values only.

`StreamingStatistics` computes the same statistics in one pass over data of
any size, from a bounded uniform reservoir sample of rows.
"""

import numpy as np

from tfvae import validation

# 1.349 is the interquartile range of the standard Normal: IQR / 1.349 equals
# the standard deviation for Gaussian data.
_IQR_OF_STANDARD_NORMAL = 1.3489795003921634

# The reservoir keeps at most this many rows, and at most this many values in
# all (so a 1,000-column table keeps 16,384 rows: 128 MiB). The median and
# quartiles of 16,384 draws have a standard error below 1% of the column's
# standard deviation, far below what standardisation needs.
RESERVOIR_ROWS = 131072
RESERVOIR_VALUES = 1 << 24


def compute_standardization(x):
  """Robust per-feature location and scale, from observed values only.

  The location is the median and the scale the interquartile range divided
  by 1.349 (the standard deviation for Gaussian data). Columns whose
  interquartile range is zero (mostly one value, e.g. binary) fall back to
  the standard deviation, and constant columns to 1. Spreads below float64
  resolution at the column's magnitude count as none.

  Args:
    x: float array [num_examples, input_dim]; NaN marks a missing value.

  Returns:
    (loc, scale): float64 arrays [input_dim], scale > 0.

  Raises:
    ValueError: a column has no observed value.
  """
  x = np.asarray(x, dtype=np.float64)
  validation.check_columns_observed(x, "adapt data")
  loc = np.nanmedian(x, axis=0)
  q25, q75 = np.nanpercentile(x, [25, 75], axis=0)
  scale = (q75 - q25) / _IQR_OF_STANDARD_NORMAL
  std = np.nanstd(x, axis=0)
  tiny = 64 * np.finfo(np.float64).eps * np.maximum(np.abs(loc), 1e-300)
  scale = np.where(scale > tiny, scale, np.where(std > tiny, std, 1.0))
  return loc, scale


class StreamingStatistics:
  """Standardisation statistics from one pass over blocks of rows.

  Keeps a uniform random sample of at most `capacity` rows (reservoir
  sampling, Vitter's algorithm R applied block-wise) plus exact counts of
  rows and of missing values per column. With fewer rows than the capacity
  the result equals `compute_standardization` on all rows.

  Args:
    width: number of features.
    seed: int, for the reservoir's choices.
    capacity: optional maximum rows kept; default `RESERVOIR_ROWS`, capped
      so the reservoir holds at most `RESERVOIR_VALUES` values.
  """

  def __init__(self, width, seed=0, capacity=None):
    self.width = int(width)
    self.capacity = int(capacity or max(
        1024, min(RESERVOIR_ROWS, RESERVOIR_VALUES // max(self.width, 1))))
    self._rng = np.random.default_rng(seed)
    self._reservoir = np.empty([self.capacity, self.width])
    self.num_rows = 0
    self.num_missing = np.zeros(self.width, np.int64)
    self._sum = np.zeros(self.width)
    self._sum_squares = np.zeros(self.width)
    self._lower = np.full(self.width, np.inf)
    self._upper = np.full(self.width, -np.inf)

  def update(self, block):
    """Adds a float array [rows, width] (NaN: missing) to the statistics."""
    block = np.asarray(block, np.float64)
    missing = np.isnan(block)
    self.num_missing += missing.sum(axis=0)
    observed = np.where(missing, 0.0, block)
    self._sum += observed.sum(axis=0)
    self._sum_squares += np.square(observed).sum(axis=0)
    if len(block):
      with np.errstate(invalid="ignore"):
        self._lower = np.fmin(self._lower, np.nanmin(
            np.where(missing, np.inf, block), axis=0))
        self._upper = np.fmax(self._upper, np.nanmax(
            np.where(missing, -np.inf, block), axis=0))
    free = self.capacity - min(self.num_rows, self.capacity)
    take = min(free, len(block))
    if take:
      start = self.num_rows
      self._reservoir[start:start + take] = block[:take]
    rest = block[take:]
    if len(rest):
      # Row number n (0-based, n >= capacity) replaces a uniformly chosen
      # slot with probability capacity / (n + 1).
      seen = self.num_rows + take + np.arange(len(rest))
      slots = (self._rng.random(len(rest)) * (seen + 1)).astype(np.int64)
      keep = slots < self.capacity
      # Later rows win where two rows of the block draw the same slot, as in
      # the row-by-row algorithm.
      self._reservoir[slots[keep]] = rest[keep]
    self.num_rows += len(block)

  @property
  def sample(self):
    """The reservoir: float64 [min(num_rows, capacity), width]."""
    return self._reservoir[:min(self.num_rows, self.capacity)]

  @property
  def value_range(self):
    """Exact (smallest, largest) observed value per column, float64 [width]
    each (inf and -inf for a column with none)."""
    return self._lower.copy(), self._upper.copy()

  @property
  def missing_fraction(self):
    """Exact fraction of missing values per column, float64 [width]."""
    return self.num_missing / max(self.num_rows, 1)

  def result(self):
    """(loc, scale) as `compute_standardization` gives them, float64 [width]."""
    if self.num_rows == 0:
      raise ValueError("adapt data: no rows")
    sample = self.sample
    validation.check_columns_observed(
        np.where(self.num_missing < self.num_rows, 0.0, np.nan)[None, :],
        "adapt data")
    # A column observed so rarely that the reservoir holds none of its values
    # falls back to its exact mean and standard deviation.
    unseen = np.isnan(sample).all(axis=0)
    loc, scale = compute_standardization(
        np.where(unseen, 0.0, sample) if unseen.any() else sample)
    if unseen.any():
      count = self.num_rows - self.num_missing
      mean = self._sum / np.maximum(count, 1)
      std = np.sqrt(np.maximum(
          self._sum_squares / np.maximum(count, 1) - mean**2, 0.0))
      loc = np.where(unseen, mean, loc)
      scale = np.where(unseen, np.where(std > 0, std, 1.0), scale)
    return loc, scale


# A value is an atom of its column when it holds at least this share of the
# observed values and at least ATOM_MIN_COUNT of them, and either the
# column is discrete (at most DISCRETE_LEVELS distinct values) or the value
# is a point mass rather than a step of the column's grid: it is held at
# least ATOM_MIN_EXCESS times as often as its neighbours (the two nearest
# distinct values on each side, on average), and more often than chance
# allows if it were one of them (Poisson counts: the Chernoff bound on the
# upper tail below ATOM_MAX_TAIL; five repeats among values seen once or
# twice in a small table are chance). Zeros of a zero-inflated column, a
# cap, heaped values (months 12, 24, 36) are atoms; the rounded ages 21,
# 22, 23 of a continuum are not (their probabilities are the family's over
# the resolution). A column is discrete when it has at most DISCRETE_LEVELS
# distinct values or sits on a grid too coarse for a density: a resolution
# of at least COARSE_GRID of its standard deviation (optical pixel counts
# 0..16, the codes of a questionnaire).
ATOM_MIN_FRACTION = 0.01
ATOM_MIN_COUNT = 5
ATOM_MIN_EXCESS = 2.0
ATOM_MAX_TAIL = 1e-3
DISCRETE_LEVELS = 16
COARSE_GRID = 0.2


def compute_statistics_of(x, width, seed=0, feature_names=None,
                          batch_size=65536, return_num_rows=False):
  """The standardisation statistics of the training data, however it comes.

  Args:
    x: an array [num_examples, width] (or a table with column names), a
      batched `tf.data.Dataset` of x, or a path to a data file; datasets
      and files are read in one streaming pass (statistics from a bounded
      reservoir sample, `StreamingStatistics`).
    width: the model's number of columns.
    seed: int, for the reservoir.
    feature_names: the model's column names, matched against a table's.
    batch_size: rows per block when reading a file.
    return_num_rows: also return the number of rows read.

  Returns:
    (loc [width], scale [width], rows [n, width], (lower [width],
    upper [width])): the statistics, the rows (all of them, or the
    reservoir) that atoms are found in, and each column's exact range;
    with `return_num_rows`, the number of rows read comes fifth.
  """
  from tfvae import data as data_lib  # pylint: disable=g-import-not-at-top
  if isinstance(x, (str, bytes)) or hasattr(x, "__fspath__"):
    blocks = (block for block, _ in data_lib.open_table(
        x, expected_width=width).iter_blocks(batch_size))
  elif hasattr(x, "element_spec"):  # a tf.data.Dataset
    validation.check_dataset(x, "adapt data", width)
    blocks = (validation.validate_array(
        (element[0] if isinstance(element, tuple) else element).numpy(),
        "adapt data", width) for element in x)
  else:
    rows = validation.validate_array(x, "adapt data", width,
                                     expected_names=feature_names)
    result = (*compute_standardization(rows), rows, compute_range(rows))
    return (*result, len(rows)) if return_num_rows else result
  stats = StreamingStatistics(width, seed=seed)
  for block in blocks:
    stats.update(block)
  result = (*stats.result(), stats.sample, stats.value_range)
  return (*result, stats.num_rows) if return_num_rows else result


def compute_range(x):
  """Each column's smallest and largest observed value (NaN: missing),
  float64 [width] each; inf and -inf for a column with none."""
  x = np.asarray(x, np.float64)
  missing = np.isnan(x)
  return (np.where(missing, np.inf, x).min(axis=0, initial=np.inf),
          np.where(missing, -np.inf, x).max(axis=0, initial=-np.inf))


# Decimal steps tried as a column's resolution, 10**k for k in this range;
# a column whose values are multiples of none of them (full-precision
# floats) has resolution 0: no resolution.
RESOLUTION_EXPONENTS = range(9, -13, -1)
# A value is a multiple of a step when value / step is within this (plus the
# float64 rounding of the division) of an integer: 0.3 / 0.1 is 2.9999...
_MULTIPLE_TOLERANCE = 1e-7
# Multiples beyond this count are not resolved by float64 any more.
_MAX_MULTIPLE = 1e12


def compute_resolution(x):
  """Each column's recording resolution: the largest decimal step 10**k of
  which every observed value is a multiple (1 for integers, 0.01 for
  values written with two decimals, 0 when there is none).

  A value recorded at resolution r stands for the interval of width r
  around it: the family's density of such a value is at most about 1 / r
  (`preprocessing.Standardization.scale_floor`), a value within r / 2 of
  an atom is that atom, and the "dequantized" basis spreads an atom's
  probability over r.

  Args:
    x: float array [num_examples, input_dim]; NaN marks a missing value.

  Returns:
    float64 array [input_dim], 0 where a column has fewer than two distinct
    values or no decimal step.
  """
  x = np.asarray(x, dtype=np.float64)
  resolution = np.zeros(x.shape[1])
  for column in range(x.shape[1]):
    values = np.unique(x[:, column][np.isfinite(x[:, column])])
    if len(values) < 2:
      continue
    largest = np.abs(values).max()
    # A step is at most the smallest gap and the smallest non-zero value.
    bound = min(np.diff(values).min(), np.abs(values[values != 0]).min())
    for exponent in RESOLUTION_EXPONENTS:
      step = 10.0**exponent
      if step - bound > 1e-6 * step + 1e-15 * largest:  # rounding aside
        continue
      if largest / step > _MAX_MULTIPLE:
        break
      ratio = values / step
      error = np.abs(ratio - np.round(ratio))
      if (error <= _MULTIPLE_TOLERANCE + 1e-15 * np.abs(ratio)).all():
        resolution[column] = step
        break
  return resolution


def compute_atoms(x, num_atoms, min_fraction=ATOM_MIN_FRACTION,
                  min_count=ATOM_MIN_COUNT, min_separation=None,
                  min_excess=ATOM_MIN_EXCESS, coarse=None):
  """The values each column holds many times, most frequent first.

  Args:
    x: float array [num_examples, input_dim]; NaN marks a missing value.
    num_atoms: the most atoms kept per column, A.
    min_fraction: the least share of a column's observed values.
    min_count: the least number of repeats.
    min_excess: in a column that is not discrete (more than
      `DISCRETE_LEVELS` distinct values, not `coarse`), the least ratio of
      a value's count to its neighbours' mean count (`stands_out`).
    coarse: optional bool array [input_dim]: columns on a grid too coarse
      for a density (`is_coarse_grid`), discrete whatever their number of
      distinct values.
    min_separation: optional per-column array [input_dim]: atoms closer than
      this are merged into the commoner one (`VAE.find_atoms`: 40 scale
      floors, or the column's resolution if more).

  Returns:
    (atoms, frequencies): float64 arrays [input_dim, A], NaN (atoms) and 0
    (frequencies) where a column has fewer than A atoms.
  """
  x = np.asarray(x, dtype=np.float64)
  separations = (np.zeros(x.shape[1]) if min_separation is None
                 else np.broadcast_to(min_separation, [x.shape[1]]))
  coarse = (np.zeros(x.shape[1], bool) if coarse is None
            else np.broadcast_to(coarse, [x.shape[1]]))
  atoms = np.full([x.shape[1], num_atoms], np.nan)
  frequencies = np.zeros([x.shape[1], num_atoms])
  if num_atoms == 0:
    return atoms, frequencies
  for column in range(x.shape[1]):
    min_separation = separations[column]
    values = x[:, column]
    values = values[~np.isnan(values)]
    if not len(values):
      continue
    unique, counts = np.unique(values, return_counts=True)
    keep = (counts >= min_count) & (counts >= min_fraction * len(values))
    if len(unique) > DISCRETE_LEVELS and not coarse[column]:
      keep &= stands_out(counts, min_excess)
    chosen = []
    for index in np.flatnonzero(keep)[np.argsort(-counts[keep],
                                                 kind="stable")]:
      # Atoms closer than `min_separation` are one: keep the commoner.
      if all(abs(unique[index] - unique[other]) >= min_separation
             for other in chosen):
        chosen.append(index)
      if len(chosen) == num_atoms:
        break
    atoms[column, :len(chosen)] = unique[chosen]
    frequencies[column, :len(chosen)] = counts[chosen] / len(values)
  return atoms, frequencies


def is_coarse_grid(resolution, scale):
  """Which columns sit on a grid too coarse for a density, bool [D]: a
  resolution of at least `COARSE_GRID` of the column's scale (at most five
  steps per standard deviation).

  Args:
    resolution: [D] (`compute_resolution`; 0: none).
    scale: [D] > 0 (`compute_standardization`).
  """
  return np.asarray(resolution) >= COARSE_GRID * np.asarray(scale)


def neighbour_counts(counts):
  """The mean count of each distinct value's neighbours (the two nearest
  distinct values on each side; at least 1), float64 [U].

  Args:
    counts: int array [U], the counts of a column's sorted distinct values.
  """
  counts = np.asarray(counts, np.float64)
  padded = np.concatenate([[np.nan, np.nan], counts, [np.nan, np.nan]])
  neighbours = np.stack([padded[offset:offset + len(counts)]
                         for offset in (0, 1, 3, 4)])
  return np.maximum(np.nan_to_num(np.nanmean(neighbours, axis=0), nan=1.0),
                    1.0)


def stands_out(counts, min_excess=ATOM_MIN_EXCESS, max_tail=ATOM_MAX_TAIL):
  """Which distinct values are point masses, bool [U]: held at least
  `min_excess` times as often as their neighbours (`neighbour_counts`),
  with a Poisson upper tail below `max_tail` were their mean count the
  neighbours' (the Chernoff bound exp(-m) (e m / c)**c for a count c above
  the mean m).

  Args:
    counts: int array [U], the counts of a column's sorted distinct values.
  """
  counts = np.asarray(counts, np.float64)
  expected = neighbour_counts(counts)
  log_tail = -expected + counts * (1.0 + np.log(expected) - np.log(counts))
  return (counts >= min_excess * expected) & (log_tail < np.log(max_tail))


def most_atoms(atoms):
  """The most atoms any column holds, of atoms [input_dim, A] (NaN: none)."""
  atoms = np.asarray(atoms, np.float64)
  return int(np.max(np.sum(np.isfinite(atoms), axis=1), initial=0))


def compute_atom_logits(atom_frequencies):
  """The decoder's starting mixture logits from the atoms' frequencies.

  Args:
    atom_frequencies: [D, A], the share of rows at each atom (0 where a
      column has fewer atoms).

  Returns:
    float64 [D, A + 1]: log of the continuous share (at least 1e-3) then of
    each atom's (at least 1e-6).
  """
  frequencies = np.asarray(atom_frequencies, np.float64)
  continuous = np.maximum(1.0 - frequencies.sum(axis=1, keepdims=True), 1e-3)
  return np.log(np.concatenate([continuous, np.maximum(frequencies, 1e-6)],
                               axis=1))
