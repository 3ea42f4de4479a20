"""Synthetic rows written to files: `tfvae-sample`, streamed.

Rows come from `tfvae.inference.sampling` (new rows) or from the model's
conditional p(x_mis | x_obs) (`tfvae.inference.imputation`): for one
condition (`given`) or for each row of a file of partial rows
(`complete`). They are written in the training table's columns, header
and order, each column in its recorded format: a column recorded to a
resolution of 10**-k is written with k decimals (whole numbers stay whole
numbers), other columns at full precision. Written chunk by chunk, so ten
million rows need the memory of one chunk, and atomically: a crash leaves
no half-written file.
"""

import dataclasses
import math
import os
import shutil

import numpy as np

from tfvae import atomic
from tfvae import data as data_lib
from tfvae import runtime
from tfvae.data import columns

# The output may not take more than this share of the free disk space.
DISK_MARGIN = 0.95


@dataclasses.dataclass
class SampleResult:
  """What `sample_file` or `complete_file` wrote."""

  rows: int
  columns: int
  seconds: float
  effective_samples: float = None
  num_samples: int = None
  rare_rows: int = None
  kept: np.ndarray = None

  def describe(self, output):
    rate = self.rows / max(self.seconds, 1e-9)
    text = (f"wrote {self.rows:,} synthetic rows of {self.columns} columns "
            f"to {output} ({rate:,.0f} rows/s)")
    if self.effective_samples is not None:
      text += (f"; the condition has {self.effective_samples:,.0f} effective "
               f"importance samples of {self.num_samples:,}")
    if self.rare_rows:
      text += (f"; {self.rare_rows} rows have fewer than "
               f"{_min_effective()} effective importance samples")
    return text


def _min_effective():
  from tfvae.inference import imputation  # pylint: disable=g-import-not-at-top
  return imputation.RARE_EFFECTIVE_SAMPLES


def column_formats(resolution):
  """Each column's printf format from its resolution [D] (0: none): k
  decimals for a resolution of 10**-k, none for whole numbers, and the
  shortest exact text (%r) for a column without a resolution."""
  formats = []
  for step in np.asarray(resolution, np.float64):
    if step > 0:
      formats.append(f"%.{max(0, int(round(-math.log10(step))))}f")
    else:
      formats.append("%r")
  return formats


def format_rows(rows, formats, delimiter=",", categories=None):
  """float64 [N, D] -> one text of N lines in the columns' formats; with
  `categories` (a model's), a categorical column's codes as its levels'
  texts (quoted where they need it)."""
  if categories:
    formats = ["%s" if levels else spec
               for spec, levels in zip(formats, categories)]
    rows = columns.decode(rows, [
        None if levels is None else [_quoted(level, delimiter)
                                     for level in levels]
        for levels in categories])
    rows[np.equal(rows, None)] = ""  # a missing level
  line = delimiter.join(formats) + "\n"
  return "".join(line % tuple(row) for row in rows.tolist())


def _quoted(text, delimiter):
  """A CSV cell's text, quoted where it needs it."""
  if any(c in text for c in (delimiter, '"', "\n", "\r")) or (
      text != text.strip()):
    return '"' + text.replace('"', '""') + '"'
  return text


def header_line(feature_names, delimiter=","):
  """The header's line (names quoted where they need it), or "" for a
  model trained without column names."""
  if feature_names is None:
    return ""
  return delimiter.join(_quoted(name, delimiter)
                        for name in feature_names) + "\n"


def check_disk_space(path, num_bytes):
  """Raises `OSError` when `num_bytes` would not fit on `path`'s disk."""
  folder = os.path.dirname(os.path.abspath(path))
  free = shutil.disk_usage(folder).free
  if num_bytes > DISK_MARGIN * free:
    raise OSError(f"{path}: the rows need about {runtime.format_size(num_bytes)}"
                  f", more than the {runtime.format_size(free)} free on its "
                  "disk; write fewer rows or to another disk")


