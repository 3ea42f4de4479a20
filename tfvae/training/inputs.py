"""A run's inputs: the data (read, or scanned for streaming, before
TensorFlow starts), what `fit` is given (arrays, a streamed `tf.data`
pipeline, or per-worker datasets), and the `tf.distribute` strategy."""

import dataclasses
import math
import os

import numpy as np

from tfvae import data as data_lib
from tfvae import input_pipeline
from tfvae import validation

# The closing train / validation metrics use at most this many rows (a
# seeded random subset beyond it).
MAX_SUMMARY_ROWS = 100000
# Files larger than this are streamed (`--stream auto`).
STREAM_BYTES = 512 << 20


@dataclasses.dataclass
class TrainingData(input_pipeline.Scan):
  """A run's data: the two splits in memory, or a file to stream.

  In memory, `train` and `validation` are arrays. Streamed, they are None
  and `stream(split)` builds a `tf.data.Dataset`; `loc` and `scale` are the
  standardisation statistics of the scan. Either way the split is the same
  (`tfvae.data.validation_rows`), and `train_sample` / `validation_sample`
  are bounded samples for the closing evaluation.
  """

  train: np.ndarray = None
  validation: np.ndarray = None
  path: str = None
  read_options: data_lib.ReadOptions = None
  # The columns' types (`tfvae.data.Table.categories`) and the file's
  # columns left out.
  categories: tuple = None
  ignored_columns: tuple = ()
  # Every column's type (`tfvae.data.columns.column_types_of`), or None:
  # every numeric column real.
  column_types: tuple = None

  @property
  def streamed(self):
    return self.path is not None

  def stream(self, split, batch_size, config):
    return input_pipeline.dataset(
        self.path, batch_size, split=split,
        validation_fraction=config.validation_split, seed=config.seed,
        options=self.read_options, expected_width=self.width)


def _should_stream(config):
  if config.data is None or config.stream == "off":
    return False
  if config.stream == "on":
    return True
  return os.path.getsize(config.data) > STREAM_BYTES


def prepare_data(config, table=None):
  """Reads (or scans, for streaming) and validates the run's data; no
  TensorFlow.

  Args:
    config: a `TrainConfig`.
    table: optional `tfvae.data.Table` to use instead of `config.data`.

  Returns:
    A `TrainingData`.
  """
  options = config.read_options
  if table is None and config.data is not None:
    # Fails early; finds the column types once (the levels of text columns
    # read through), which every later read then uses.
    options = typed_options(config.data, options)
  if table is None and _should_stream(config):
    scan = input_pipeline.scan(config.data, config.validation_split,
                               config.seed, options)
    categories = options.categories or None
    return TrainingData(
        **{field.name: getattr(scan, field.name)
           for field in dataclasses.fields(scan)},
        path=config.data, read_options=options, categories=categories,
        ignored_columns=options.ignored_columns,
        column_types=column_types_for(
            config, scan.train_sample, categories, scan.feature_names,
            f"{config.data} (a sample of its rows)", options))
  if table is None:
    table = (data_lib.load_default() if config.data is None else
             data_lib.read_table(config.data, options=options))
  x_train, x_validation = data_lib.split(table.values, config.validation_split,
                                         seed=config.seed)
  if len(x_train) < 2:
    total = len(table.values)
    raise ValueError(
        f"{table.source}: too few rows to train on: {total} row"
        f"{'s' * (total != 1)}, {len(x_train)} left for training after the "
        f"validation split ({config.validation_split:g}); at least 2 "
        "training rows are needed (add rows, or lower validation_split)")
  validation.check_columns_observed(x_train, f"{table.source} (training rows)",
                                  table.feature_names)
  column_types = column_types_for(config, table.values, table.categories,
                                  table.feature_names, table.source, options)
  return TrainingData(
      source=table.source, width=table.values.shape[1],
      feature_names=table.feature_names, num_train=len(x_train),
      num_validation=len(x_validation), dropped_rows=table.dropped_rows,
      missing_fraction=table.missing_fraction, loc=None, scale=None,
      train_sample=subset(x_train, MAX_SUMMARY_ROWS, config.seed),
      validation_sample=subset(x_validation, MAX_SUMMARY_ROWS, config.seed),
      train=x_train, validation=x_validation, categories=table.categories,
      ignored_columns=table.ignored_columns, column_types=column_types)


def keep_rows(data, keep_train, keep_validation, seed):
  """`data` (in memory) with only the rows the masks keep in each split.

  Args:
    data: an in-memory `TrainingData`.
    keep_train, keep_validation: bool numpy arrays, one per split's row.
    seed: the summary samples' seed.

  Returns:
    A new `TrainingData`.
  """
  train, held_out = data.train[keep_train], data.validation[keep_validation]
  return dataclasses.replace(
      data, train=train, validation=held_out, num_train=len(train),
      num_validation=len(held_out),
      train_sample=subset(train, MAX_SUMMARY_ROWS, seed),
      validation_sample=subset(held_out, MAX_SUMMARY_ROWS, seed))


