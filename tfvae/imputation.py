"""Filling the gaps of data files with a trained model, streamed.

Each missing value becomes E[x_mis | x_obs] (or M draws from
p(x_mis | x_obs) for multiple imputation), from `VAE.impute`. The output
keeps the input's header, its row order and, for CSV input, the text of
every observed cell (and of any row-index column) exactly as written; only
the missing cells are filled. Written atomically.
"""

import csv
import dataclasses

import numpy as np

from tfvae import atomic
from tfvae import data as data_lib
from tfvae import runtime
from tfvae import scoring


@dataclasses.dataclass
class ImputeResult:
  """What `impute_file` wrote."""

  rows: int
  filled: int
  draws: int = None

  def describe(self, output):
    what = (f"{self.draws} imputations of each" if self.draws
            else "the conditional mean of each; a category's most "
            "probable level")
    return (f"imputed {self.filled} missing values in {self.rows} rows into "
            f"{output} ({what})")


def _format(value):
  return repr(float(value))


def impute_file(model, data_path, output_path, num_samples=1000,
                num_imputations=None, batch_size=1024, seed=0,
                overwrite=False, options=None, verbose=0):
  """Writes a copy of a data file with its missing values filled.

  Args:
    model: a trained `tfvae.VAE`.
    data_path: a `.csv`, `.npy` or `.parquet` file of the model's width.
    output_path: the CSV to write.
    num_samples: importance samples per row.
    num_imputations: optional M: write M completed copies of each row,
      each line preceded by `imputation` (1..M), rows in input order.
    batch_size: rows per batch.
    seed: int, for reproducible imputations.
    overwrite: replace an existing output file.
    options: `tfvae.data.ReadOptions` for CSV input.
    verbose: 1 shows a progress line.

  Returns:
    An `ImputeResult`.
  """
  reader = data_lib.open_table(
      data_path, data_lib.options_for_model(options, model.categories,
                                            model.ignored_columns),
      model.input_dim, model.feature_names)
  progress = runtime.Progress("imputing", reader.num_rows, "rows",
                              enabled=verbose >= 1)
  is_csv = hasattr(reader, "iter_text_blocks")
  if is_csv:
    header = reader.header_cells()
    blocks = reader.iter_text_blocks(batch_size)
    columns = reader.value_columns
  else:
    header = list(reader.feature_names or
                  [f"column_{i + 1}" for i in range(reader.width)])
    blocks = ((values, None) for values, _ in reader.iter_blocks(batch_size))
    columns = list(range(reader.width))
  rows = filled = 0
  # A categorical column is filled with a level's text.
  levels = model.categories or (None,) * model.input_dim
  # A count column is filled with an integer.
  counts = (np.asarray(model.column_types) == "count"
            if isinstance(model.column_types, tuple)
            else np.zeros(model.input_dim, bool))
  with atomic.atomic_file(output_path, overwrite=overwrite,
                          protect=[data_path]) as f:
    writer = csv.writer(f)
    if header is not None:
      writer.writerow((["imputation"] if num_imputations else []) + list(header))
    for values, texts in blocks:
      scoring.check_types(model, values, f"{data_path} data", rows)
      missing = np.isnan(values)
      if texts is not None and model.categories is not None:
        # A level the model has not seen is read as missing, to condition
        # on the rest; the file's own text is kept.
        missing &= np.asarray([[reader.is_missing_text(row[c]) for c in columns]
                               for row in texts], bool).reshape(missing.shape)
      if texts is None:  # not a CSV file: numbers, and levels as text
        texts = [[_format(v) if levels[j] is None or np.isnan(v) else
                  levels[j][int(v)] for j, v in enumerate(row)]
                 for row in values]
      if num_imputations:
        completed = model.impute(values, num_samples, seed=seed,
                                 num_imputations=num_imputations)
      else:
        completed = model.impute(values, num_samples, seed=seed)[None]
      for i, cells in enumerate(texts):
        for m, version in enumerate(completed):
          out = list(cells)
          for j in np.flatnonzero(missing[i]):
            out[columns[j]] = (
                levels[j][int(version[i, j])] if levels[j] is not None else
                str(int(version[i, j])) if counts[j] else
                _format(version[i, j]))
          writer.writerow(([m + 1] if num_imputations else []) + out)
      rows += len(values)
      filled += int(missing.sum())
      progress.update(rows)
  progress.close(rows)
  return ImputeResult(rows=rows, filled=filled, draws=num_imputations)
