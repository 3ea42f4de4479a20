"""Every input check and its message, in one place.

Numbers (ints, floats, seeds, widths, counts, versions), arrays and their
columns, datasets and sample weights: the model's constructor and methods,
the readers, the served graphs' entry and the command line's argparse
types (`tfvae.cli`) all call these, so the same bad value gets the same
answer wherever it enters. Messages name the value and what was expected:
`"num_samples must be a positive integer, got 0"`. Importing this module
does not import TensorFlow.
"""

import math
import warnings

import numpy as np



class DataWarning(UserWarning):
  """Something about the data the user should know, e.g. dropped rows, or
  columns matched by name."""


class UntrainedModelWarning(UserWarning):
  """Scoring, imputing or sampling with a model no optimizer step changed."""


def warn_if_untrained(model, what):
  """Warns when `what` (scoring, imputing, sampling) uses a model that no
  optimizer step has changed: its answers describe random weights."""
  optimizer = getattr(model, "optimizer", None)
  # `.numpy()`: under tf.distribute the counter is a mirrored variable.
  if optimizer is None or int(optimizer.iterations.numpy()) == 0:
    warnings.warn(
        f"{what} with a model that was never trained: its numbers describe "
        "random initial weights (call fit first, or load a trained "
        "checkpoint)", UntrainedModelWarning, stacklevel=4)


def check_compile_arguments(**arguments):
  """Refuses `VAE.compile`'s loss and metric arguments: a VAE minimises its
  negative ELBO and its metrics are fixed, so they would be ignored."""
  for name, value in arguments.items():
    if value:
      raise ValueError(
          f"VAE.compile({name}=...) is not supported: a VAE minimises its "
          "negative ELBO and reports loss, reconstruction_nll and kl; "
          "pass only the optimizer (and Keras' execution options)")




def check_positive_int(value, name):
  """Returns `value` as an int, or raises `ValueError` if it is not one >= 1."""
  if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or (
      value < 1):
    if isinstance(value, float) and value.is_integer() and value >= 1:
      return int(value)
    raise ValueError(f"{name} must be a positive integer, got {value!r}")
  return int(value)


def check_non_negative_int(value, name):
  """Returns `value` as an int, or raises `ValueError` if it is not one >= 0."""
  if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or (
      value < 0):
    raise ValueError(f"{name} must be an integer >= 0, got {value!r}")
  return int(value)


def check_widths(units, name="hidden_units"):
  """Returns layer widths as a tuple of positive ints (empty: linear).

  Raises:
    ValueError: `units` is not a sequence of positive integers.
  """
  if isinstance(units, (str, bytes)) or not hasattr(units, "__iter__"):
    raise ValueError(
        f"{name} must be a sequence of positive integers, got {units!r}")
  return tuple(check_positive_int(u, f"{name} entry") for u in units)


def check_finite(value, name, minimum=None, exclusive=False):
  """Returns `value` as a float, or raises `ValueError` if it is NaN, infinite
  or below `minimum` (at or below it when `exclusive`)."""
  if isinstance(value, bool):
    raise ValueError(f"{name} must be a number, got {value!r}")
  try:
    number = float(value)
  except (TypeError, ValueError):
    raise ValueError(f"{name} must be a number, got {value!r}") from None
  if not math.isfinite(number):
    raise ValueError(f"{name} must be a finite number, got {value!r}")
  if minimum is not None and (number < minimum or
                              (exclusive and number == minimum)):
    relation = ">" if exclusive else ">="
    raise ValueError(
        f"{name} must be a number {relation} {minimum:g}, got {value!r}")
  return number


def check_seed(seed, name="seed"):
  """Returns a seed as a non-negative int below 2**63, or None."""
  if seed is None:
    return None
  if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or (
      not 0 <= seed < 2**63):
    raise ValueError(f"{name} must be an integer in [0, 2**63), got {seed!r}")
  return int(seed)


# Importance samples per row: the estimate's standard error falls as
# 1 / sqrt(K), so a million is already a thousand times below one sample's,
# and more only makes the work run for hours.
MAX_NUM_SAMPLES = 10**6


def check_num_samples(value, name="num_samples"):
  """Returns a number of importance samples per row, in [1, 10**6]."""
  value = check_positive_int(value, name)
  if value > MAX_NUM_SAMPLES:
    raise ValueError(
        f"{name} must be at most {MAX_NUM_SAMPLES:,} importance samples per "
        f"row, got {value:,} (the estimate's error shrinks as 1/sqrt(K): "
        "more would only run for hours)")
  return value