def _write_chunks(model, chunks, num_rows, output_path, overwrite, protect,
                  verbose, label, keep_rows=0):
  """Formats and writes float64 chunks [<= chunk, D]; checks the disk
  space from the first chunk's text before the file is created. Returns
  (rows written, the first `keep_rows` of them [<= keep_rows, D])."""
  standardization = model.standardization
  formats = column_formats(standardization.resolution.numpy())
  header = header_line(model.feature_names)
  progress = runtime.Progress(label, num_rows, "rows", enabled=verbose >= 1)
  chunks = iter(chunks)
  first = next(chunks)
  text = format_rows(first, formats, categories=model.categories)
  if num_rows is not None:
    check_disk_space(output_path, len(header) + len(text.encode()) * (
        num_rows / len(first)))
  written = 0
  kept = []
  with atomic.atomic_file(output_path, overwrite=overwrite,
                          protect=protect) as f:
    f.write(header)
    while True:
      f.write(text)
      if written < keep_rows:
        kept.append(first[:keep_rows - written])
      written += len(first)
      if num_rows is None or written < num_rows:  # `close` shows the end
        progress.update(written)
      first = next(chunks, None)
      if first is None:
        break
      text = format_rows(first, formats, categories=model.categories)
  progress.close(written)
  return written, (np.concatenate(kept) if kept else None)


def sample_file(model, output_path, num_rows, seed=0, given=None,
                num_samples=1000, as_recorded=True, overwrite=False,
                verbose=0, keep_rows=0):
  """Writes `num_rows` synthetic rows to a CSV file, streamed.

  Args:
    model: a trained `tfvae.VAE`.
    output_path: the CSV to write.
    num_rows: positive int.
    seed: int; the same seed writes the same file, and its first n rows
      are those of a file of n rows.
    given: optional condition (dict {column: value}, or a row [D] with
      NaN for the columns to draw): rows are drawn from the model's
      conditional given these values.
    num_samples: the first K tried for a condition
      (`tfvae.inference.imputation.condition_samples`).
    as_recorded: each column within its training range and on its
      resolution.
    overwrite: replace an existing output file.
    verbose: 1 shows a progress line.
    keep_rows: keep the first this many rows in the result's `kept` (for
      a report: rows are independent draws, so the first ones are a fair
      sample of all).

  Returns:
    A `SampleResult`.
  """
  import time  # pylint: disable=g-import-not-at-top
  from tfvae import validation  # pylint: disable=g-import-not-at-top
  from tfvae.inference import imputation  # pylint: disable=g-import-not-at-top
  from tfvae.inference import sampling  # pylint: disable=g-import-not-at-top
  start = time.monotonic()
  num_rows = validation.check_positive_int(num_rows, "rows")
  ess = None
  if given is None:
    chunks = sampling.iter_samples(model, num_rows, seed, as_recorded)
  else:
    row = validation.condition_row(given, model.input_dim, model.feature_names,
                                   categories=model.categories)
    _warn_outside_range(model, row)
    num_samples, ess = imputation.condition_samples(model, row, num_samples,
                                                    seed)
    if ess < imputation.RARE_EFFECTIVE_SAMPLES:
      import warnings  # pylint: disable=g-import-not-at-top
      warnings.warn(
          f"the condition is improbable under the model: {ess:.1f} effective "
          f"importance samples of {num_samples:,}, so the rows repeat few "
          "latent codes; treat them with care", validation.DataWarning,
          stacklevel=2)
    chunks = imputation.iter_conditional_draws(model, row, num_rows,
                                               num_samples, seed, as_recorded)
  written, kept = _write_chunks(model, chunks, num_rows, output_path,
                                overwrite, (), verbose, "sampling", keep_rows)
  return SampleResult(rows=written, columns=model.input_dim,
                      seconds=time.monotonic() - start,
                      effective_samples=ess,
                      num_samples=num_samples if given is not None else None,
                      kept=kept)


def _warn_outside_range(model, row):
  """Warns about given values outside their column's training range."""
  import warnings  # pylint: disable=g-import-not-at-top
  from tfvae import validation  # pylint: disable=g-import-not-at-top
  lower = model.standardization.lower.numpy()
  upper = model.standardization.upper.numpy()
  for j in np.flatnonzero(~np.isnan(row)):
    if not lower[j] <= row[j] <= upper[j]:
      warnings.warn(
          f"{validation.column_label(j, model.feature_names)}: the given "
          f"value {row[j]:g} is outside the training range [{lower[j]:g}, "
          f"{upper[j]:g}]; the model extrapolates", validation.DataWarning,
          stacklevel=3)


