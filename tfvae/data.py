"""Reading and validating real-valued tables; `tf.data` pipelines.

Every reader returns float32 arrays [num_examples, num_features] and raises
`ValueError` naming the file, the row and the column of the first problem.
Rows are counted as lines of the file (1-based, the header included), so a
reported row can be opened in an editor. NumPy files are read with
`allow_pickle=False`: a data file never runs code.

The embedded default is the UCI Wine recognition data (178 examples, 13
real-valued features on very different scales), shipped as
`tfvae/datasets/wine.csv`.
"""

import csv
import dataclasses
import importlib.resources
import math
import os

import numpy as np

_FLOAT32_MAX = float(np.finfo(np.float32).max)


@dataclasses.dataclass(frozen=True)
class Table:
  """A validated data table.

  Attributes:
    values: float32 array [num_examples, num_features], all finite.
    feature_names: tuple of column names, or None when the file had no
      header.
    source: where the table came from, for messages.
  """

  values: np.ndarray
  feature_names: tuple = None
  source: str = "data"


def _parse_number(text):
  """Returns float(text), or None when `text` is not a number."""
  try:
    return float(text)
  except ValueError:
    return None


def _column_label(index, feature_names):
  """A column as users see it: its header name, else its 1-based number."""
  if feature_names is not None and index < len(feature_names):
    return f"column {index + 1} ({feature_names[index]!r})"
  return f"column {index + 1}"


def _check_finite_value(value, text, source, line, index, feature_names):
  if not math.isfinite(value) or abs(value) > _FLOAT32_MAX:
    what = "NaN" if math.isnan(value) else "infinite (in float32)"
    raise ValueError(
        f"{source} row {line}, {_column_label(index, feature_names)}: "
        f"{text.strip()!r} is {what}; tfvae needs finite values "
        "(drop or impute missing values first)")


class _CsvRows:
  """Iterates over a CSV file's data rows as validated float lists.

  The header is detected on the first non-empty row: it is a header when
  none of its cells is a number.
  """

  def __init__(self, path, expected_width=None):
    self.path = os.fspath(path)
    self.expected_width = expected_width
    self.feature_names = None
    self.width = None

  def __iter__(self):
    with open(self.path, newline="", encoding="utf-8-sig") as f:
      reader = csv.reader(f)
      for row in reader:
        line = reader.line_num
        if not row or all(not cell.strip() for cell in row):
          continue  # blank lines carry no data
        if self.width is None:
          self.width = len(row)
          if all(_parse_number(cell) is None for cell in row):
            self.feature_names = tuple(cell.strip() for cell in row)
            self._check_expected_width(line)
            continue
          self._check_expected_width(line)
        yield self._parse_row(row, line)

  def _check_expected_width(self, line):
    if self.expected_width is not None and self.width != self.expected_width:
      raise ValueError(
          f"{self.path} row {line}: {self.width} columns, but the model "
          f"expects {self.expected_width}")

  def _parse_row(self, row, line):
    if len(row) != self.width:
      raise ValueError(
          f"{self.path} row {line}: {len(row)} columns, expected {self.width} "
          "(the width of the first row)")
    values = []
    for index, cell in enumerate(row):
      value = _parse_number(cell)
      if value is None:
        shown = repr(cell) if cell.strip() else "an empty cell"
        raise ValueError(
            f"{self.path} row {line}, "
            f"{_column_label(index, self.feature_names)}: {shown} is not a number")
      _check_finite_value(value, cell, self.path, line, index, self.feature_names)
      values.append(value)
    return values


def _check_file(path):
  path = os.fspath(path)
  if not os.path.exists(path):
    raise ValueError(f"{path}: no such file")
  if os.path.isdir(path):
    raise ValueError(f"{path}: is a directory, expected a .csv or .npy file")
  if os.path.getsize(path) == 0:
    raise ValueError(f"{path}: the file is empty")
  return path


def _read_csv(path, expected_width):
  rows = _CsvRows(path, expected_width)
  values = list(rows)
  if not values:
    raise ValueError(f"{path}: no data rows (only a header or blank lines)")
  return Table(np.asarray(values, dtype=np.float32), rows.feature_names, path)


def _read_npy(path, expected_width):
  try:
    array = np.load(path, allow_pickle=False)
  except ValueError as error:
    raise ValueError(
        f"{path}: cannot read as a NumPy array without pickle ({error}); "
        "save a plain numeric array") from None
  except OSError as error:
    raise ValueError(f"{path}: not a valid .npy file ({error})") from None
  return Table(validate_array(array, path, expected_width), None, path)


def read_table(path, expected_width=None):
  """Reads a `.csv` or `.npy` file into a validated `Table`.

  CSV: comma-separated, an optional header row (kept as feature names),
  blank lines skipped. NPY: a numeric array [num_examples, num_features],
  loaded with `allow_pickle=False`.

  Args:
    path: path to the file.
    expected_width: optional int; when given, a table of another width is
      an error (use it to check data against a trained model).

  Returns:
    A `Table` of float32 values.

  Raises:
    ValueError: the file is missing or empty, has a non-numeric cell, rows
      of different lengths, NaN or infinite values, or the wrong width.
  """
  path = _check_file(path)
  extension = os.path.splitext(path)[1].lower()
  if extension == ".npy":
    return _read_npy(path, expected_width)
  if extension in (".csv", ".txt"):
    return _read_csv(path, expected_width)
  raise ValueError(f"{path}: unsupported file type {extension!r}; "
                   "expected .csv or .npy")