def check_num_imputations(value, num_rows, width, name="num_imputations"):
  """Returns a number of imputations M, checked against the memory that M
  completed copies of `num_rows` rows of `width` values need."""
  from tfvae import runtime  # pylint: disable=g-import-not-at-top
  value = check_positive_int(value, name)
  # The completed copies and one chunk of draws, float64, and the draws'
  # shared uniforms [M, 1 + 2 D].
  needed = 8 * value * (2 * num_rows * width + 1 + 2 * width)
  runtime.check_memory(needed, f"{name}={value:,} for {num_rows:,} rows",
                       f"lower {name}, or impute fewer rows at a time")
  return value


# TF Serving reads version folder names as signed 64-bit integers, and
# ignores folders it cannot read so.
MAX_VERSION = 2**63 - 1


def check_version(version, name="version"):
  """Returns an export version as TF Serving reads it: an int in
  [1, 2**63 - 1], or raises `ValueError` naming the value."""
  expected = (f"{name} must be a positive integer up to 2**63 - 1 (TF "
              f"Serving reads 64-bit versions), got {version!r}")
  try:
    version = check_positive_int(version, name)
  except ValueError:
    raise ValueError(expected) from None
  if version > MAX_VERSION:
    raise ValueError(expected)
  return version


def column_label(index, feature_names):
  """A column as users see it: its number (1-based) and its header name."""
  if feature_names is not None and index < len(feature_names):
    return f"column {index + 1} ({feature_names[index]!r})"
  return f"column {index + 1}"




def condition_row(given, width, feature_names=None, name="given",
                  categories=None):
  """A condition for conditional generation as a row [width] of float64:
  the given values, NaN for those to draw.

  Args:
    given: a sequence of `width` numbers (NaN: draw it), or a dict
      mapping columns to values: a column is its name (when the model has
      names) or its 0-based index.
    width: the model's number of columns.
    feature_names: the model's column names, or None.
    name: what the condition is called in messages.
    categories: the model's categories (None, or per column None or its
      levels): a categorical column is given by its level's text (or its
      code).

  Raises:
    ValueError: an unknown column, a value that is not a finite number, a
      column given twice, or a condition that gives every column (nothing
      would be left to draw).
  """
  if isinstance(given, dict):
    row = np.full(width, np.nan)
    names = list(feature_names) if feature_names is not None else []
    for key, value in given.items():
      if isinstance(key, str) and key in names:
        index = names.index(key)
      elif isinstance(key, (int, np.integer)) and not isinstance(key, bool) \
          and 0 <= key < width:
        index = int(key)
      else:
        known = (f"one of {shown_names(names)}" if names else
                 f"an index in 0..{width - 1}")
        raise ValueError(f"{name}: no column {key!r}; expected {known}")
      if not np.isnan(row[index]):
        raise ValueError(f"{name}: {column_label(index, feature_names)} is "
                         "given twice")
      levels = categories[index] if categories is not None else None
      if levels is not None and isinstance(value, str):
        from tfvae.data import columns  # pylint: disable=g-import-not-at-top
        code = columns.Lookup(levels).code(value)
        if code is None:
          raise ValueError(
              f"{name}: {column_label(index, feature_names)}: {value!r} is "
              f"not one of its levels ({', '.join(levels[:8])}"
              f"{', ...' if len(levels) > 8 else ''})")
        value = code
      try:
        number = float(value)
      except (TypeError, ValueError):
        raise ValueError(f"{name}: {column_label(index, feature_names)}: "
                         f"{value!r} is not a number") from None
      if levels is not None and number not in range(len(levels)):
        raise ValueError(f"{name}: {column_label(index, feature_names)}: "
                         f"{value!r} is not a level code (0 to "
                         f"{len(levels) - 1})")
      if not np.isfinite(number):
        raise ValueError(f"{name}: {column_label(index, feature_names)}: "
                         f"expected a finite number, got {value!r}")
      row[index] = number
  else:
    row = validate_array(np.asarray(given, np.float64).reshape(1, -1), name,
                         width)[0]
  if not np.isnan(row).any():
    raise ValueError(f"{name} gives every column: nothing is left to draw")
  return row


