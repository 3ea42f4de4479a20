"""Opening data files (CSV, NPY, Parquet) for validated, streamed reading,
and reading whole tables. No TensorFlow."""

import dataclasses
import importlib.resources
import os
import re
import stat
import warnings

import numpy as np

from tfvae import validation
from tfvae.data import columns
from tfvae.data import formats
from tfvae.data.csv_reader import CsvReader

def _check_file(path):
  path = os.fspath(path)
  if not os.path.exists(path):
    raise ValueError(f"{path}: no such file")
  if os.path.isdir(path):
    raise ValueError(
        f"{path}: is a directory, expected a .csv, .npy or .parquet file")
  if not os.access(path, os.R_OK):
    raise ValueError(f"{path}: permission denied (cannot read the file)")
  mode = os.stat(path).st_mode
  if not stat.S_ISREG(mode):
    kind = ("a named pipe (FIFO)" if stat.S_ISFIFO(mode) else
            "a character device" if stat.S_ISCHR(mode) else
            "a block device" if stat.S_ISBLK(mode) else
            "a socket" if stat.S_ISSOCK(mode) else "not a regular file")
    raise ValueError(f"{path}: is {kind}, not a regular file; tfvae reads "
                     "a data file more than once (save the data to a file)")
  if os.path.getsize(path) == 0:
    raise ValueError(f"{path}: the file is empty")
  return path


_COMPRESSED = ((re.compile(rb"\x1f\x8b"), "gzip", "gunzip"),
               (re.compile(rb"BZh[1-9]1AY&SY"), "bzip2", "bunzip2"),
               (re.compile(rb"\xfd7zXZ\x00"), "xz", "unxz"),
               (re.compile(rb"\x28\xb5\x2f\xfd"), "zstd", "unzstd"),
               (re.compile(rb"PK\x03\x04"), "zip", "unzip"))


def _file_kind(path):
  """'npy', 'parquet' or 'csv', from the extension, checked against the bytes."""
  extension = os.path.splitext(path)[1].lower()
  with open(path, "rb") as f:
    start = f.read(10)
  if extension == ".npy":
    if not start.startswith(formats.NPY_MAGIC):
      raise ValueError(
          f"{path}: not a NumPy .npy file (it does not start with the .npy "
          f"signature; it starts with {start[:8]!r}); if it is text, name it "
          ".csv")
    return "npy"
  if extension in (".parquet", ".pq"):
    if not start.startswith(formats.PARQUET_MAGIC):
      raise ValueError(f"{path}: not a Parquet file (it does not start with "
                       f"'PAR1'; it starts with {start[:8]!r})")
    return "parquet"
  for magic, name, tool in _COMPRESSED:
    if magic.match(start):
      raise ValueError(f"{path}: is {name}-compressed, not a table; "
                       f"decompress it first (e.g. {tool})")
  if extension in (".csv", ".txt", ".tsv", ".dat"):
    if start.startswith(formats.NPY_MAGIC) or start.startswith(formats.PARQUET_MAGIC):
      raise ValueError(f"{path}: is a binary NumPy or Parquet file, not text; "
                       "name it .npy or .parquet")
    return "csv"
  raise ValueError(f"{path}: unsupported file type {extension!r}; expected "
                   ".csv (or .txt, .tsv), .npy or .parquet")


