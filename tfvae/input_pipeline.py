"""`tf.data` pipelines over data files of any size, with memory flat in it.

`dataset(path, ...)` streams a `.csv`, `.npy` (memory-mapped) or
`.parquet` file block by block (`tfvae.data.open_table`), keeps the rows of
one split, shuffles them through a bounded buffer and batches them. Every
pass over the dataset is a fresh pass over the file, so each epoch sees
every training row exactly once, in a new order.

The split is a fixed function of the row index (`tfvae.data.validation_rows`):
it is the same in every epoch, never puts a row on both sides, and equals
the split of the same file read into memory (`tfvae.data.split`).

`scan(path, ...)` is the one pass that comes before training: it validates
every cell, counts the rows of each split and the missing values, computes
the standardisation statistics from a bounded reservoir sample
(`tfvae.statistics.StreamingStatistics`), and keeps bounded samples of both
splits for the closing evaluation. It does not import TensorFlow.
"""

import dataclasses

import numpy as np

from tfvae import data as data_lib
from tfvae import statistics

# The shuffle buffer holds about this many bytes of rows (at least 1,024
# rows): rows far apart in a file are mixed across buffers of this size.
SHUFFLE_BUFFER_BYTES = 64 << 20
# Rows kept of each split for the closing evaluation.
SAMPLE_ROWS = 100000


@dataclasses.dataclass
class Scan:
  """What one pass over a file found (see `scan`)."""

  source: str
  width: int
  feature_names: tuple
  num_train: int
  num_validation: int
  dropped_rows: int
  missing_fraction: np.ndarray
  loc: np.ndarray
  scale: np.ndarray
  train_sample: np.ndarray
  validation_sample: np.ndarray
  value_range: tuple = None


def _split_block(block, rows, validation_fraction, seed):
  """(training rows, validation rows, which rows are empty) of a block whose
  rows have the 0-based indices `rows`."""
  is_validation = data_lib.validation_rows(rows, validation_fraction, seed)
  empty = np.isnan(block).all(axis=1)
  return block[~is_validation & ~empty], block[is_validation & ~empty], empty


def scan(path, validation_fraction=0.2, seed=0, options=None,
         block_rows=65536, expected_width=None):
  """One validating pass over a file: counts, statistics, samples.

  Args:
    path: a data file.
    validation_fraction: the share of rows in the validation split.
    seed: the split's and the reservoirs' seed.
    options: `tfvae.data.ReadOptions` for CSV files.
    block_rows: rows read at a time.
    expected_width: optional int, the width a model expects.

  Returns:
    A `Scan`.

  Raises:
    ValueError: a bad cell (named by file, row and column), a column with no
      observed value, or too few rows.
  """
  reader = data_lib.open_table(path, options, expected_width)
  train_stats = statistics.StreamingStatistics(reader.width, seed=seed)
  validation_sample = statistics.StreamingStatistics(
      reader.width, seed=seed + 1, capacity=SAMPLE_ROWS)
  missing = np.zeros(reader.width)
  total = dropped = 0
  for block, first_row in reader.iter_blocks(block_rows):
    train, validation, empty = _split_block(
        block, first_row + np.arange(len(block)), validation_fraction, seed)
    train_stats.update(train)
    validation_sample.update(validation)
    missing += np.isnan(block).sum(axis=0)
    total += len(block)
    dropped += int(empty.sum())
  if train_stats.num_rows < 2:
    raise ValueError(f"{path}: too few rows to train on "
                     f"({train_stats.num_rows})")
  loc, scale = train_stats.result()
  return Scan(
      source=str(path), width=reader.width,
      feature_names=reader.feature_names,
      num_train=train_stats.num_rows,
      num_validation=validation_sample.num_rows, dropped_rows=dropped,
      missing_fraction=missing / max(total, 1), loc=loc, scale=scale,
      train_sample=train_stats.sample[:SAMPLE_ROWS].copy(),
      validation_sample=validation_sample.sample.copy(),
      value_range=train_stats.value_range)


def dataset(path, batch_size, split="train", validation_fraction=0.2, seed=0,
            options=None, block_rows=65536, expected_width=None,
            shuffle=None, shards=None):
  """A `tf.data.Dataset` of float64 batches [<= batch_size, D] from a file.

  Args:
    path: a `.csv`, `.npy` or `.parquet` file.
    batch_size: rows per batch.
    split: "train", "validation" or "all".
    validation_fraction: the share of rows in the validation split.
    seed: the split's and the shuffle's seed.
    options: `tfvae.data.ReadOptions` for CSV files.
    block_rows: rows read from the file at a time.
    expected_width: optional int, the width a model expects.
    shuffle: whether to shuffle (default: for the training split only).
    shards: optional (count, index): keep only rows whose index modulo
      `count` is `index` (a multi-worker job's share).

  Returns:
    A `tf.data.Dataset`; rows whose every value is missing are left out.
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top

  if split not in ("train", "validation", "all"):
    raise ValueError(f"split must be 'train', 'validation' or 'all', got "
                     f"{split!r}")
  reader = data_lib.open_table(path, options, expected_width)
  width = reader.width
  fraction = 0.0 if split == "all" else validation_fraction

  def blocks():
    for block, first_row in data_lib.open_table(
        path, options, expected_width).iter_blocks(block_rows):
      rows = first_row + np.arange(len(block))
      if shards is not None:
        keep = rows % shards[0] == shards[1]
        block, rows = block[keep], rows[keep]
      train, validation, _ = _split_block(block, rows, fraction, seed)
      yield validation if split == "validation" else train

  rows = tf.data.Dataset.from_generator(
      blocks, output_signature=tf.TensorSpec([None, width], tf.float64))
  rows = rows.unbatch()
  if shuffle if shuffle is not None else split == "train":
    buffer = max(1024, SHUFFLE_BUFFER_BYTES // (8 * width))
    rows = rows.shuffle(buffer, seed=seed, reshuffle_each_iteration=True)
  return rows.batch(batch_size).prefetch(tf.data.AUTOTUNE)