def parse_condition(text, name="--given"):
  """'age=30,#3=1.5' -> {'age': '30', '#3': '1.5'}: the columns and values
  as written (the command resolves the columns, `condition_row` checks
  the values)."""
  given = {}
  for part in text.split(","):
    if not part.strip():
      continue
    column, sep, value = part.partition("=")
    column = column.strip()
    if not sep or not column:
      raise ValueError(f"{name}: expected column=value pairs separated by "
                       f"commas, got {part.strip()!r}")
    if column in given:
      raise ValueError(f"{name}: column {column!r} is given twice")
    given[column] = value.strip()
  if not given:
    raise ValueError(f"{name}: expected column=value pairs, got {text!r}")
  return given


def shown_names(names, limit=8):
  """Up to `limit` names, quoted, for a one-line message."""
  shown = ", ".join(repr(n) for n in names[:limit])
  return shown + (f", ... ({len(names)} in all)" if len(names) > limit else "")


def check_unique_names(names, source):
  """Raises `ValueError` if a column name appears more than once."""
  if names is None:
    return
  seen = {}
  for index, name in enumerate(names):
    if name in seen:
      raise ValueError(
          f"{source}: columns {seen[name] + 1} and {index + 1} are both named "
          f"{name!r}; column names must be unique (rename one)")
    seen[name] = index


def column_order(names, expected_names, source):
  """Matches a table's columns to the model's by name.

  Args:
    names: the table's column names, or None when it has none.
    expected_names: the names the model was trained with, or None.
    source: the table's name for messages.

  Returns:
    None when either side has no names (columns are then taken by
    position), else the list `order` such that `table[:, order]` holds the
    model's columns in the model's order.

  Raises:
    ValueError: a model column is missing, or the table has a column the
      model does not know (both named, in one line).
  """
  if names is None or expected_names is None:
    return None
  names, expected_names = list(names), list(expected_names)
  index = {name: i for i, name in enumerate(names)}
  missing = [name for name in expected_names if name not in index]
  unknown = [name for name in names if name not in set(expected_names)]
  if missing or unknown:
    parts = []
    if missing:
      parts.append(f"missing the model's column{'s' * (len(missing) > 1)} "
                   f"{shown_names(missing)}")
    if unknown:
      parts.append(f"unknown column{'s' * (len(unknown) > 1)} "
                   f"{shown_names(unknown)}")
    raise ValueError(f"{source}: {'; '.join(parts)} (the model's columns: "
                     f"{shown_names(expected_names)})")
  order = [index[name] for name in expected_names]
  if order != list(range(len(names))):
    warnings.warn(f"{source}: columns matched to the model's by name (the "
                  "file's order differs)", DataWarning, stacklevel=3)
  return order




def check_columns_observed(values, source, feature_names=None):
  """Raises `ValueError` naming the first column with no observed value."""
  observed = ~np.isnan(values)
  empty_columns = np.flatnonzero(~observed.any(axis=0))
  if len(empty_columns):
    raise ValueError(
        f"{source}: {column_label(int(empty_columns[0]), feature_names)} has "
        "no observed value (every cell is missing); drop the column")