def open_table(path, options=None, expected_width=None, expected_names=None):
  """Opens a data file for validated, streamed reading.

  Args:
    path: a `.csv` (also `.txt`, `.tsv`), `.npy` or `.parquet` file.
    options: `formats.ReadOptions` for CSV files; default `formats.ReadOptions()`.
    expected_width: optional int; a table of another width is an error
      (use it to check data against a trained model).
    expected_names: optional column names of the model: when the file has
      names too, its columns are matched by name (reordered, with a
      warning) and missing or unknown ones are an error; a file without a
      header is read by position, with a warning.

  Returns:
    A reader with `feature_names`, `width`, `num_rows` (None for CSV until
    read through) and `iter_blocks(block_rows)`.

  Raises:
    ValueError: the file is missing, empty, unreadable or not what its
      name says, or its header is malformed or of the wrong width.
  """
  path = _check_file(path)
  options = options or formats.ReadOptions()
  kind = _file_kind(path)
  reader = {"npy": _NpyReader, "parquet": _ParquetReader,
            "csv": CsvReader}[kind](path, options)
  validation.check_unique_names(reader.feature_names, path)
  if kind in ("csv", "parquet"):
    _set_column_types(reader, options, expected_names)
  elif options.columns or options.column_types:
    raise ValueError(f"{path}: choosing columns or their types (--columns, "
                     "--drop-columns, --column-types) is for CSV and Parquet "
                     "files; every column of a .npy file is a number")
  if expected_names is not None:
    order = validation.column_order(reader.feature_names, expected_names, path)
    if order is not None:
      return reader if order == list(range(reader.width)) else _Reordered(
          reader, order)
  if expected_width is not None and reader.width != expected_width:
    raise ValueError(f"{path}: {reader.width} columns, but the model expects "
                     f"{expected_width}")
  if expected_names is not None:
    warnings.warn(f"{path} has no header: its columns are taken by position "
                  "as the model's " + validation.shown_names(expected_names),
                  formats.DataWarning, stacklevel=2)
  return reader


def options_for_model(options, categories, ignored_columns=None):
  """`options` for reading data with a model's column types: its
  `categories` (None: every column real) and the columns it left out."""
  options = options or formats.ReadOptions()
  return dataclasses.replace(
      options, categories=tuple(categories) if categories else (),
      ignored_columns=tuple(ignored_columns or ()))


def _set_column_types(reader, options, expected_names):
  """Infers a CSV file's column types, or applies a model's (its
  `categories` in its own column order, matched to the file's by name)."""
  if options.ignored_columns and reader.feature_names is not None:
    reader.leave_out(options.ignored_columns)
  if options.categories is None:
    reader.infer_categories(columns.with_selection(
        options.column_types, options.columns, reader.feature_names,
        reader.path))
    return
  categories = options.categories
  if not categories:
    return
  order = validation.column_order(reader.feature_names, expected_names,
                                  reader.path) if expected_names else None
  if order is not None:
    in_file = [None] * reader.width
    for model_column, file_column in enumerate(order):
      in_file[file_column] = categories[model_column]
    categories = in_file
  if len(categories) == reader.width:
    reader.set_categories(categories)


class _Reordered:
  """A reader whose blocks hold the model's columns in the model's order."""

  def __init__(self, reader, order):
    self._reader = reader
    self._order = list(order)
    self.feature_names = tuple(reader.feature_names[i] for i in order)
    if hasattr(reader, "iter_text_blocks"):  # CSV: outputs keep the text
      self.iter_text_blocks = self._text_blocks

  def __getattr__(self, name):
    return getattr(self._reader, name)

  def iter_blocks(self, block_rows=65536):
    for block, start in self._reader.iter_blocks(block_rows):
      yield block[:, self._order], start

  def _text_blocks(self, block_rows=4096):
    for values, texts in self._reader.iter_text_blocks(block_rows):
      yield values[:, self._order], texts

  @property
  def value_columns(self):
    columns = self._reader.value_columns
    return [columns[i] for i in self._order]


