"""Column types: which columns of a table are real numbers and which hold
categories (text, booleans), found from the cells by rules a user can read,
overridable by name, and the map between a level's text and the code the
model sees. No TensorFlow.

A categorical column reaches the model as level codes 0 .. L - 1 (float,
NaN where missing); `categories` is then one entry per column: None for a
real column, the tuple of level texts for a categorical one (code i is
level i). The rules (`infer_kind`, `order_levels`):

- a column whose non-missing cells are numbers is `real` (as before types
  existed: all-numeric tables are read exactly as they were);
- a column where more than half of the distinct non-missing cells are not
  numbers holds text; otherwise its few non-numbers are errors, named by
  row and column (a typo in a numeric column is not a category);
- text whose levels are one of the boolean pairs (`true/false`, `yes/no`,
  `t/f`, `y/n`, in any case) is `binary`, levels in that order (false
  first); other text is `categorical`, levels sorted;
- text with more than `MAX_LEVELS` distinct values, or more than
  `MIN_IDENTIFIER_LEVELS` of them making up more than half its cells (an
  identifier, a name, free text) is not a category: the column is left
  out with a warning naming it, unless the user types it.

`--column-types name=categorical` (Python: `column_types={"name":
"categorical"}`) makes a numeric column categorical (its distinct cell
texts are the levels), `name=real` insists on numbers (a text cell is then
an error), and `name=drop` leaves a column out.
"""

import warnings

import numpy as np

from tfvae import validation

REAL = "real"
POSITIVE = "positive"
COUNT = "count"
CATEGORICAL = "categorical"
BINARY = "binary"
DROP = "drop"
TYPES = (REAL, POSITIVE, COUNT, CATEGORICAL, BINARY, DROP)
# The types of numeric columns (read as numbers; `NUMERIC_TYPES` of the
# model's `column_types`).
NUMERIC_TYPES = (REAL, POSITIVE, COUNT)
# A strictly positive column is `positive` when its skewness is above this
# and its logarithm's is smaller in magnitude (the log scale suits it).
POSITIVE_MIN_SKEW = 1.0
# A column of non-negative integers is a `count` with at least this many
# distinct values (fewer are atoms of a real column: two values are a
# binary column written as numbers).
COUNT_MIN_VALUES = 3
# Above this many distinct texts a column is not a category (each level is
# an atom slot of every column, `tfvae.heads.LikelihoodHead`).
MAX_LEVELS = 64
# A text column with more distinct values than this, and more than half
# of its cells distinct, is an identifier (or free text), not a category.
MIN_IDENTIFIER_LEVELS = 10
# The rows whose cells decide each column's kind (the levels of a text
# column come from every row).
INFER_ROWS = 10_000
BOOLEAN_PAIRS = (("false", "true"), ("no", "yes"), ("f", "t"), ("n", "y"))

DataWarning = validation.DataWarning


def is_number(text):
  """Whether a cell's text (stripped) is a number, as the readers parse."""
  from tfvae.data import formats  # pylint: disable=g-import-not-at-top
  return formats.parse_number(text) is not None


def infer_kind(cells):
  """`REAL` or `CATEGORICAL` for a column from its non-missing cell texts.

  Text when more than half of the distinct cells are not numbers (so that
  a numeric column with a typo stays numeric and the typo is reported).
  """
  distinct = set(cells)
  if not distinct:
    return REAL
  text = sum(1 for cell in distinct if not is_number(cell))
  return CATEGORICAL if 2 * text > len(distinct) else REAL


def boolean_pair(levels):
  """The boolean pair (false, true) that `levels` spell in some case, or
  None."""
  lowered = {level.lower() for level in levels}
  for pair in BOOLEAN_PAIRS:
    if lowered and lowered <= set(pair):
      return pair
  return None


def order_levels(levels, numeric=False):
  """A column's levels in code order: a boolean pair false first, numbers
  by value (`numeric`), other text sorted."""
  pair = boolean_pair(levels)
  if pair is not None and not numeric:
    return pair
  if numeric:
    return tuple(sorted(set(levels), key=float))
  return tuple(sorted(set(levels)))


