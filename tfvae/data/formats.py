"""What the readers share: the reading options, a read table, numbers in
text, and the readers' base class. No TensorFlow."""

import codecs
import dataclasses
import re

import numpy as np

from tfvae import validation

DEFAULT_NA_VALUES = ("", "NA", "N/A", "n/a", "na", "NaN", "nan", "NAN",
                     "null", "NULL", "None", "none", "?", "-", "#N/A", "<NA>")
# Delimiters tried, in this order, when none is given.
DELIMITERS = (",", ";", "\t", "|")
INDEX_COLUMN_CHOICES = ("auto", "keep", "drop")

NPY_MAGIC = b"\x93NUMPY"
PARQUET_MAGIC = b"PAR1"
SNIFF_BYTES = 1 << 16
PYARROW_BLOCK_BYTES = 1 << 22


DataWarning = validation.DataWarning


@dataclasses.dataclass(frozen=True)
class ReadOptions:
  """How to read a CSV file (NPY and Parquet files carry their own format).

  Attributes:
    delimiter: one character, or None to detect it from the first lines
      among `DELIMITERS`.
    header: True if the first non-empty row holds column names, False if it
      is data, None to decide from the row: it is a header when any of its
      cells is not a number (a header of numbers, e.g. years, needs True).
    encoding: the text encoding, or None for UTF-8 (UTF-16 and UTF-8 files
      with a byte-order mark are recognised by it).
    na_values: the cell texts (after stripping spaces) that mean "missing";
      an empty tuple means no cell may be missing.
    index_column: what to do with a row-index column such as pandas writes
      (an unnamed first column counting 0, 1, 2, ...): "auto" drops it with
      a warning, "keep" keeps it as a feature, "drop" drops the first
      column whatever it holds.
    column_types: (name, type) pairs overriding the inferred column types
      (`tfvae.data.columns`: real, categorical, binary, drop).
    columns: names of the only columns to use (in the file's order; CSV
      files with a header); empty for every column. The others are left
      out as if typed `drop`.
    categories: None to infer each column's type from the file; else a
      model's `categories` (one entry per model column, in the model's
      order: None or the levels; `()` when every column is real): text
      cells of those columns are read as level codes, unseen levels as
      missing values (warned), and nothing is inferred.
    ignored_columns: names of file columns to leave out (those a model was
      trained without).
  """

  delimiter: str = None
  header: bool = None
  encoding: str = None
  na_values: tuple = DEFAULT_NA_VALUES
  index_column: str = "auto"
  column_types: tuple = ()
  columns: tuple = ()
  categories: tuple = None
  ignored_columns: tuple = ()

  def __post_init__(self):
    if self.delimiter is not None and (
        not isinstance(self.delimiter, str) or len(self.delimiter) != 1 or
        self.delimiter in "\"\r\n" or self.delimiter.isalnum() or
        self.delimiter in ".+-"):
      raise ValueError(
          f"delimiter must be one character that cannot be part of a number "
          f"(such as , ; | or a tab), got {self.delimiter!r}")
    if self.header not in (None, True, False):
      raise ValueError(f"header must be True, False or None, got {self.header!r}")
    if self.encoding is not None:
      try:
        codecs.lookup(self.encoding)
      except LookupError:
        raise ValueError(f"unknown encoding {self.encoding!r}") from None
    if isinstance(self.na_values, str) or not all(
        isinstance(token, str) for token in self.na_values):
      raise ValueError(
          f"na_values must be a sequence of strings, got {self.na_values!r}")
    object.__setattr__(self, "na_values",
                       tuple(token.strip() for token in self.na_values))
    if isinstance(self.column_types, dict):
      object.__setattr__(self, "column_types",
                         tuple(sorted(self.column_types.items())))
    if isinstance(self.columns, str):
      raise ValueError(f"columns must be a sequence of column names, got "
                       f"{self.columns!r}")
    object.__setattr__(self, "columns", tuple(self.columns))
    if self.categories is not None:
      object.__setattr__(self, "categories", tuple(
          None if levels is None else tuple(levels)
          for levels in self.categories))
    object.__setattr__(self, "ignored_columns", tuple(self.ignored_columns))
    if self.index_column not in INDEX_COLUMN_CHOICES:
      raise ValueError(f"index_column must be one of {INDEX_COLUMN_CHOICES}, "
                       f"got {self.index_column!r}")


@dataclasses.dataclass(frozen=True)
class Table:
  """A validated data table held in memory.

  Attributes:
    values: float64 array [num_examples, num_features]; NaN marks a missing
      value, every other value is finite.
    feature_names: tuple of column names, or None when the file had none.
    source: where the table came from, for messages.
    dropped_rows: rows left out because every value was missing.
    categories: None when every column is real, else per column None or
      the levels whose codes the column holds (`tfvae.data.columns`).
    ignored_columns: names of the file's columns left out (identifiers,
      free text, columns typed `drop`).
  """

  values: np.ndarray
  feature_names: tuple = None
  source: str = "data"
  dropped_rows: int = 0
  categories: tuple = None
  ignored_columns: tuple = ()

  @property
  def missing_fraction(self):
    """The fraction of missing values per column, float64 [num_features]."""
    return np.isnan(self.values).mean(axis=0)


# What a number looks like in a data file: float() also accepts "1_000",
# "infinity" spelled in other ways and non-ASCII digits, which are not data.
_NUMBER = re.compile(
    r"[+-]?(?:\d+\.?\d*(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?|"
    r"inf|infinity|nan)", re.IGNORECASE)


def parse_number(text):
  """Returns the float a cell's text denotes, or None if it is not a number.

  Leading and trailing spaces are ignored. Digit-group underscores ("1_000"),
  hexadecimal and non-ASCII digits are not numbers here, although Python's
  `float` accepts some of them.
  """
  text = text.strip()
  if not _NUMBER.fullmatch(text):
    return None
  return float(text)


class BlockReader:
  """Shared parts of the readers: names, width, block checks."""

  path = None
  feature_names = None
  width = None
  num_rows = None

  def iter_blocks(self, block_rows=65536):
    """Yields (values, first_row): float64 [<= block_rows, width] blocks and
    the 0-based data-row index of each block's first row."""
    raise NotImplementedError

  def _check_width(self):
    if self.width == 0:
      raise ValueError(f"{self.path}: the table has no columns")