class _NpyReader(formats.BlockReader):
  """A memory-mapped `.npy` file, read block by block."""

  def __init__(self, path, options):
    del options  # the .npy header carries the format
    self.path = path
    try:
      self._array = np.load(path, mmap_mode="r", allow_pickle=False)
    except ValueError as error:
      if "pickle" in str(error) or "object" in str(error):
        raise ValueError(
            f"{path}: holds Python objects, which tfvae never unpickles; "
            "save a plain numeric array (np.save(path, x.astype(float)))"
        ) from None
      raise ValueError(
          f"{path}: truncated or corrupted .npy file ({error})") from None
    except (OSError, EOFError) as error:
      raise ValueError(
          f"{path}: truncated or corrupted .npy file ({error})") from None
    array = self._array
    if array.dtype.names is not None or not (
        np.issubdtype(array.dtype, np.number) or array.dtype == bool):
      raise ValueError(f"{path}: expected a numeric array, got dtype "
                       f"{array.dtype}")
    if np.issubdtype(array.dtype, np.complexfloating):
      raise ValueError(f"{path}: complex values are not supported")
    if array.ndim != 2:
      raise ValueError(f"{path}: expected a 2-D array [num_examples, "
                       f"num_features], got shape {array.shape}")
    self.num_rows, self.width = array.shape
    self._check_width()
    if self.num_rows == 0:
      raise ValueError(f"{path}: the array has no rows (shape {array.shape})")

  def iter_blocks(self, block_rows=65536):
    for start in range(0, self.num_rows, block_rows):
      block = np.asarray(self._array[start:start + block_rows], np.float64)
      _check_values(block, self.path, start, None)
      yield block, start