def column_types_for(config, values, categories, names, source,
                     options=None):
  """The run's column types (`TrainConfig.numeric_types`, the
  `--column-types` overrides), checked against the rows: None when every
  numeric column is real.

  Raises:
    ValueError: a value its column's type rules out, named by row (1-based,
      among the file's data rows) and column.
  """
  from tfvae.data import columns  # pylint: disable=g-import-not-at-top
  overrides = dict((options.column_types if options else None) or {})
  infer = config.numeric_types
  if infer is None:
    infer = "auto" if categories and any(
        levels is not None for levels in categories) else "real"
  types = columns.column_types_of(values, categories, names, overrides,
                                  infer=infer == "auto")
  columns.check_numeric_values(values, types, names, source, first_row=1)
  if all(kind not in (columns.POSITIVE, columns.COUNT) for kind in types):
    return None
  return types


def typed_options(path, options=None):
  """`options` with the file's column types fixed (`ReadOptions.categories`
  and `ignored_columns`), inferred from the file unless given."""
  options = options or data_lib.ReadOptions()
  if options.categories is not None:
    return options
  reader = data_lib.open_table(path, options)
  return dataclasses.replace(
      options, categories=getattr(reader, "categories", None) or (),
      ignored_columns=tuple(getattr(reader, "ignored_columns", ())))


def subset(x, max_rows, seed):
  if len(x) <= max_rows:
    return x
  order = np.random.default_rng(seed).choice(len(x), max_rows, replace=False)
  return x[np.sort(order)]


def fit_inputs(data, config, strategy, has_validation):
  """(training input, validation input, further `fit` arguments).

  In memory on one machine: the arrays (Keras batches and shuffles them).
  Streamed: the file's `tf.data` pipeline, repeated, with the exact number
  of batches per pass as `steps_per_epoch`, so an epoch is one pass and
  Keras can run several steps per call without running out of data in the
  middle of one. With `multi_worker`: each worker reads its own rows (row
  i belongs to worker i mod W, in memory or streamed) through a
  `DatasetCreator`, batched by the per-replica share of the global batch.
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  import tf_keras  # pylint: disable=g-import-not-at-top

  batch = config.batch_size
  multi_worker = config.strategy == "multi_worker"
  if not multi_worker and not data.streamed:
    return (data.train, (data.validation,) if has_validation else None,
            {"batch_size": batch, "shuffle": True})
  options = {"steps_per_epoch": math.ceil(data.num_train / batch)}
  if multi_worker:
    def dataset_fn(context):
      per_replica = context.get_per_replica_batch_size(batch)
      shards = (context.num_input_pipelines, context.input_pipeline_id)
      if data.streamed:
        dataset = input_pipeline.dataset(
            data.path, per_replica, split="train",
            validation_fraction=config.validation_split, seed=config.seed,
            options=data.read_options, expected_width=data.width,
            shards=shards)
      else:
        rows = data.train[shards[1]::shards[0]]
        dataset = tf.data.Dataset.from_tensor_slices(rows).shuffle(
            len(rows), seed=config.seed).batch(per_replica)
      return dataset.repeat()

    train_input = tf_keras.utils.experimental.DatasetCreator(dataset_fn)
  else:
    train_input = data.stream("train", batch, config).repeat()
  validation_input = None
  if has_validation:
    options["validation_steps"] = math.ceil(data.num_validation / batch)
    if data.streamed:
      validation_input = data.stream("validation", batch, config)
    else:
      validation_input = tf.data.Dataset.from_tensor_slices(
          data.validation).batch(batch)
    if multi_worker:
      sharding = tf.data.Options()
      sharding.experimental_distribute.auto_shard_policy = (
          tf.data.experimental.AutoShardPolicy.DATA)
      validation_input = validation_input.with_options(sharding)
    validation_input = validation_input.repeat()
  return train_input, validation_input, options


def make_strategy(name):
  """The `tf.distribute` strategy: "default" or "multi_worker".

  "multi_worker" is `tf.distribute.MultiWorkerMirroredStrategy`, configured
  by the `TF_CONFIG` environment variable (the cluster and this worker's
  task), as TensorFlow's multi-worker guide describes.
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  if name == "default":
    return tf.distribute.get_strategy()
  if name != "multi_worker":
    raise ValueError(f"strategy must be 'default' or 'multi_worker', got "
                     f"{name!r}")
  if not os.environ.get("TF_CONFIG"):
    raise ValueError("--strategy multi_worker needs the TF_CONFIG environment "
                     "variable (the cluster and this worker's task; see the "
                     "README)")
  return tf.distribute.MultiWorkerMirroredStrategy()


def is_chief(strategy):
  """Whether this process writes the outputs (logs, checkpoint, export)."""
  resolver = getattr(strategy, "cluster_resolver", None)
  if resolver is None or not resolver.task_type:
    return True
  if resolver.task_type == "chief":
    return True
  has_chief = "chief" in resolver.cluster_spec().as_dict()
  return resolver.task_type == "worker" and resolver.task_id == 0 and (
      not has_chief)
