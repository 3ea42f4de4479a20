"""Reading and validating real-valued tables: CSV, NPY and Parquet.

This module imports neither TensorFlow nor TFP, so that the command line can
read and check a data file before paying for TensorFlow's start-up.

Values are float64 from the file to the model: a column such as
`1e6 + N(0, 0.01)` or Unix seconds (1.7e9) keeps its variation, which
float32 (spacing 0.0625 at 1e6, 128 at 1.7e9) would round away.

Missing values are NaN. In CSV files the empty cell and the tokens in
`DEFAULT_NA_VALUES` are missing (configurable with `ReadOptions.na_values`);
in `.npy` files NaN is missing; in Parquet files nulls and NaN are missing.
Infinite values and any other non-numeric text are errors naming the file,
the row and the column. Rows are the file's line numbers for CSV (1-based,
the header included, so a reported row can be opened in an editor) and
0-based data rows for NPY and Parquet.

NumPy files are read with `allow_pickle=False`: a data file never runs code.

Readers stream: `open_table(path).iter_blocks(rows)` yields float64 blocks
with memory bounded by the block, whatever the file's size. CSV is parsed by
pyarrow's multithreaded reader when the file is well formed; whenever pyarrow
finds anything it does not accept, the standard library's `csv` module takes
over from the same row, so every file is read with the same rules and every
error names its row and column.

The embedded default is the UCI Wine recognition data (178 examples, 13
real-valued features on very different scales), shipped as
`tfvae/datasets/wine.csv`.
"""

import codecs
import csv
import dataclasses
import importlib.resources
import io
import math
import os
import re
import stat
import warnings

import numpy as np

from tfvae import validation

# Cells read as missing values unless `ReadOptions.na_values` says otherwise.
DEFAULT_NA_VALUES = ("", "NA", "N/A", "n/a", "na", "NaN", "nan", "NAN",
                     "null", "NULL", "None", "none", "?", "-", "#N/A", "<NA>")
# Delimiters tried, in this order, when none is given.
DELIMITERS = (",", ";", "\t", "|")
INDEX_COLUMN_CHOICES = ("auto", "keep", "drop")

_NPY_MAGIC = b"\x93NUMPY"
_PARQUET_MAGIC = b"PAR1"
_SNIFF_BYTES = 1 << 16
_PYARROW_BLOCK_BYTES = 1 << 22


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
  """

  delimiter: str = None
  header: bool = None
  encoding: str = None
  na_values: tuple = DEFAULT_NA_VALUES
  index_column: str = "auto"

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
  """

  values: np.ndarray
  feature_names: tuple = None
  source: str = "data"
  dropped_rows: int = 0

  @property
  def missing_fraction(self):
    """The fraction of missing values per column, float64 [num_features]."""
    return np.isnan(self.values).mean(axis=0)


# -- Numbers in text -------------------------------------------------------------

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


# -- Readers ------------------------------------------------------------------


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


# The first bytes of compressed files, which are not text.
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
    if not start.startswith(_NPY_MAGIC):
      raise ValueError(
          f"{path}: not a NumPy .npy file (it does not start with the .npy "
          f"signature; it starts with {start[:8]!r}); if it is text, name it "
          ".csv")
    return "npy"
  if extension in (".parquet", ".pq"):
    if not start.startswith(_PARQUET_MAGIC):
      raise ValueError(f"{path}: not a Parquet file (it does not start with "
                       f"'PAR1'; it starts with {start[:8]!r})")
    return "parquet"
  for magic, name, tool in _COMPRESSED:
    if magic.match(start):
      raise ValueError(f"{path}: is {name}-compressed, not a table; "
                       f"decompress it first (e.g. {tool})")
  if extension in (".csv", ".txt", ".tsv", ".dat"):
    if start.startswith(_NPY_MAGIC) or start.startswith(_PARQUET_MAGIC):
      raise ValueError(f"{path}: is a binary NumPy or Parquet file, not text; "
                       "name it .npy or .parquet")
    return "csv"
  raise ValueError(f"{path}: unsupported file type {extension!r}; expected "
                   ".csv (or .txt, .tsv), .npy or .parquet")