class _ParquetReader(formats.BlockReader):
  """A Parquet file, read record batch by record batch with pyarrow.

  Number and boolean columns are numbers; string columns are text, typed
  by the same rules as a CSV file's (`tfvae.data.columns`): categorical
  or binary columns read as level codes, identifiers left out.
  """

  def __init__(self, path, options):
    import pyarrow as pa  # pylint: disable=g-import-not-at-top
    import pyarrow.parquet as pq  # pylint: disable=g-import-not-at-top
    self.path = path
    self._na = set((options or formats.ReadOptions()).na_values)
    try:
      self._file = pq.ParquetFile(path)
    except (pa.ArrowException, OSError) as error:
      raise ValueError(
          f"{path}: not a readable Parquet file ({error})") from None
    schema = self._file.schema_arrow
    self.feature_names = tuple(schema.names)
    self._is_text = []
    for index, field in enumerate(schema):
      kind = field.type
      if pa.types.is_dictionary(kind):
        kind = kind.value_type
      text = pa.types.is_string(kind) or pa.types.is_large_string(kind)
      if not (text or pa.types.is_integer(kind) or pa.types.is_floating(kind)
              or pa.types.is_boolean(kind) or pa.types.is_decimal(kind) or
              pa.types.is_null(kind)):
        raise ValueError(
            f"{path}: {validation.column_label(index, self.feature_names)} "
            f"has type {field.type}, expected numbers or text")
      self._is_text.append(text)
    self.width = len(self.feature_names)
    self._check_width()
    self.num_rows = self._file.metadata.num_rows
    if self.num_rows == 0:
      raise ValueError(f"{path}: no data rows")
    self.keep_columns = list(range(self.width))
    self.categories = None
    self.ignored_columns = ()
    self.unseen = {}
    self._lookups = None

  # Column types, as `CsvReader` has them.

  def _texts(self, file_column, batch_column=None):
    """A column's cells as stripped texts (pyarrow), None where null or an
    NA token."""
    import pyarrow as pa  # pylint: disable=g-import-not-at-top
    import pyarrow.compute as pc  # pylint: disable=g-import-not-at-top
    column = batch_column
    if column is None:
      column = self._file.read(
          columns=[self._file.schema_arrow.names[file_column]]).column(0)
    if isinstance(column, pa.ChunkedArray):
      column = column.combine_chunks()
    if pa.types.is_dictionary(column.type):
      column = column.dictionary_decode()
    texts = pc.utf8_trim_whitespace(column.cast(pa.string()))
    missing = pc.is_in(texts, value_set=pa.array(sorted(self._na), pa.string()))
    return pc.if_else(pc.fill_null(missing, True), pa.nulls(len(texts),
                                                           pa.string()), texts)

  def infer_categories(self, column_types=None):
    """Types each column (`CsvReader.infer_categories`' rules)."""
    import pyarrow.compute as pc  # pylint: disable=g-import-not-at-top
    column_types = columns.check_overrides(column_types, self.feature_names,
                                           self.path)
    kept = list(self.keep_columns)
    names = [self.feature_names[i] for i in kept]
    forced = dict(column_types)
    sample, read = [], {}  # read: slot -> the column's non-missing texts
    for slot, (file_column, name) in enumerate(zip(kept, names)):
      if self._is_text[file_column] or forced.get(name) in (
          columns.CATEGORICAL, columns.BINARY):
        read[slot] = self._texts(file_column).drop_null()
        sample.append(read[slot][:columns.INFER_ROWS].to_pylist())
      else:
        sample.append([])

    def level_counts(slots):
      counts = {}
      for slot in slots:
        texts = read[slot] if slot in read else self._texts(
            kept[slot]).drop_null()
        pairs = pc.value_counts(texts).to_pylist()
        counts[slot] = {pair["values"]: pair["counts"]
                        for pair in pairs[:columns.MAX_LEVELS + 1]}
      return counts

    categories, chosen = columns.decide(names, sample, level_counts,
                                        column_types, self.path)
    self.ignored_columns += tuple(name for slot, name in enumerate(names)
                                  if slot not in chosen)
    self._keep([kept[slot] for slot in chosen])
    self.set_categories(categories)

  def _keep(self, file_columns):
    self.keep_columns = list(file_columns)
    self.feature_names = tuple(self._file.schema_arrow.names[i]
                               for i in file_columns)
    self.width = len(file_columns)
    self._check_width()

  def leave_out(self, names):
    names = set(names)
    self.ignored_columns += tuple(
        name for name in self.feature_names if name in names)
    self._keep([i for i in self.keep_columns
                if self._file.schema_arrow.names[i] not in names])

  def set_categories(self, categories):
    self.categories, self._lookups = columns.lookups(categories)

  def _codes(self, slot, column, start):
    """A text column of a batch -> float64 level codes (NaN: missing or
    unseen, the first unseen text of a column warned)."""
    import pyarrow as pa  # pylint: disable=g-import-not-at-top
    import pyarrow.compute as pc  # pylint: disable=g-import-not-at-top
    lookup = self._lookups[slot]
    texts = self._texts(None, column)
    keys = pc.utf8_lower(texts) if lookup.folds_case else texts
    value_set = lookup.keys()
    index = pc.index_in(keys, value_set=pa.array(value_set, pa.string()))
    codes = np.array([lookup.code(k) for k in value_set] + [np.nan],
                     np.float64)
    index = index.to_numpy(zero_copy_only=False)
    index = np.where(np.isnan(index.astype(np.float64)), len(value_set),
                     index).astype(np.int64)
    out = codes[index]
    unseen = np.flatnonzero(np.isnan(out) & ~np.asarray(
        pc.is_null(texts).to_numpy(zero_copy_only=False)))
    if len(unseen):
      label = validation.column_label(slot, self.feature_names)
      if label not in self.unseen:
        warnings.warn(
            f"{self.path} row {start + int(unseen[0])} (0-based), {label}: "
            f"{texts[int(unseen[0])].as_py()!r} is not one of the levels the "
            "model was trained on; read as a missing value (and so is any "
            "other unseen level)", formats.DataWarning, stacklevel=4)
      self.unseen[label] = self.unseen.get(label, 0) + len(unseen)
    return out

  def _numbers(self, slot, column, start):
    """A text column typed real -> float64 (NA tokens missing); a cell
    that is not a number is an error naming its row and column."""
    texts = self._texts(None, column).to_pylist()
    out = np.full(len(texts), np.nan)
    for row, text in enumerate(texts):
      if text is None:
        continue
      try:
        out[row] = float(text)
      except ValueError:
        raise ValueError(
            f"{self.path} row {start + row} (0-based), "
            f"{validation.column_label(slot, self.feature_names)}: {text!r} "
            "is not a number (the column is typed real)") from None
    return out

  def iter_blocks(self, block_rows=65536):
    import pyarrow as pa  # pylint: disable=g-import-not-at-top
    start = 0
    names = list(self.feature_names)
    try:
      for batch in self._file.iter_batches(batch_size=block_rows,
                                           columns=names):
        values = []
        for slot, column in enumerate(batch.columns):
          if self._lookups is not None and self._lookups[slot] is not None:
            values.append(self._codes(slot, column, start))
          elif pa.types.is_null(column.type):
            values.append(np.full(len(column), np.nan))
          elif self._is_text[self.keep_columns[slot]]:
            values.append(self._numbers(slot, column, start))
          else:
            values.append(np.asarray(column.cast(pa.float64()).to_numpy(
                zero_copy_only=False), np.float64))
        block = np.stack(values, axis=1)
        _check_values(block, self.path, start, self.feature_names)
        yield block, start
        start += len(block)
    except (pa.ArrowException, OSError) as error:
      raise ValueError(f"{self.path}: truncated or corrupted Parquet file "
                       f"near data row {start} ({error})") from None