def type_name(levels):
  """The type a column's `categories` entry shows: real, binary or
  categorical."""
  if levels is None:
    return REAL
  return BINARY if boolean_pair(levels) is not None else CATEGORICAL


class Lookup:
  """Maps a categorical column's cell texts to codes 0 .. L - 1.

  Cells are stripped; a boolean column's cells match in any case.
  """

  def __init__(self, levels):
    self.levels = tuple(levels)
    self.folds_case = boolean_pair(self.levels) is not None
    self._codes = {self._key(level): code
                   for code, level in enumerate(self.levels)}

  def _key(self, text):
    text = text.strip()
    return text.lower() if self.folds_case else text

  def code(self, text):
    """The code of a cell's text, or None when it is not a level."""
    return self._codes.get(self._key(text))

  def keys(self):
    """The texts the codes are looked up by (lower case for booleans)."""
    return list(self._codes)


def lookups(categories):
  """(categories, lookups) for a reader: None and None when no column is
  categorical, else the tuple and a `Lookup` (or None) per column."""
  if categories is None or all(levels is None for levels in categories):
    return None, None
  return tuple(categories), [None if levels is None else Lookup(levels)
                             for levels in categories]


def parse_column_types(text):
  """`"age=count,city=categorical"` (the CLI's `--column-types`) -> dict.

  Raises:
    ValueError: an item is not `name=type` or names an unknown type.
  """
  types = {}
  for item in (text or "").split(","):
    if not item.strip():
      continue
    name, sep, kind = item.partition("=")
    name, kind = name.strip(), kind.strip().lower()
    if not sep or not name:
      raise ValueError(f"--column-types: {item.strip()!r} is not name=type")
    check_type(kind, name)
    types[name] = kind
  return types


def check_type(kind, name):
  """Raises ValueError unless `kind` is one of `TYPES`."""
  if kind not in TYPES:
    raise ValueError(f"column {name!r}: unknown type {kind!r}; expected one "
                     f"of {', '.join(TYPES)}")
  return kind


def check_overrides(column_types, names, source):
  """Checks that every column `column_types` names is a column of the
  table; returns the dict (empty for None)."""
  column_types = dict(column_types or {})
  for name, kind in column_types.items():
    check_type(kind, name)
    if names is None or name not in names:
      shown = ("the file has no header" if names is None else
               "its columns are " + ", ".join(repr(n) for n in names))
      raise ValueError(f"{source}: column_types names {name!r}, which is not "
                       f"a column ({shown})")
  return column_types


def with_selection(column_types, chosen, names, source):
  """`column_types` with every column outside `chosen` (the `--columns`
  names; empty: all) typed `drop`.

  Raises:
    ValueError: `chosen` names a column the table lacks, the table has no
      header, or a chosen column is also typed `drop`.
  """
  column_types = dict(column_types or {})
  if not chosen:
    return column_types
  if names is None:
    raise ValueError(f"{source}: columns can be chosen by name only in a "
                     "file with a header")
  missing = [name for name in chosen if name not in names]
  if missing:
    raise ValueError(
        f"{source}: --columns names {', '.join(repr(n) for n in missing)}, "
        f"not a column (its columns are {', '.join(repr(n) for n in names)})")
  dropped = [name for name in chosen if column_types.get(name) == DROP]
  if dropped:
    raise ValueError(f"{source}: {', '.join(repr(n) for n in dropped)} both "
                     "chosen and dropped")
  for name in names:
    if name not in chosen:
      column_types[name] = DROP
  return column_types