def validate_array(x, source="data", expected_width=None, allow_missing=True,
                   row_offset=0, expected_names=None):
  """Checks an in-memory array and returns it as float64 [N, D].

  Args:
    x: array-like [num_examples, num_features] of real numbers; NaN marks a
      missing value.
    source: a name for messages (a file name, "x_val").
    expected_width: optional int, the width the model expects.
    allow_missing: whether NaN is accepted.
    row_offset: added to reported row indices (for streamed chunks).
    expected_names: optional column names of the model: a table with
      named columns (a pandas DataFrame) is matched to them by name
      (`column_order`).

  Returns:
    float64 numpy array [num_examples, num_features] (x itself when it
    already is one).

  Raises:
    TypeError: the array is not numeric.
    ValueError: wrong rank, empty, wrong width, infinite values (the count
      and the first offending row and column are named), or NaN when
      `allow_missing` is False.
  """
  if hasattr(x, "to_numpy") and not isinstance(x, np.ndarray):
    columns = getattr(x, "columns", None)
    order = (None if columns is None or expected_names is None else
             column_order([str(c) for c in columns], expected_names, source))
    x = x.to_numpy()
    if order is not None:
      x = x[:, order]
  array = np.asarray(x)
  if array.dtype == object or not (np.issubdtype(array.dtype, np.number) or
                                   array.dtype == bool):
    raise TypeError(
        f"{source}: expected a numeric array, got dtype {array.dtype}")
  if np.issubdtype(array.dtype, np.complexfloating):
    raise TypeError(f"{source}: complex values are not supported")
  if array.ndim != 2:
    raise ValueError(
        f"{source}: expected a 2-D array [num_examples, num_features], got "
        f"shape {array.shape}")
  if array.shape[0] == 0 or array.shape[1] == 0:
    raise ValueError(f"{source}: the array is empty (shape {array.shape})")
  if expected_width is not None and array.shape[1] != expected_width:
    raise ValueError(f"{source}: {array.shape[1]} columns, but the model "
                     f"expects {expected_width}")
  values = array.astype(np.float64, copy=False)
  infinite = np.isinf(values)
  if infinite.any():
    rows, cols = np.nonzero(infinite)
    raise ValueError(
        f"{source}: {int(infinite.sum())} infinite values, the first at row "
        f"{int(rows[0]) + row_offset} (0-based), column {int(cols[0])}; "
        "tfvae needs finite values (NaN marks a missing value)")
  if not allow_missing and np.isnan(values).any():
    rows, cols = np.nonzero(np.isnan(values))
    raise ValueError(
        f"{source}: {int(np.isnan(values).sum())} NaN values, the first at "
        f"row {int(rows[0]) + row_offset} (0-based), column {int(cols[0])}")
  return values




def check_fraction(value, name="validation_split"):
  """Returns a fraction in [0, 1) as a float (a validation split)."""
  value = check_finite(value, name)
  if not 0 <= value < 1:
    raise ValueError(f"{name} must be a fraction in [0, 1), got {value!r}")
  return value


def check_trim(value, name="trim"):
  """Returns a share of rows to leave out in [0, 0.5) as a float."""
  value = check_finite(value, name)
  if not 0 <= value < 0.5:
    raise ValueError(f"{name} must be a share in [0, 0.5), got {value!r}")
  return value


def check_contamination(value, name="contamination"):
  """Returns an expected share of anomalies in (0, 0.5] as a float."""
  value = check_finite(value, name)
  if not 0 < value <= 0.5:
    raise ValueError(f"{name} must be a share in (0, 0.5], got {value!r}")
  return value


# `fit` refuses values this many robust standard deviations (or raw units,
# without `adapt`) from the column's centre: float32 training overflows.
TRAINABLE_LIMIT = 1e8


def check_trainable(values, loc, scale, adapted, name="x"):
  """Raises `ValueError` for a value float32 training cannot use: more than
  `TRAINABLE_LIMIT` standard deviations (raw units when not `adapted`)
  from its column's centre (a fill value such as -9999999999, usually)."""
  with np.errstate(invalid="ignore"):
    far = np.abs((values - loc) / scale) > TRAINABLE_LIMIT
  if far.any():
    row, column = (int(i[0]) for i in np.nonzero(far))
    unit = ("robust standard deviations from the column's median"
            if adapted else "(raw values; call adapt(x) first)")
    raise ValueError(
        f"{name} row {row} (0-based), column {column}: "
        f"{float(values[row, column])!r}"
        f" is more than {TRAINABLE_LIMIT:g} {unit}; float32 training "
        "cannot use it (is it a fill value? mark it missing with NaN)")


def check_sample_weight(sample_weight, num_rows):
  """Returns per-row weights as float32 [num_rows], finite and >= 0."""
  weights = np.asarray(sample_weight, np.float64)
  if weights.shape != (num_rows,):
    raise ValueError(f"sample_weight has shape {weights.shape}, expected "
                     f"[{num_rows}] (one weight per row)")
  if not np.all(np.isfinite(weights)) or np.any(weights < 0):
    raise ValueError("sample_weight must be finite and >= 0")
  return weights.astype(np.float32)