def _check_values(block, source, first_row, feature_names):
  """Raises `ValueError` locating the first infinite value of a block."""
  infinite = np.isinf(block)
  if infinite.any():
    row, column = (int(i[0]) for i in np.nonzero(infinite))
    raise ValueError(
        f"{source} row {first_row + row} (0-based), "
        f"{validation.column_label(column, feature_names)}: "
        f"{block[row, column]} is infinite; tfvae needs finite values "
        "(mark missing values as NaN or an empty cell)")


def read_table(path, expected_width=None, options=None, drop_empty_rows=True):
  """Reads a `.csv`, `.npy` or `.parquet` file into a validated `formats.Table`.

  Args:
    path: path to the file.
    expected_width: optional int; a table of another width is an error.
    options: `formats.ReadOptions` for CSV files.
    drop_empty_rows: leave out rows whose every value is missing, with a
      `formats.DataWarning` counting them (they carry no information to train on).

  Returns:
    A `formats.Table` of float64 values with NaN for missing values.

  Raises:
    ValueError: the file is missing or empty, has a non-numeric cell, rows
      of different lengths, infinite values, the wrong width, or a column
      with no observed value.
  """
  reader = open_table(path, options, expected_width)
  blocks = [block for block, _ in reader.iter_blocks()]
  values = np.concatenate(blocks) if blocks else np.zeros([0, reader.width])
  dropped = 0
  if drop_empty_rows:
    empty = np.isnan(values).all(axis=1)
    dropped = int(empty.sum())
    if dropped:
      values = values[~empty]
      warnings.warn(f"{path}: {dropped} rows with every value missing are "
                    "left out", formats.DataWarning, stacklevel=2)
  if len(values) == 0:
    raise ValueError(f"{path}: no data rows with an observed value")
  validation.check_columns_observed(values, path, reader.feature_names)
  return formats.Table(values, reader.feature_names, os.fspath(path), dropped,
                       getattr(reader, "categories", None),
                       tuple(getattr(reader, "ignored_columns", ())))


def load(path, expected_width=None, options=None):
  """Reads a data file into a float64 array [N, D] (NaN: missing).

  See `read_table`; this drops the feature names.
  """
  return read_table(path, expected_width, options).values


def iter_batches(path, batch_size, expected_width=None, options=None):
  """Streams a data file in validated float64 batches [<= batch_size, D].

  Every row is kept, including rows with every value missing, so that
  outputs line up with the input rows.

  Yields:
    (values, feature_names): float64 array [rows, D] and the header names
    (or None).
  """
  reader = open_table(path, options, expected_width)
  for block, _ in reader.iter_blocks(batch_size):
    yield block, reader.feature_names


def load_default():
  """The embedded default data: UCI Wine recognition, 178 x 13.

  Returns:
    A `formats.Table` with the 13 chemical measurements and their names.
  """
  resource = importlib.resources.files("tfvae").joinpath("datasets/wine.csv")
  with importlib.resources.as_file(resource) as path:
    table = read_table(path)
  return dataclasses.replace(table, source="embedded default (UCI Wine)")
