"""The CSV reader: format detection (encoding, delimiter, header, index
column), then pyarrow's fast parser with the `csv` module taking over from
the first row pyarrow does not accept, so that every error names its row
and column."""

import codecs
import csv
import io
import math
import re
import warnings

import numpy as np

from tfvae import validation
from tfvae.data import formats

class CsvReader(formats.BlockReader):
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
        sample = f.read(formats.SNIFF_BYTES)
      except UnicodeDecodeError as error:
        raise self._decode_error(error, line=None) from None
    for line in io.StringIO(sample, newline=""):
      if line.strip():
        lines.append(line)
      if len(lines) >= count:
        break
    return lines, len(sample) < formats.SNIFF_BYTES

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
      header = any(formats.parse_number(cell) is None and cell.strip() not in self._na
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
        (formats.parse_number(c) or 0.0).is_integer() for c in following[0]):
      return
    warnings.warn(
        f"{self.path}: the first row ({', '.join(c.strip() for c in first)}) "
        "is read as data; if it holds column names, pass header=True",
        formats.DataWarning, stacklevel=4)

  def _decide_index_column(self):
    choice = self.options.index_column
    if choice == "keep" or self.width < 2:
      return
    if choice == "auto":
      if self.feature_names is None or self.feature_names[0] not in (
          "", "Unnamed: 0"):
        return
      counts = [formats.parse_number(row[0]) for row in self._first_data_rows(20)]
      if not counts or None in counts or counts[0] not in (0, 1) or any(
          v != counts[0] + i for i, v in enumerate(counts)):
        return
      warnings.warn(
          f"{self.path}: column 1 is an unnamed row index "
          f"({', '.join(f'{v:g}' for v in counts[:3])}, ...) and is not used "
          "as a feature; pass index_column='keep' to use it",
          formats.DataWarning, stacklevel=4)
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
      if len(row) == 1 and any(d in row[0] for d in formats.DELIMITERS
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
      value = formats.parse_number(text)
      if value is not None and math.isnan(value) and self._na:
        # Any spelling of NaN ("-nan", "+NaN") is a missing value wherever
        # missing values are allowed.
        values.append(math.nan)
        continue
      if value is None or math.isnan(value):
        shown = repr(cell) if text else "an empty cell"
        hint = ""
        if any(d in text for d in formats.DELIMITERS if d != self.delimiter):
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
              column_names=names, block_size=formats.PYARROW_BLOCK_BYTES),
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
  for delimiter in formats.DELIMITERS:
    widths = {len(row) for row in csv.reader(lines, delimiter=delimiter)
              if not _is_blank(row)}
    if len(widths) == 1 and widths.pop() > 1:
      return delimiter
    counts = [line.count(delimiter) for line in lines]
    if best is None and counts and min(counts) > 0:
      best = delimiter
  return best or ","