def check_dataset(dataset, name, width):
  """Checks a `tf.data.Dataset`'s element spec: batches [batch_size, width]
  of numbers (or `(x, None, sample_weight)` tuples of them).

  Returns:
    The dataset.

  Raises:
    TypeError / ValueError: naming `name` and what the dataset yields.
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  spec = dataset.element_spec
  spec = spec[0] if isinstance(spec, tuple) else spec
  if not isinstance(spec, tf.TensorSpec):
    raise TypeError(f"{name}: the dataset must yield x tensors, or "
                    f"(x, None, sample_weight) tuples; got {spec}")
  if not (spec.dtype.is_floating or spec.dtype.is_integer):
    raise TypeError(f"{name}: the dataset yields {spec.dtype.name} "
                    "tensors, expected numbers")
  if spec.shape.rank == 1:
    raise ValueError(
        f"{name}: the dataset yields single rows of shape {spec.shape}; "
        "batch it first (dataset.batch(batch_size))")
  if spec.shape.rank is not None and spec.shape.rank != 2:
    raise ValueError(f"{name}: the dataset yields tensors of shape "
                     f"{spec.shape}, expected batches [batch_size, {width}]")
  found = spec.shape[-1] if spec.shape.rank else None
  if found is not None and found != width:
    raise ValueError(f"{name}: dataset elements have {found} columns, but "
                     f"the model expects {width}")
  return dataset


def refuse_infinity(*element):
  """A tensor (or a dataset element whose first part is x), checked in the
  graph: an infinite value stops the computation with a clear error (NaN is
  a missing value). For datasets (`dataset.map`) and served signatures,
  where values are not known until they run."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  x = element[0]
  # The values flow through the check (a control dependency alone can be
  # pruned from a graph): NaN set aside, then put back.
  gaps = tf.math.is_nan(x)
  checked = tf.debugging.check_numerics(
      tf.where(gaps, tf.zeros_like(x), x),
      "x contains infinite values; tfvae needs finite values (NaN marks a "
      "missing value)")
  x = tf.where(gaps, x, checked)
  return (x,) + element[1:] if len(element) > 1 else x


