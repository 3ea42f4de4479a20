"""Anomaly scores for data files: -log p(x) per row, in nats."""

import csv

from tfvae import atomic
from tfvae import data as data_lib


def score_file(model, data_path, output_path, num_samples=1000,
               batch_size=1024, seed=0, overwrite=False):
  """Writes each row's negative marginal log-likelihood to a CSV.

  Streams the input in batches, so files larger than memory work. Output
  columns: `row` (0-based data row) and `score` (-log p(x) in nats, data
  units; higher is more anomalous). Written atomically.

  Args:
    model: a trained `tfvae.VAE`.
    data_path: a `.csv` or `.npy` file of the model's width.
    output_path: the CSV to write.
    num_samples: importance samples per row.
    batch_size: rows per batch.
    seed: int, for reproducible scores.
    overwrite: replace an existing output file.

  Returns:
    float64 numpy array of all scores [N] (also written to `output_path`).

  Raises:
    ValueError: bad data, or a width that does not match the model.
    FileExistsError: `output_path` exists and `overwrite` is False.
  """
  import numpy as np  # pylint: disable=g-import-not-at-top

  scores = []
  with atomic.atomic_file(output_path, overwrite=overwrite) as f:
    writer = csv.writer(f)
    writer.writerow(["row", "score"])
    row = 0
    for batch, _ in data_lib.iter_batches(data_path, batch_size, model.input_dim):
      batch_scores = model.score(batch, num_samples=num_samples, seed=seed + row)
      writer.writerows((row + i, repr(float(s))) for i, s in enumerate(batch_scores))
      scores.append(batch_scores)
      row += len(batch)
  return np.concatenate(scores)