def decide(names, sample_cells, level_counts, column_types, source):
  """Each column's entry of `categories`, and the columns left out.

  Args:
    names: the column names (or None).
    sample_cells: per column, the non-missing cell texts of the first rows.
    level_counts: callable(columns) -> per column a dict of every distinct
      non-missing text in the file (stripped) to its count, stopping at
      more than `MAX_LEVELS` (reads the file once).
    column_types: dict name -> type (checked), overriding the inference.
    source: the file, for messages.

  Returns:
    (categories, kept): `categories` a list of None or level tuples for the
    kept columns, `kept` the indices of the kept columns.
  """
  def label(index):
    return validation.column_label(index, names)

  kinds = []
  for index, cells in enumerate(sample_cells):
    name = None if names is None else names[index]
    forced = column_types.get(name)
    kinds.append(forced if forced is not None else infer_kind(cells))
  text_columns = [i for i, kind in enumerate(kinds)
                  if kind in (CATEGORICAL, BINARY)]
  counts = level_counts(text_columns) if text_columns else {}
  categories, kept = [], []
  for index, kind in enumerate(kinds):
    if kind == DROP:
      continue
    if kind in NUMERIC_TYPES:
      categories.append(None)
      kept.append(index)
      continue
    found = counts[index]
    forced = names is not None and names[index] in column_types
    if not forced and len(found) > MIN_IDENTIFIER_LEVELS and (
        2 * len(found) > sum(found.values())):
      shown = (f"more than {MAX_LEVELS}" if len(found) > MAX_LEVELS else
               f"{len(found)}")
      warnings.warn(
          f"{source}, {label(index)}: {shown} distinct texts in "
          f"{'its' if len(found) > MAX_LEVELS else sum(found.values())} "
          "cells (an identifier or free text, not a category): the column is "
          "not used", DataWarning, stacklevel=5)
      continue
    if len(found) > MAX_LEVELS:
      if forced:
        raise ValueError(
            f"{source}, {label(index)}: more than {MAX_LEVELS} distinct "
            f"values, too many levels for a categorical column")
      warnings.warn(
          f"{source}, {label(index)}: more than {MAX_LEVELS} distinct texts "
          "(an identifier, a name or free text, not a category): the column "
          "is not used", DataWarning, stacklevel=5)
      continue
    if not found:
      raise ValueError(f"{source}, {label(index)}: every value is missing")
    numeric = all(is_number(level) for level in found)
    levels = order_levels(list(found), numeric=numeric)
    if kind == BINARY and len(levels) > 2:
      raise ValueError(f"{source}, {label(index)}: typed binary but holds "
                       f"{len(levels)} levels ({', '.join(levels[:5])}, ...)")
    if boolean_pair(levels) is not None:
      # 'True', 'TRUE' and 'true' are one level.
      levels = boolean_pair(levels)
    categories.append(levels)
    kept.append(index)
  return categories, kept


def infer_numeric_type(column):
  """`REAL`, `POSITIVE` or `COUNT` for a numeric column from its values.

  - strictly positive values whose skewness is above `POSITIVE_MIN_SKEW`
    and whose logarithms are less skewed: `positive` (modelled on the log
    scale, `tfvae.preprocessing.Standardization`);
  - otherwise non-negative integers with at least `COUNT_MIN_VALUES`
    distinct values, on the grid of the integers (their differences have
    no common divisor above 1: grams recorded by 25 are a measurement, not
    a count), starting near 0 (the smallest below the range: years such as
    2007 .. 2009 or lengths of 172 .. 231 mm are measurements in whole
    units): `count` (a probability for each integer);
  - otherwise `real`.

  Args:
    column: float64 [N], NaN where missing.
  """
  observed = np.asarray(column, np.float64)
  observed = observed[np.isfinite(observed)]
  if len(np.unique(observed[:10_000])) < COUNT_MIN_VALUES:
    return REAL
  if observed.min() > 0 and _skewness(observed) > POSITIVE_MIN_SKEW and (
      abs(_skewness(np.log(observed))) < _skewness(observed)):
    return POSITIVE
  low, high = observed.min(), observed.max()
  if (low >= 0 and low < high - low and high < 2.0**53 and
      np.all(observed == np.round(observed)) and
      np.gcd.reduce((observed - low).astype(np.int64)) == 1):
    return COUNT
  return REAL


def _skewness(values):
  centred = values - values.mean()
  spread = np.sqrt(np.mean(centred ** 2))
  return float(np.mean(centred ** 3) / spread ** 3) if spread > 0 else 0.0