def refuse_non_finite(value, name):
  """A tensor checked in the graph: NaN or infinity stops the computation
  with an error naming `name` (for z, which has no missing values)."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  return tf.debugging.check_numerics(  # the values flow through the check
      value, f"{name} holds a NaN or infinite value")


def check_column_types(column_types, input_dim, feature_names=None,
                       categories=None):
  """Checks a model's `column_types` (see `tfvae.VAE`).

  Returns:
    None (every numeric column real), "auto" (typed by `adapt`), or a tuple
    of `input_dim` type strings, categorical columns typed by their levels.

  Raises:
    ValueError: an unknown type, a wrong length, a name that is not a
      column, a numeric type for a categorical column.
  """
  from tfvae.data import columns  # pylint: disable=g-import-not-at-top
  if column_types is None or (isinstance(column_types, str) and
                              column_types == "auto"):
    return column_types
  if isinstance(column_types, str):
    raise ValueError(f"column_types must be None, 'auto', a sequence of "
                     f"{input_dim} types or a dict name -> type, got "
                     f"{column_types!r}")
  if isinstance(column_types, dict):
    if feature_names is None:
      raise ValueError("column_types as a dict needs feature_names")
    unknown = [name for name in column_types if name not in feature_names]
    if unknown:
      raise ValueError(f"column_types names {unknown[0]!r}, not one of the "
                       f"columns ({', '.join(map(repr, feature_names))})")
    column_types = [column_types.get(name, columns.REAL)
                    for name in feature_names]
  column_types = [str(kind).lower() for kind in column_types]
  if len(column_types) != input_dim:
    raise ValueError(f"column_types must give {input_dim} types, got "
                     f"{len(column_types)}")
  levels = categories or (None,) * input_dim
  checked = []
  for index, kind in enumerate(column_types):
    label = column_label(index, feature_names)
    if levels[index] is not None:
      if kind in columns.NUMERIC_TYPES and kind != columns.REAL:
        raise ValueError(f"column_types: {label} is categorical, not {kind}")
      checked.append(columns.type_name(levels[index]))
      continue
    if kind not in columns.NUMERIC_TYPES:
      raise ValueError(f"column_types: {label}: {kind!r} is not a numeric "
                       f"type ({', '.join(columns.NUMERIC_TYPES)}; "
                       "categorical columns come from `categories`)")
    checked.append(kind)
  return tuple(checked)


def check_categories(categories, input_dim, num_atoms):
  """Checks a model's `categories` and returns them as a tuple.

  Args:
    categories: None (every column real), or a sequence of `input_dim`
      entries: None for a real column, or a categorical column's levels
      (distinct strings; the column holds their codes 0 .. L - 1).
    input_dim: the model's width.
    num_atoms: the model's atom slots ("auto" or an int): a categorical
      column's levels are its atoms, so explicit slots must hold them.

  Returns:
    None when no column is categorical, else a tuple of `input_dim`
    entries (None or a tuple of level strings).

  Raises:
    ValueError: wrong length, an empty or repeated level list, too few
      atom slots.
  """
  from tfvae.training import recipe  # pylint: disable=g-import-not-at-top
  if categories is None:
    return None
  if isinstance(categories, (str, bytes)) or len(categories) != input_dim:
    raise ValueError(f"categories must give one entry per column "
                     f"({input_dim}: None or the column's levels), got "
                     f"{categories!r}")
  checked = []
  for index, levels in enumerate(categories):
    if levels is None:
      checked.append(None)
      continue
    if isinstance(levels, (str, bytes)):
      raise ValueError(f"categories[{index}] must be a list of levels, got "
                       f"the string {levels!r}")
    levels = tuple(str(level) for level in levels)
    if not levels or len(set(levels)) != len(levels):
      raise ValueError(f"categories[{index}] must hold one or more distinct "
                       f"levels, got {levels!r}")
    checked.append(levels)
  if all(levels is None for levels in checked):
    return None
  most = max(len(levels) for levels in checked if levels is not None)
  if num_atoms != recipe.AUTO and num_atoms < most:
    raise ValueError(
        f"a categorical column's levels are its atoms: num_atoms={num_atoms} "
        f"cannot hold a column of {most} levels (pass num_atoms >= {most}, "
        "or 'auto'; the 'mse' family has no atoms)")
  return tuple(checked)


def check_model_settings(input_dim, latent_dim, hidden_units, likelihood, beta,
                         kl_warmup_steps, free_bits, num_train_samples,
                         missing_train_samples, min_df, df_transform,
                         posterior_scale_floor, likelihood_scale_floor,
                         missing_indicator, num_atoms, feature_names):
  """The `tfvae.VAE` constructor's settings, checked and completed.

  Settings left to the recipe (None or "auto": `latent_dim`,
  `hidden_units`, `num_train_samples`, `df_transform`, `num_atoms`) come
  back as "auto", except what the width alone decides: `latent_dim`
  (`tfvae.training.recipe.resolve`) and the snippet's architecture
  (`hidden_units="snippet"`: one layer as wide as the data, 5 latents).
  `missing_train_samples=None` becomes `max(20, num_train_samples)` once
  K is known, and the `mse` family has no atoms.

  Returns:
    dict of the settings, by name.

  Raises:
    ValueError: a setting is out of its range, named with its value.
  """
  from tfvae import families  # pylint: disable=g-import-not-at-top
  from tfvae.training import recipe  # pylint: disable=g-import-not-at-top
  input_dim = check_positive_int(input_dim, "input_dim")
  likelihood = families.check_family(likelihood)
  if isinstance(hidden_units, str) and hidden_units not in (recipe.AUTO,
                                                           recipe.SNIPPET):
    raise ValueError(f"hidden_units must be a sequence of positive integers, "
                     f"'{recipe.AUTO}' or '{recipe.SNIPPET}', got "
                     f"{hidden_units!r}")
  widths = recipe.resolve({"latent_dim": latent_dim,
                           "hidden_units": hidden_units}, 1, input_dim)
  latent_dim = widths["latent_dim"]
  if hidden_units == recipe.SNIPPET:
    hidden_units = widths["hidden_units"]
  free_bits = check_finite(free_bits, "free_bits", minimum=0)
  if recipe.is_unset(num_train_samples):
    # The recipe's bound is importance-weighted; free bits need the ELBO.
    num_train_samples = 1 if free_bits else recipe.AUTO
  else:
    num_train_samples = check_positive_int(num_train_samples,
                                           "num_train_samples")
  if free_bits and num_train_samples != 1:
    raise ValueError("free_bits applies to single-sample training; use "
                     "num_train_samples=1 with free_bits")
  if feature_names is not None:
    feature_names = tuple(str(name) for name in feature_names)
    if len(feature_names) != input_dim:
      raise ValueError(f"feature_names has {len(feature_names)} names, "
                       f"expected input_dim={input_dim}")
  if missing_train_samples is None and num_train_samples != recipe.AUTO:
    missing_train_samples = max(20, num_train_samples)
  if missing_train_samples is not None:
    missing_train_samples = check_positive_int(missing_train_samples,
                                               "missing_train_samples")
  if likelihood == families.MSE:
    num_atoms = 0
  elif recipe.is_unset(num_atoms):
    num_atoms = recipe.AUTO
  else:
    num_atoms = check_non_negative_int(num_atoms, "num_atoms")
  return {
      "input_dim": input_dim,
      "latent_dim": check_positive_int(latent_dim, "latent_dim"),
      "hidden_units": (recipe.AUTO if recipe.is_unset(hidden_units)
                       else check_widths(hidden_units)),
      "likelihood": likelihood,
      "beta": check_finite(beta, "beta", minimum=0),
      "kl_warmup_steps": check_non_negative_int(kl_warmup_steps,
                                                "kl_warmup_steps"),
      "free_bits": free_bits,
      "num_train_samples": num_train_samples,
      "missing_train_samples": missing_train_samples,
      "min_df": check_finite(min_df, "min_df", minimum=1),
      "df_transform": (recipe.AUTO if recipe.is_unset(df_transform)
                       else families.check_df_transform(df_transform)),
      "posterior_scale_floor": check_finite(
          posterior_scale_floor, "posterior_scale_floor", minimum=0),
      "likelihood_scale_floor": check_finite(
          likelihood_scale_floor, "likelihood_scale_floor", minimum=0,
          exclusive=True),
      "missing_indicator": bool(missing_indicator),
      "num_atoms": num_atoms,
      "feature_names": feature_names,
  }


# -- Inputs of the model's methods, as tensors --------------------------------


def checked_tensor(value, name, width, allow_missing=False):
  """A tensor (or array) [..., width] for the model's paths, checked.

  An array becomes a float32 tensor after its width is checked; a tensor
  keeps its dtype, and in a graph (a served signature) an op stops the call
  on a value that is infinite, or NaN unless `allow_missing`.
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  if isinstance(value, (tf.Tensor, tf.Variable)):
    if value.shape.rank and value.shape[-1] not in (None, width):
      raise ValueError(f"{name} has {value.shape[-1]} columns, but the model "
                       f"expects {width}")
    if tf.executing_eagerly():
      return value
    return (refuse_infinity(value) if allow_missing else
            refuse_non_finite(value, name))
  array = np.asarray(value)
  if array.ndim >= 1 and array.shape[-1] != width:
    raise ValueError(
        f"{name} has {array.shape[-1]} columns, but the model expects {width}")
  return tf.constant(array, dtype=tf.float32)


