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
from tfvae.data import columns
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
    self._columns_in_file = len(first)
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
    self.lookups = None  # per value column: a `columns.Lookup` or None
    self.categories = None
    self.ignored_columns = ()
    self.unseen = {}
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
      if self.lookups is not None and self.lookups[index] is not None:
        code = self.lookups[index].code(text)
        if code is None:
          self._unseen_level(index, text, line)
          code = math.nan
        values.append(float(code))
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
    return self._columns_in_file

  # Column types.

  def _kept(self):
    return (list(range(self.width)) if self.keep_columns is None
            else list(self.keep_columns))

  def infer_categories(self, column_types=None):
    """Finds each column's type (`tfvae.data.columns`): text columns become
    categorical with their levels read from the whole file, columns that
    are not categories (too many distinct texts) or typed `drop` are left
    out. Sets `categories`, `feature_names`, `width`."""
    column_types = columns.check_overrides(column_types, self.feature_names,
                                           self.path)
    kept = self._kept()
    sample = [[] for _ in kept]
    for row in self._first_data_rows(columns.INFER_ROWS):
      if len(row) != self._file_width:
        continue  # reported with its row when the rows are read
      for slot, index in enumerate(kept):
        text = row[index].strip()
        if text not in self._na:
          sample[slot].append(text)
    others = [d for d in formats.DELIMITERS if d != self.delimiter]
    if len(kept) == 1 and any(d in cell for cell in sample[0][:100]
                              for d in others):
      # One column of delimited numbers: a wrong delimiter, not text (the
      # error will say so).
      sample = [[]]
    categories, chosen = columns.decide(
        self.feature_names, sample,
        lambda slots: self._count_levels(slots, kept), column_types,
        self.path)
    if self.feature_names is not None:
      self.ignored_columns += tuple(
          self.feature_names[slot] for slot in range(len(kept))
          if slot not in chosen)
    self._keep([kept[slot] for slot in chosen])
    self.set_categories(categories)

  def _keep(self, file_columns):
    """Reads only these of the file's columns (indices into a row)."""
    names = dict(zip(self._kept(), self.feature_names or ()))
    self.keep_columns = list(file_columns)
    if self.feature_names is not None:
      self.feature_names = tuple(names[i] for i in file_columns)
    self.width = len(file_columns)
    self._check_width()

  def leave_out(self, names):
    """Leaves out the columns of these names (those a model was trained
    without); names the file does not have are ignored."""
    names = set(names)
    kept = self._kept()
    self.ignored_columns += tuple(
        name for name in self.feature_names if name in names)
    self._keep([index for index, name in zip(kept, self.feature_names)
                if name not in names])

  def _count_levels(self, slots, kept):
    """slot -> {text: count} of the non-missing cells of these value
    columns over the whole file (each stops growing past MAX_LEVELS)."""
    counts = {slot: {} for slot in slots}
    with self._open_text() as f:
      reader = csv.reader(f, delimiter=self.delimiter)
      try:
        for row in reader:
          if (reader.line_num <= self.header_line or _is_blank(row) or
              len(row) != self._file_width):
            continue
          for slot in slots:
            text = row[kept[slot]].strip()
            if text in self._na:
              continue
            found = counts[slot]
            if text in found:
              found[text] += 1
            elif len(found) <= columns.MAX_LEVELS:
              found[text] = 1
      except (UnicodeDecodeError, csv.Error):
        pass  # reported with its row when the rows are read
    return counts

  def set_categories(self, categories):
    """Reads the categorical columns as level codes: `categories` one
    entry per value column (None: real; the levels)."""
    self.categories, self.lookups = columns.lookups(categories)

  def is_missing_text(self, text):
    """Whether a cell's text marks a missing value (an NA token)."""
    return text.strip() in self._na

  def _unseen_level(self, index, text, line):
    """A cell that is not one of its column's levels: missing, warned once
    per column."""
    label = f"column {self._kept()[index] + 1}" + (
        "" if self.feature_names is None else
        f" ({self.feature_names[index]!r})")
    count = self.unseen.setdefault(label, 0)
    self.unseen[label] = count + 1
    if not count:
      warnings.warn(
          f"{self.path} row {line}, {label}: {text!r} is not one of the "
          "levels the model was trained on; read as a missing value (and so "
          "is any other unseen level)", formats.DataWarning, stacklevel=6)

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
              column_types=self._arrow_types(names, include, pa),
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
      block = self._arrow_block(batch)
      if block is None:
        return  # an unseen level: the reference parser warns with its row
      if np.isinf(block).any() or (not self._na and np.isnan(block).any()):
        return  # let the reference parser name the row
      pending.append(block)
      while sum(len(b) for b in pending) >= block_rows:
        merged = np.concatenate(pending)
        yield merged[:block_rows]
        pending = [merged[block_rows:]]
    if pending and sum(len(b) for b in pending):
      yield np.concatenate(pending)

  def _arrow_types(self, names, include, pa):
    types = {name: pa.float64() for name in names}
    for slot, lookup in enumerate(self.lookups or ()):
      if lookup is not None:
        types[include[slot]] = pa.string()
    return types

  def _arrow_block(self, batch):
    """A record batch -> float64 [rows, width], level codes for the
    categorical columns; None if a cell is not a level."""
    import pyarrow as pa  # pylint: disable=g-import-not-at-top
    import pyarrow.compute as pc  # pylint: disable=g-import-not-at-top
    out = []
    for slot, column in enumerate(batch.columns):
      lookup = None if self.lookups is None else self.lookups[slot]
      if lookup is None:
        out.append(np.asarray(column.to_numpy(zero_copy_only=False),
                              np.float64))
        continue
      text = pc.utf8_trim_whitespace(column)
      text = pc.if_else(pc.is_in(text, value_set=pa.array(list(self._na))),
                        pa.scalar(None, pa.string()), text)
      if lookup.folds_case:
        text = pc.utf8_lower(text)
      codes = pc.index_in(text, value_set=pa.array(lookup.keys()))
      if pc.sum(pc.cast(pc.and_(pc.is_null(codes), pc.is_valid(text)),
                        pa.int64())).as_py():
        return None
      out.append(np.asarray(pc.cast(codes, pa.float64()).to_numpy(
          zero_copy_only=False), np.float64))
    return np.stack(out, axis=1)

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