def open_table(path, options=None, expected_width=None, expected_names=None):
  """Opens a data file for validated, streamed reading.

  Args:
    path: a `.csv` (also `.txt`, `.tsv`), `.npy` or `.parquet` file.
    options: `ReadOptions` for CSV files; default `ReadOptions()`.
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
  options = options or ReadOptions()
  kind = _file_kind(path)
  reader = {"npy": _NpyReader, "parquet": _ParquetReader,
            "csv": _CsvReader}[kind](path, options)
  validation.check_unique_names(reader.feature_names, path)
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
                  DataWarning, stacklevel=2)
  return reader


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


class _BlockReader:
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


class _NpyReader(_BlockReader):
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


class _ParquetReader(_BlockReader):
  """A Parquet file, read record batch by record batch with pyarrow."""

  def __init__(self, path, options):
    del options
    import pyarrow as pa  # pylint: disable=g-import-not-at-top
    import pyarrow.parquet as pq  # pylint: disable=g-import-not-at-top
    self.path = path
    try:
      self._file = pq.ParquetFile(path)
    except (pa.ArrowException, OSError) as error:
      raise ValueError(
          f"{path}: not a readable Parquet file ({error})") from None
    schema = self._file.schema_arrow
    self.feature_names = tuple(schema.names)
    for index, field in enumerate(schema):
      if not (pa.types.is_integer(field.type) or pa.types.is_floating(field.type)
              or pa.types.is_boolean(field.type) or
              pa.types.is_decimal(field.type) or pa.types.is_null(field.type)):
        raise ValueError(
            f"{path}: {validation.column_label(index, self.feature_names)} has type "
            f"{field.type}, expected numbers")
    self.width = len(self.feature_names)
    self._check_width()
    self.num_rows = self._file.metadata.num_rows
    if self.num_rows == 0:
      raise ValueError(f"{path}: no data rows")

  def iter_blocks(self, block_rows=65536):
    import pyarrow as pa  # pylint: disable=g-import-not-at-top
    start = 0
    try:
      for batch in self._file.iter_batches(batch_size=block_rows):
        columns = []
        for column in batch.columns:
          if pa.types.is_null(column.type):
            values = np.full(len(column), np.nan)
          else:
            values = column.cast(pa.float64()).to_numpy(zero_copy_only=False)
          columns.append(np.asarray(values, np.float64))
        block = np.stack(columns, axis=1)
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


class _CsvReader(_BlockReader):
  """A delimited text file, streamed.

  The first lines fix the format (encoding, delimiter, header, index
  column); `iter_blocks` then parses with pyarrow and falls back to the
  `csv` module, from the first row pyarrow rejects, to apply tfvae's rules
  and name the bad row and column.
  """

  def __init__(self, path, options):
    self.path = path
    self.options = options
    self.encoding = options.encoding or _detect_encoding(path)
    self._na = frozenset(options.na_values)
    self._inspect()

  # The format, from the first lines.

  def _open_text(self):
    return open(self.path, newline="", encoding=self.encoding,
                errors="strict")

  def _first_lines(self, count=50):
    lines = []
    with self._open_text() as f:
      try:
        sample = f.read(_SNIFF_BYTES)
      except UnicodeDecodeError as error:
        raise self._decode_error(error, line=None) from None
    for line in io.StringIO(sample, newline=""):
      if line.strip():
        lines.append(line)
      if len(lines) >= count:
        break
    return lines, len(sample) < _SNIFF_BYTES

  def _inspect(self):
    lines, whole_file = self._first_lines()
    if not lines:
      raise ValueError(f"{self.path}: no data rows (only blank lines)")
    self.delimiter = self.options.delimiter or _detect_delimiter(
        lines if whole_file else lines[:-1] or lines)
    first_line, first = None, None
    with self._open_text() as f:
      reader = csv.reader(f, delimiter=self.delimiter)
      try:
        for row in reader:
          if _is_blank(row):
            continue
          first_line, first = reader.line_num, row
          break
      except UnicodeDecodeError as error:
        raise self._decode_error(error, reader.line_num + 1) from None
      except csv.Error as error:
        raise ValueError(
            f"{self.path} row {reader.line_num}: {error}") from None
    self.width = len(first)
    header = self.options.header
    self.header_line = 0
    if header is None:
      header = any(parse_number(cell) is None and cell.strip() not in self._na
                   for cell in first)
      if not header:
        self._warn_if_numeric_header(first)
    self.header_line = first_line if header else 0
    self.feature_names = (tuple(cell.strip() for cell in first) if header
                          else None)
    self.keep_columns = None
    self._decide_index_column()
    self._check_width()

  def _warn_if_numeric_header(self, first):
    """Warns when the first row looks like a header of numbers: increasing
    integers (years, wavelengths) above a row that is not all integers."""
    if len(first) < 2 or not all(re.fullmatch(r"\d+", cell.strip())
                                 for cell in first):
      return
    numbers = [int(cell) for cell in first]
    if not all(b > a for a, b in zip(numbers, numbers[1:])):
      return
    following = self._first_data_rows(2)[1:]
    if not following or all(
        (parse_number(c) or 0.0).is_integer() for c in following[0]):
      return
    warnings.warn(
        f"{self.path}: the first row ({', '.join(c.strip() for c in first)}) "
        "is read as data; if it holds column names, pass header=True",
        DataWarning, stacklevel=4)

  def _decide_index_column(self):
    choice = self.options.index_column
    if choice == "keep" or self.width < 2:
      return
    if choice == "auto":
      if self.feature_names is None or self.feature_names[0] not in (
          "", "Unnamed: 0"):
        return
      counts = [parse_number(row[0]) for row in self._first_data_rows(20)]
      if not counts or None in counts or counts[0] not in (0, 1) or any(
          v != counts[0] + i for i, v in enumerate(counts)):
        return
      warnings.warn(
          f"{self.path}: column 1 is an unnamed row index "
          f"({', '.join(f'{v:g}' for v in counts[:3])}, ...) and is not used "
          "as a feature; pass index_column='keep' to use it",
          DataWarning, stacklevel=4)
    self.keep_columns = list(range(1, self.width))
    if self.feature_names is not None:
      self.feature_names = self.feature_names[1:]
    self.width -= 1

  def _first_data_rows(self, count):
    rows = []
    with self._open_text() as f:
      reader = csv.reader(f, delimiter=self.delimiter)
      try:
        for row in reader:
          if reader.line_num > self.header_line and not _is_blank(row):
            rows.append(row)
            if len(rows) == count:
              break
      except (UnicodeDecodeError, csv.Error):
        pass  # reported with its row when the rows are read
    return rows

  def _decode_error(self, error, line):
    """A ValueError naming the first line that does not decode."""
    del line  # the reader's count is past the bad bytes: find them again
    decoder = codecs.getincrementaldecoder(self.encoding)()
    number = None
    with open(self.path, "rb") as f:
      for number, raw in enumerate(f, 1):
        try:
          decoder.decode(raw)
        except UnicodeDecodeError as bad:
          error = bad
          break
    return ValueError(
        f"{self.path} row {number}: cannot decode the text as "
        f"{self.encoding} ({error.reason}: {error.object[error.start:error.end]!r}); "
        "pass encoding=... with the file's encoding (e.g. latin-1, cp1252, "
        "utf-16)")

  # Rows.

  def _convert(self, row, line):
    """One row's cells -> float64 values (NaN for missing), or ValueError."""
    if len(row) != self._file_width:
      hint = ""
      if len(row) == 1 and any(d in row[0] for d in DELIMITERS
                               if d != self.delimiter):
        hint = (f"; the rows are delimited by {self.delimiter!r}: pass "
                "delimiter=... if another is meant")
      raise ValueError(
          f"{self.path} row {line}: {len(row)} columns, expected "
          f"{self._file_width} (the width of the first row){hint}")
    if self.keep_columns is not None:
      row = [row[i] for i in self.keep_columns]
    values = []
    for index, cell in enumerate(row):
      text = cell.strip()
      if text in self._na:
        values.append(math.nan)
        continue
      value = parse_number(text)
      if value is not None and math.isnan(value) and self._na:
        # Any spelling of NaN ("-nan", "+NaN") is a missing value wherever
        # missing values are allowed.
        values.append(math.nan)
        continue
      if value is None or math.isnan(value):
        shown = repr(cell) if text else "an empty cell"
        hint = ""
        if any(d in text for d in DELIMITERS if d != self.delimiter):
          hint = (f" (the file is read with delimiter {self.delimiter!r}; "
                  "pass delimiter=... to choose another)")
        elif value is not None or not text:
          hint = " (missing values are not allowed: na_values is empty)"
        raise ValueError(
            f"{self.path} row {line}, "
            f"{validation.column_label(index, self.feature_names)}: {shown} is not a "
            f"number{hint}")
      if math.isinf(value):
        raise ValueError(
            f"{self.path} row {line}, "
            f"{validation.column_label(index, self.feature_names)}: {cell.strip()!r} is "
            "infinite; tfvae needs finite values (mark missing values with an "
            "empty cell or NA)")
      values.append(value)
    return values

  @property
  def _file_width(self):
    return self.width + (0 if self.keep_columns is None else 1)

  def _python_blocks(self, block_rows, skip_rows=0, with_text=False):
    """The reference parser: the csv module, tfvae's rules, exact rows.

    Yields float64 blocks, or (block, the rows' cells as text) with
    `with_text`.
    """
    with self._open_text() as f:
      reader = csv.reader(f, delimiter=self.delimiter)
      block, texts, index = [], [], 0
      try:
        for row in reader:
          if reader.line_num <= self.header_line or _is_blank(row):
            continue
          index += 1
          if index <= skip_rows:
            continue
          block.append(self._convert(row, reader.line_num))
          texts.append(row)
          if len(block) == block_rows:
            values = np.asarray(block, np.float64)
            yield (values, texts) if with_text else values
            block, texts = [], []
      except UnicodeDecodeError as error:
        raise self._decode_error(error, reader.line_num + 1) from None
      except csv.Error as error:
        raise ValueError(f"{self.path} row {reader.line_num}: {error}") from None
      if block:
        values = np.asarray(block, np.float64)
        yield (values, texts) if with_text else values

  def iter_text_blocks(self, block_rows=4096):
    """Yields (values float64 [rows, width], cells): each row's values and
    its cells as written in the file (all columns, an index column
    included), for outputs that keep the file's text."""
    yield from self._python_blocks(block_rows, with_text=True)

  def header_cells(self):
    """The header row's cells as written (None without a header)."""
    if not self.header_line:
      return None
    with self._open_text() as f:
      reader = csv.reader(f, delimiter=self.delimiter)
      for row in reader:
        if reader.line_num == self.header_line:
          return row
    return None

  @property
  def value_columns(self):
    """Which of the file's columns hold the values (the index column not)."""
    return (list(range(self.width)) if self.keep_columns is None
            else list(self.keep_columns))

  def _pyarrow_blocks(self, block_rows):
    """The fast parser; stops (returning) at the first block it cannot read
    under tfvae's rules, so the reference parser can take over."""
    try:
      import pyarrow as pa  # pylint: disable=g-import-not-at-top
      import pyarrow.csv as pcsv  # pylint: disable=g-import-not-at-top
    except ImportError:
      return
    names = [f"c{i}" for i in range(self._file_width)]
    include = (names if self.keep_columns is None
               else [names[i] for i in self.keep_columns])
    try:
      stream = pcsv.open_csv(
          self.path,
          read_options=pcsv.ReadOptions(
              encoding=self.encoding, skip_rows=self.header_line,
              column_names=names, block_size=_PYARROW_BLOCK_BYTES),
          parse_options=pcsv.ParseOptions(delimiter=self.delimiter,
                                          ignore_empty_lines=True),
          convert_options=pcsv.ConvertOptions(
              column_types={name: pa.float64() for name in names},
              include_columns=include, null_values=list(self._na),
              strings_can_be_null=True, quoted_strings_can_be_null=True))
    except (pa.ArrowException, OSError, UnicodeError):
      return
    pending = []
    while True:
      try:
        batch = stream.read_next_batch()
      except StopIteration:
        break
      except (pa.ArrowException, OSError, UnicodeError):
        return
      block = np.stack([np.asarray(c.to_numpy(zero_copy_only=False),
                                   np.float64) for c in batch.columns], axis=1)
      if np.isinf(block).any() or (not self._na and np.isnan(block).any()):
        return  # let the reference parser name the row
      pending.append(block)
      while sum(len(b) for b in pending) >= block_rows:
        merged = np.concatenate(pending)
        yield merged[:block_rows]
        pending = [merged[block_rows:]]
    if pending and sum(len(b) for b in pending):
      yield np.concatenate(pending)

  def iter_blocks(self, block_rows=65536):
    done = 0
    for block in self._pyarrow_blocks(block_rows):
      yield block, done
      done += len(block)
    # Whatever pyarrow left (nothing, for a well-formed file), the reference
    # parser reads from the same row on, and names any bad row and column.
    for block in self._python_blocks(block_rows, skip_rows=done):
      yield block, done
      done += len(block)
    if done == 0:
      raise ValueError(f"{self.path}: no data rows (only a header or blank "
                       "lines)")
    self.num_rows = done