def data_tensor(x, width, feature_names=None):
  """x as a float Tensor [batch_size, width], checked the same way whatever
  its type: arrays, tables and eager tensors by `validate_array` (float64,
  columns matched by name); symbolic tensors (a served signature, a traced
  function) by an op that stops the call on an infinite value (NaN is a
  missing value)."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  if isinstance(x, (tf.Tensor, tf.Variable)):
    if not tf.executing_eagerly():
      return checked_tensor(x, "x", width, allow_missing=True)
    x = x.numpy()
  return tf.constant(validate_array(x, "x", width,
                                    expected_names=feature_names))


def check_no_targets(y, class_weight=None, action="trains"):
  """Refuses `fit`'s and `evaluate`'s y and class_weight: a VAE has none."""
  if y is not None:
    raise ValueError(f"a VAE {action} on x alone; pass y=None")
  if class_weight is not None:
    raise ValueError("a VAE has no classes; use sample_weight to weight rows")


def fit_input(value, name, width, feature_names=None, trainable=None):
  """What `fit`, `evaluate` and `predict` hand to Keras: float64 tensors
  (Keras would cast numpy to float32), or a checked dataset.

  Args:
    value: an array or table, a tensor, a batched `tf.data.Dataset`, or a
      `DatasetCreator` (one dataset per worker, passed through).
    name: the argument's name, for messages.
    width: the model's columns.
    feature_names: the model's column names.
    trainable: for training data, (loc, scale, adapted) of the model's
      standardisation: every column must hold a value, and no value may be
      beyond what float32 training can use.
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  import tf_keras  # pylint: disable=g-import-not-at-top
  if value is None:
    raise ValueError(f"{name}: no data given")
  if isinstance(value, tf_keras.utils.experimental.DatasetCreator):
    return value  # a dataset per worker (tf.distribute)
  if isinstance(value, tf.data.Dataset):
    return check_dataset(value, name, width).map(refuse_infinity)
  if isinstance(value, (tf.Tensor, tf.Variable)):
    value = value.numpy()
  values = validate_array(value, name, width, expected_names=feature_names)
  if trainable is not None:
    check_columns_observed(values, name, feature_names)
    check_trainable(values, *trainable, name)
    if not trainable[2]:  # not adapted
      warn_if_badly_scaled(values, stacklevel=5)
  return tf.constant(values)