def complete_file(model, data_path, output_path, num_samples=1000, seed=0,
                  batch_size=1024, as_recorded=True, overwrite=False,
                  options=None, verbose=0):
  """Writes one draw from p(x_mis | x_obs) for each row of a file of
  partial rows (empty cells are drawn, filled ones kept), in the model's
  formats: multiple imputation's draws, one per row.

  Returns:
    A `SampleResult`; `rare_rows` counts the rows whose condition had
    fewer than `RARE_EFFECTIVE_SAMPLES` effective importance samples.
  """
  import time  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from tfvae import keyed_random  # pylint: disable=g-import-not-at-top
  from tfvae.inference import imputation  # pylint: disable=g-import-not-at-top
  start = time.monotonic()
  reader = data_lib.open_table(
      data_path, data_lib.options_for_model(options, model.categories,
                                            model.ignored_columns),
      model.input_dim, model.feature_names)
  # Partial rows are never longer than completed ones by much: check the
  # disk against half as much again as the input.
  check_disk_space(output_path, 1.5 * os.path.getsize(data_path))
  rare = [0]

  def chunks():
    for block, first_row in reader.iter_blocks(batch_size):
      # Keyed by the block's first row: draws from the same seed differ
      # between blocks, and repeat from run to run.
      block_seed = (seed + first_row) % 2**63
      noise = tf.random.stateless_normal(
          [num_samples, model.latent_dim],
          seed=keyed_random.seed_pair(block_seed))
      ess = model.effective_sample_size(tf.constant(block), noise).numpy()
      rare[0] += int(np.sum(ess < imputation.RARE_EFFECTIVE_SAMPLES))
      yield model.impute(block, num_samples, seed=block_seed,
                         num_imputations=1, as_recorded=as_recorded)[0]

  written, _ = _write_chunks(model, chunks(), reader.num_rows, output_path,
                             overwrite, [data_path], verbose, "completing")
  return SampleResult(rows=written, columns=model.input_dim,
                      seconds=time.monotonic() - start, rare_rows=rare[0])


def real_rows(settings, data_path=None, options=None):
  """The real rows a checkpoint was trained and validated on: its data
  file (or `data_path` instead) split as its training run split it.

  Args:
    settings: the checkpoint's training settings (its marker's
      "training": `data`, `validation_split`, `seed`, `read_options`).
    data_path: optional file to split instead of the training data.
    options: `tfvae.data.ReadOptions` for `data_path`.

  Returns:
    (training rows [N, D], held-out rows [M, D]), float64 with NaN gaps.
  """
  path = data_path if data_path is not None else settings.get("data")
  if path is None:
    table = data_lib.load_default()
  else:
    if options is None and data_path is None and settings.get("read_options"):
      read = dict(settings["read_options"])
      read["na_values"] = tuple(read.get("na_values", ()))
      options = data_lib.ReadOptions(**read)
    table = data_lib.read_table(path, options=options)
  train, holdout = data_lib.split(table.values,
                                  settings.get("validation_split", 0.2),
                                  seed=settings.get("seed", 0))
  if len(holdout) < 2:
    raise ValueError(f"{table.source}: the report needs held-out rows, and "
                     f"the training run held out {len(holdout)}")
  return train, holdout


def write_report(result, report_path, overwrite=False):
  """Writes a `tfvae.fidelity.report` result as JSON and a Markdown
  summary beside it (the same name ending in .md), atomically."""
  import json  # pylint: disable=g-import-not-at-top
  from tfvae import fidelity  # pylint: disable=g-import-not-at-top
  summary_path = os.path.splitext(report_path)[0] + ".md"
  for path in (report_path, summary_path):
    atomic.check_output_file(path, overwrite)
  with atomic.atomic_file(report_path, overwrite=overwrite) as f:
    json.dump(_without_nan(result), f, indent=1, default=_json_number)
    f.write("\n")
  with atomic.atomic_file(summary_path, overwrite=overwrite) as f:
    f.write(fidelity.markdown(result) + "\n")
  return summary_path


def _without_nan(value):
  """NaN (a measure that does not apply) as JSON null."""
  if isinstance(value, dict):
    return {key: _without_nan(item) for key, item in value.items()}
  if isinstance(value, float) and math.isnan(value):
    return None
  return value


def _json_number(value):
  if isinstance(value, (np.floating, np.integer)):
    return value.item()
  raise TypeError(f"not JSON: {value!r}")