def column_types_of(values, categories, names=None, overrides=None,
                    infer=True):
  """Every column's type, a tuple of D strings (`TYPES` but `drop`).

  Categorical columns are `categorical` or `binary` (their levels say);
  a numeric column takes its type from `overrides` (name -> type), else
  `infer_numeric_type` when `infer`, else `real`.

  Args:
    values: float64 [N, D] numbers and level codes (NaN missing).
    categories: the columns' `categories` (None: every column numeric).
    names: the column names or None.
    overrides: optional dict name -> type (the `--column-types`).
    infer: whether numeric columns not overridden are typed from values.
  """
  values = np.asarray(values, np.float64)
  width = values.shape[1]
  categories = categories or (None,) * width
  overrides = overrides or {}
  types = []
  for index in range(width):
    levels = categories[index]
    if levels is not None:
      types.append(type_name(levels))
      continue
    forced = overrides.get(names[index]) if names is not None else None
    if forced in NUMERIC_TYPES:
      types.append(forced)
    elif infer:
      types.append(infer_numeric_type(values[:, index]))
    else:
      types.append(REAL)
  return tuple(types)


def check_numeric_values(values, column_types, names=None, source="x",
                         first_row=0, hint="type it real with --column-types "
                         "to model it as is"):
  """Raises ValueError naming the row and column of the first value a
  column's type rules out: a value <= 0 in a `positive` column, a negative
  or fractional one in a `count` column (NaN is missing, never an error).

  Args:
    values: float [N, D].
    column_types: D type strings (None: nothing to check).
    names: column names or None.
    source: what the rows are, for the message.
    first_row: the row number of values[0] in `source` (1-based rows are
      the caller's choice).
  """
  if column_types is None:
    return
  values = np.asarray(values, np.float64)
  for index, kind in enumerate(column_types):
    if kind not in (POSITIVE, COUNT):
      continue
    column = values[:, index]
    with np.errstate(invalid="ignore"):
      if kind == POSITIVE:
        bad = column <= 0
        rule = "a positive column holds values above 0"
      else:
        bad = (column < 0) | (column != np.round(column))
        rule = "a count column holds non-negative integers"
    bad &= ~np.isnan(column)
    if bad.any():
      row = int(np.flatnonzero(bad)[0])
      raise ValueError(
          f"{source} row {first_row + row}, "
          f"{validation.column_label(index, names)}: {float(column[row])!r} "
          f"({rule}; {hint})")


def describe(categories, feature_names, values, column_types=None):
  """One line per column for the summary: name, type, levels or range.

  Args:
    categories: the model's `categories` (None: every column real).
    feature_names: names or None.
    values: float64 [N, D] codes and numbers (NaN missing).
    column_types: optional D type strings (the model's `column_types`);
      default real for every numeric column.
  """
  width = values.shape[1]
  categories = categories or (None,) * width
  lines = []
  for index in range(width):
    name = (feature_names[index] if feature_names is not None
            else f"column {index + 1}")
    column = values[:, index]
    observed = column[~np.isnan(column)]
    missing = 1.0 - len(observed) / max(len(column), 1)
    gaps = f", {missing:.0%} missing" if missing else ""
    levels = categories[index]
    if levels is None:
      span = (f"{observed.min():.4g} .. {observed.max():.4g}" if len(observed)
              else "no values")
      kind = REAL if column_types is None else column_types[index]
      lines.append(f"{name}: {kind}, {span}{gaps}")
      continue
    shown = ", ".join(levels[:6]) + (", ..." if len(levels) > 6 else "")
    lines.append(f"{name}: {type_name(levels)}, {len(levels)} levels "
                 f"({shown}){gaps}")
  return lines


def decode(values, categories):
  """Codes -> level texts: an object array [N, D] of the values, with each
  categorical column's codes replaced by its level (None where missing)."""
  values = np.asarray(values)
  out = values.astype(object)
  for index, levels in enumerate(categories or ()):
    if levels is None:
      continue
    column = values[..., index]
    texts = np.empty(column.shape, object)
    observed = ~np.isnan(column)
    texts[observed] = np.asarray(levels, object)[column[observed].astype(int)]
    out[..., index] = texts
  return out