def fit_sample_weight(sample_weight, x):
  """Per-row weights for `fit` / `evaluate` (None stays None)."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  if sample_weight is None:
    return None
  if isinstance(x, tf.data.Dataset):
    raise ValueError("with a dataset, put the weights in the dataset: "
                     "(x, None, sample_weight) elements")
  return check_sample_weight(sample_weight, x.shape[0])


def fit_num_rows(x, validation_split=0.0, validation_data=None):
  """The rows `fit` trains on, or None when it cannot tell (a dataset):
  all of x, or the part `validation_split` leaves (as Keras splits)."""
  if hasattr(x, "element_spec") or not hasattr(x, "__len__"):
    return None
  num_rows = len(x)
  if validation_split and validation_data is None:
    num_rows = int(math.floor(num_rows * (1.0 - validation_split)))
  return num_rows


def fit_validation_data(validation_data, width, feature_names=None):
  """`fit`'s `validation_data` (an array, `(x_val,)`, `(x_val, None,
  sample_weight_val)` or a dataset) as Keras takes it: None, a dataset, or
  a tuple of tensors."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  if validation_data is None:
    return None
  if isinstance(validation_data, tf.data.Dataset):
    return check_dataset(validation_data, "validation_data",
                         width).map(refuse_infinity)
  if isinstance(validation_data, (tuple, list)) and not (
      validation_data and np.ndim(validation_data[0]) == 1):
    parts = list(validation_data)
    if not 1 <= len(parts) <= 3:
      raise ValueError("validation_data must be x_val, (x_val,), or "
                       "(x_val, None, sample_weight_val)")
    if len(parts) >= 2 and parts[1] is not None:
      raise ValueError("validation_data: a VAE has no targets; pass "
                       "(x_val,) or (x_val, None, sample_weight_val)")
    x_val = fit_input(parts[0], "validation_data", width, feature_names)
    if len(parts) == 3 and parts[2] is not None:
      weights = fit_sample_weight(parts[2], x_val)
      return (x_val, placeholder_targets(x_val, weights), weights)
    return (x_val,)
  return (fit_input(validation_data, "validation_data", width,
                    feature_names),)


def placeholder_targets(x, sample_weight):
  """Empty targets [N, 0] when rows are weighted.

  Keras packs `(x, None, w)` as `(x, w)`, which then reads as `(x, y)`; an
  empty `y` keeps the weights in the third place.
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  if sample_weight is None:
    return None
  return tf.zeros([x.shape[0], 0], tf.float32)


def warn_if_badly_scaled(x, stacklevel=3):
  """Warns when raw (unadapted) training data span scales a float32 network
  trains badly on."""
  spread = np.nanstd(x, axis=0)
  magnitude = np.nanmax(np.abs(x), axis=0)
  if magnitude.max() > 1e3 or spread.max() > 1e2 or (
      spread[spread > 0].min(initial=1.0) < 1e-2):
    warnings.warn(
        "training on raw values whose columns range from std "
        f"{spread.min():.3g} to {spread.max():.3g} and magnitude up to "
        f"{magnitude.max():.3g}; call model.adapt(x) first to train on "
        "standardised values (likelihoods stay in data units)",
        stacklevel=stacklevel)


def has_gaps(*parts):
  """Whether tensors (a `fit` input, its validation data) hold a missing
  value: True or False, or None when a part is not a tensor (a dataset,
  whose values are not known until it runs). None parts are skipped; a
  tuple or list is looked into."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  flat = []
  for part in parts:
    flat += list(part) if isinstance(part, (tuple, list)) else [part]
  gaps = False
  for part in flat:
    if part is None:
      continue
    if not isinstance(part, tf.Tensor):
      return None
    if bool(tf.reduce_any(tf.math.is_nan(part))):
      gaps = True
  return gaps