def _is_blank(row):
  return not row or (len(row) == 1 and not row[0].strip())


def _detect_encoding(path):
  with open(path, "rb") as f:
    start = f.read(4)
  if start.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
    return "utf-16"
  return "utf-8-sig"


def _detect_delimiter(lines):
  """The delimiter that splits the sample lines into equal widths > 1."""
  best = None
  for delimiter in DELIMITERS:
    widths = {len(row) for row in csv.reader(lines, delimiter=delimiter)
              if not _is_blank(row)}
    if len(widths) == 1 and widths.pop() > 1:
      return delimiter
    counts = [line.count(delimiter) for line in lines]
    if best is None and counts and min(counts) > 0:
      best = delimiter
  return best or ","


def read_table(path, expected_width=None, options=None, drop_empty_rows=True):
  """Reads a `.csv`, `.npy` or `.parquet` file into a validated `Table`.

  Args:
    path: path to the file.
    expected_width: optional int; a table of another width is an error.
    options: `ReadOptions` for CSV files.
    drop_empty_rows: leave out rows whose every value is missing, with a
      `DataWarning` counting them (they carry no information to train on).

  Returns:
    A `Table` of float64 values with NaN for missing values.

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
                    "left out", DataWarning, stacklevel=2)
  if len(values) == 0:
    raise ValueError(f"{path}: no data rows with an observed value")
  validation.check_columns_observed(values, path, reader.feature_names)
  return Table(values, reader.feature_names, os.fspath(path), dropped)


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
    A `Table` with the 13 chemical measurements and their names.
  """
  resource = importlib.resources.files("tfvae").joinpath("datasets/wine.csv")
  with importlib.resources.as_file(resource) as path:
    table = read_table(path)
  return dataclasses.replace(table, source="embedded default (UCI Wine)")


# -- Splits -----------------------------------------------------------------


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