def to_frame(values, categories, names=None, index=None):
  """Rows of codes and numbers [N, D] -> a pandas DataFrame in the table's
  types: a categorical column's level texts (None where missing), real
  columns as float64. Needs pandas (the caller passed a DataFrame, or asked
  for one)."""
  try:
    import pandas  # pylint: disable=g-import-not-at-top
  except ImportError:
    raise ImportError("rows as a DataFrame need pandas (pip install "
                      "pandas)") from None
  values = np.asarray(values, np.float64)
  names = list(names) if names is not None else list(range(values.shape[1]))
  texts = decode(values, categories)
  data = {name: (values[:, i] if categories is None or categories[i] is None
                 else texts[:, i])
          for i, name in enumerate(names)}
  return pandas.DataFrame(data, index=index, columns=names)


def is_frame(x):
  """True for a pandas DataFrame (without importing pandas)."""
  return hasattr(x, "columns") and hasattr(x, "iloc")


def encode_frame(frame, categories, source="x"):
  """A table of texts and numbers (a pandas DataFrame or object array,
  columns in the model's order) -> float64 codes and numbers [N, D].

  A categorical column's cells are its levels (any case for booleans;
  numbers are matched by their text), None/NaN missing; a cell that is not
  a level is an error naming its row and column.
  """
  array = np.asarray(frame.to_numpy() if hasattr(frame, "to_numpy")
                     else frame, dtype=object)
  if array.ndim != 2 or array.shape[1] != len(categories):
    raise ValueError(f"{source}: expected {len(categories)} columns, got "
                     f"shape {array.shape}")
  out = np.empty(array.shape, np.float64)
  for index, levels in enumerate(categories):
    column = array[:, index]
    if levels is None:
      try:
        out[:, index] = np.asarray(
            [np.nan if cell is None else cell for cell in column], np.float64)
      except (TypeError, ValueError):
        bad = next(row for row, cell in enumerate(column)
                   if not _is_float(cell))
        raise ValueError(f"{source} row {bad}, column {index + 1}: "
                         f"{column[bad]!r} is not a number (the column is "
                         "real)") from None
      continue
    lookup = Lookup(levels)
    for row, cell in enumerate(column):
      if cell is None or (isinstance(cell, float) and np.isnan(cell)):
        out[row, index] = np.nan
        continue
      if isinstance(cell, (bool, np.bool_)) and lookup.folds_case:
        out[row, index] = float(bool(cell))  # false, no, f, n first
        continue
      code = lookup.code(_cell_text(cell))
      if code is None:
        raise ValueError(f"{source} row {row}, column {index + 1}: {cell!r} "
                         f"is not one of the column's levels "
                         f"({', '.join(levels[:8])})")
      out[row, index] = code
  return out


def _is_float(cell):
  try:
    float(np.nan if cell is None else cell)
  except (TypeError, ValueError):
    return False
  return True


def _cell_text(cell):
  if isinstance(cell, (bool, np.bool_)):
    return "true" if cell else "false"
  if isinstance(cell, (float, np.floating)) and float(cell).is_integer():
    return str(int(cell))
  return str(cell)


def check_codes(x, categories, source="x"):
  """Raises ValueError unless each categorical column of x [N, D] holds
  codes 0 .. L - 1 or NaN."""
  for index, levels in enumerate(categories or ()):
    if levels is None:
      continue
    column = x[:, index]
    observed = ~np.isnan(column)
    bad = observed & ((column != np.round(column)) | (column < 0) |
                      (column >= len(levels)))
    if bad.any():
      row = int(np.flatnonzero(bad)[0])
      raise ValueError(
          f"{source} row {row}, column {index + 1}: {float(column[row])!r} is not a "
          f"level code of the categorical column (0 .. {len(levels) - 1}; "
          "pass a DataFrame of texts to have them encoded)")