def load(path, expected_width=None):
  """Reads a `.csv` or `.npy` file into a float32 array [N, D].

  See `read_table`; this drops the feature names.
  """
  return read_table(path, expected_width).values


def iter_batches(path, batch_size, expected_width=None):
  """Streams a data file in validated float32 batches [<= batch_size, D].

  CSV files are read row by row, so files larger than memory work; NumPy
  files are memory-mapped. Errors are raised as in `read_table`, naming the
  row where they occur.

  Args:
    path: path to a `.csv` or `.npy` file.
    batch_size: Python int, rows per batch.
    expected_width: optional int, the width the model expects.

  Yields:
    (values, feature_names): float32 array [rows, D] and the header names
    (or None).
  """
  path = _check_file(path)
  if os.path.splitext(path)[1].lower() == ".npy":
    try:
      array = np.load(path, allow_pickle=False, mmap_mode="r")
    except ValueError as error:
      raise ValueError(f"{path}: cannot read as a NumPy array ({error})") from None
    _check_shape(array, path, expected_width)
    for start in range(0, len(array), batch_size):
      chunk = np.asarray(array[start:start + batch_size])
      yield validate_array(chunk, path, expected_width, row_offset=start), None
    return
  rows = _CsvRows(path, expected_width)
  batch = []
  seen_any = False
  for values in rows:
    batch.append(values)
    if len(batch) == batch_size:
      seen_any = True
      yield np.asarray(batch, dtype=np.float32), rows.feature_names
      batch = []
  if batch:
    seen_any = True
    yield np.asarray(batch, dtype=np.float32), rows.feature_names
  if not seen_any:
    raise ValueError(f"{path}: no data rows (only a header or blank lines)")


def _check_shape(array, source, expected_width):
  if array.ndim != 2:
    raise ValueError(
        f"{source}: expected a 2-D array [num_examples, num_features], "
        f"got shape {array.shape}")
  if array.shape[0] == 0 or array.shape[1] == 0:
    raise ValueError(f"{source}: the array is empty (shape {array.shape})")
  if expected_width is not None and array.shape[1] != expected_width:
    raise ValueError(
        f"{source}: {array.shape[1]} columns, but the model expects "
        f"{expected_width}")


def validate_array(x, source="data", expected_width=None, row_offset=0):
  """Checks an in-memory array and returns it as float32 [N, D].

  Args:
    x: array-like [num_examples, num_features] of real numbers.
    source: a name for messages (a file name, "x_val").
    expected_width: optional int, the width the model expects.
    row_offset: added to reported row indices (for streamed chunks).

  Returns:
    float32 numpy array [num_examples, num_features].

  Raises:
    TypeError: the array is not numeric.
    ValueError: wrong rank, empty, wrong width, or NaN / infinite values
      (the count and the first offending row and column are named).
  """
  array = np.asarray(x)
  if array.dtype == object or not (np.issubdtype(array.dtype, np.number) or
                                   array.dtype == bool):
    raise TypeError(f"{source}: expected a numeric array, got dtype {array.dtype}")
  if np.issubdtype(array.dtype, np.complexfloating):
    raise TypeError(f"{source}: complex values are not supported")
  _check_shape(array, source, expected_width)
  with np.errstate(over="ignore"):
    values = array.astype(np.float32)
  bad = ~np.isfinite(values)
  if bad.any():
    rows, cols = np.nonzero(bad)
    nan_count = int(np.isnan(values).sum())
    raise ValueError(
        f"{source}: {int(bad.sum())} non-finite values ({nan_count} NaN, "
        f"{int(bad.sum()) - nan_count} infinite or beyond float32), the first "
        f"at row {int(rows[0]) + row_offset} (0-based), column {int(cols[0])}; "
        "tfvae needs finite values")
  return values


def load_default():
  """The embedded default data: UCI Wine recognition, 178 x 13.

  Returns:
    A `Table` with the 13 chemical measurements and their names.
  """
  resource = importlib.resources.files("tfvae").joinpath("datasets/wine.csv")
  with importlib.resources.as_file(resource) as path:
    table = read_table(path)
  return dataclasses.replace(table, source="embedded default (UCI Wine)")


def split(x, validation_fraction, seed=0):
  """Shuffles rows and splits them into training and validation arrays.

  Args:
    x: array [N, D].
    validation_fraction: float in [0, 1).
    seed: int, for the shuffle.

  Returns:
    (x_train, x_validation); x_validation has round(N * fraction) rows
    (at least one when the fraction is positive).
  """
  if not 0 <= validation_fraction < 1:
    raise ValueError(
        f"validation fraction must be in [0, 1), got {validation_fraction!r}")
  order = np.random.default_rng(seed).permutation(len(x))
  num_validation = int(round(len(x) * validation_fraction))
  if validation_fraction > 0:
    num_validation = min(max(num_validation, 1), len(x) - 1)
  return x[order[num_validation:]], x[order[:num_validation]]


def make_dataset(x, batch_size, shuffle=True, seed=0):
  """A `tf.data.Dataset` of float32 batches [<= batch_size, D] of x alone.

  Args:
    x: float32 array [N, D], already validated.
    batch_size: Python int.
    shuffle: whether to reshuffle every epoch.
    seed: int, the shuffle seed.

  Returns:
    A `tf.data.Dataset`.
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top

  dataset = tf.data.Dataset.from_tensor_slices(x)
  if shuffle:
    dataset = dataset.shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
  return dataset.batch(batch_size).prefetch(tf.data.AUTOTUNE)
