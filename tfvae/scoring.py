"""Anomaly scores for data files: -log p(x_obs) per row, in nats, streamed."""

import csv
import dataclasses
import math

import numpy as np

from tfvae import atomic
from tfvae import data as data_lib
from tfvae import runtime
from tfvae import validation
from tfvae.inference import calibration
from tfvae.inference import importance

# (row, sample) pairs scored between two progress updates.
WORK_PER_BLOCK = 1 << 22


@dataclasses.dataclass
class ScoreResult:
  """What `score_file` wrote: the number of rows and the score's extremes."""

  rows: int
  median: float
  max: float
  argmax: int
  skipped: int = 0
  threshold: float = None  # rows scoring above it were flagged
  flagged: int = 0

  def describe(self, output):
    text = (f"scored {self.rows} rows into {output}: -log p(x_obs) in nats, "
            f"median {self.median:.3f}, max {self.max:.3f} (row {self.argmax})")
    if self.threshold is not None:
      text += (f"; {self.flagged} rows flagged as anomalies (score above "
               f"{self.threshold:.4f})")
    return text


def _share_names(model, reader):
  names = (model.feature_names or reader.feature_names or
           [str(i + 1) for i in range(model.input_dim)])
  return [f"share_{name}" for name in names] + ["share_latent"]


def score_file(model, data_path, output_path, num_samples=100,
               batch_size=1024, seed=0, overwrite=False, options=None,
               per_feature=False, contamination=None, threshold=None,
               per_column=False, verbose=0):
  """Writes each row's anomaly score (`VAE.anomaly_score`) to a CSV.

  Streams the input in batches, so files larger than memory work; rows may
  have missing values. A row's importance samples are keyed by the seed and
  its values, so its score does not depend on the batch it falls in: the
  file's scores equal `model.anomaly_score(x, seed=seed)`.
  Output columns: `row` (0-based data row), `score` (-log p(x_obs) in nats,
  densities per standard deviation of each column and atom values'
  probabilities; higher is more anomalous) and, with `per_feature`,
  `score_per_feature` (the score divided by the row's number of observed
  values); with `per_column`, `share_<column>` for each of the model's
  columns and `share_latent` (`VAE.anomaly_score_shares`: what each column
  and the latent code add to the score; they add up to it). With the
  model's reference scores (`VAE.calibrate`; tfvae-train
  keeps its validation rows'), `percentile`: the score's percentile among
  them. With `contamination` or `threshold`, `anomaly`: 1 for a row scoring
  above the threshold (the reference's (1 - contamination) quantile, or the
  given score), else 0. Written atomically.

  Args:
    model: a trained `tfvae.VAE`.
    data_path: a data file of the model's width.
    output_path: the CSV to write.
    num_samples: importance samples per row.
    batch_size: rows per batch.
    seed: int, for reproducible scores.
    overwrite: replace an existing output file.
    options: `tfvae.data.ReadOptions` for CSV input.
    per_feature: add the per-observed-value column.
    contamination: optional expected share of anomalies in (0, 0.5]: flag
      rows above the reference's (1 - contamination) quantile.
    threshold: optional score above which rows are flagged.
    per_column: add each column's share of the score and the latent's.
    verbose: 1 shows a progress line.

  Returns:
    A `ScoreResult`.

  Raises:
    ValueError: bad data, or a width that does not match the model.
    FileExistsError: `output_path` exists and `overwrite` is False.
    FloatingPointError: a score is not finite (never written as a result).
  """
  if contamination is not None and threshold is not None:
    raise ValueError("pass contamination or threshold, not both")
  if contamination is not None:
    threshold = model.anomaly_threshold(contamination)
  elif threshold is not None:
    threshold = validation.check_finite(threshold, "threshold")
  reference = model.score_reference
  reader = data_lib.open_table(
      data_path, data_lib.options_for_model(options, model.categories,
                                            model.ignored_columns),
      model.input_dim, model.feature_names)
  progress = runtime.Progress("scoring", reader.num_rows, "rows",
                              enabled=verbose >= 1)
  total = flagged = 0
  median_sample, best = [], (-math.inf, -1)
  # Scores do not depend on the batch: with many samples, smaller blocks
  # show progress more often and change no number.
  batch_size = max(1, min(batch_size, WORK_PER_BLOCK // num_samples))
  with atomic.atomic_file(output_path, overwrite=overwrite,
                          protect=[data_path]) as f:
    writer = csv.writer(f)
    writer.writerow(["row", "score"] +
                    (["score_per_feature"] if per_feature else []) +
                    (_share_names(model, reader) if per_column else []) +
                    (["percentile"] if reference is not None else []) +
                    (["anomaly"] if threshold is not None else []))
    for batch, start in reader.iter_blocks(batch_size):
      check_types(model, batch, f"{data_path} data", start)
      if per_column:
        shares = model.anomaly_score_shares(batch, num_samples=num_samples,
                                            seed=seed)
        scores = shares.sum(axis=1)
      else:
        scores = model.anomaly_score(batch, num_samples=num_samples,
                                     seed=seed)
      if not np.all(np.isfinite(scores)):
        bad = int(np.flatnonzero(~np.isfinite(scores))[0])
        raise FloatingPointError(
            f"{data_path} data row {start + bad}: the score is not finite")
      columns = [np.arange(start, start + len(batch)), scores]
      if per_feature:
        columns.append(importance.per_feature(
            scores, (~np.isnan(batch)).sum(axis=1)))
      if per_column:
        columns.extend(shares.T)
      if reference is not None:
        columns.append(calibration.percentile(reference, scores))
      flags = [] if threshold is None else [(scores > threshold).astype(int)]
      flagged += int(np.sum(flags)) if flags else 0
      for values in zip(*columns, *flags):
        writer.writerow([int(values[0])] +
                        [repr(float(v)) for v in values[1:len(columns)]] +
                        [int(v) for v in values[len(columns):]])
      if scores.max() > best[0]:
        best = (float(scores.max()), start + int(np.argmax(scores)))
      median_sample.append(scores[:: max(1, len(scores) // 1000)])
      total += len(batch)
      progress.update(total)
  progress.close(total)
  median = float(np.median(np.concatenate(median_sample)))
  return ScoreResult(rows=total, median=median, max=best[0], argmax=best[1],
                     threshold=threshold, flagged=flagged)


def check_types(model, rows, source, first_row):
  """Raises ValueError naming the row and column of a value the model's
  column types rule out (no density or mass: it would score infinity)."""
  from tfvae.data import columns  # pylint: disable=g-import-not-at-top
  if isinstance(model.column_types, tuple):
    columns.check_numeric_values(
        rows, model.column_types, model.feature_names, source, first_row,
        hint="the model gives it no likelihood")
