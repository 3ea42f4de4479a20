"""One training run end to end: data -> model -> fit -> evaluate -> outputs.

`tfvae-train` is a thin wrapper around `run(TrainConfig(...))`, which checks
every output location and reads the data before it imports TensorFlow, so
that mistakes cost a second. Importing this module does not import
TensorFlow; `train` does.
"""

import contextlib
import dataclasses
import math
import os
import signal
import tempfile
import threading

import numpy as np

from tfvae import atomic
from tfvae import checkpoint
from tfvae import data as data_lib
from tfvae import families
from tfvae import runtime
from tfvae import statistics
from tfvae import validation

# The closing importance-weighted evaluation scores at most this many
# validation rows (a seeded random subset beyond it), and the closing
# train / validation metrics at most `MAX_SUMMARY_ROWS` rows, so that the
# end of a run costs a bounded, small fraction of training.
MAX_LOG_LIKELIHOOD_ROWS = 10000
MAX_SUMMARY_ROWS = 100000


# Files larger than this are streamed (`--stream auto`).
STREAM_BYTES = 512 << 20
# The settings the recipe chooses from the data's shape (see `default_recipe`).
RECIPE_FIELDS = ("latent_dim", "hidden_units", "batch_size", "learning_rate",
                 "patience", "lr_patience", "num_train_samples", "num_atoms",
                 "df_transform")


# Training rows from which the recipe is the large tables' one: 256 units
# per layer, Student's t degrees of freedom learned on the log scale and
# K = 50 importance samples.
LARGE_FROM_ROWS = 10000


def default_recipe(num_rows, num_features):
  """The defaults of `tfvae-train` for a table of this shape.

  Chosen with `scripts/bench_quality.py` over many real tables (see the
  README): two hidden layers of 128 units, a latent half as wide as the
  data, a learning rate halved on plateaus, and batches that grow with the
  table so that an epoch stays a few hundred steps. From `LARGE_FROM_ROWS`
  training rows, 256 units, Student's t degrees of freedom learned on the
  log scale (`df_transform="exp"`) and an importance-weighted bound with
  K = 50 instead of 10: with that many rows df is estimated closely, and
  the synthetic 16,000-row sets gain from all three (K = 50 took
  `nonlinear` from 0.0114 to 0.0072 nats per dimension of the true
  density, at about twice the training time), while on real tables of a
  few hundred to a few thousand rows the log scale lost (df followed the
  training rows too closely) and the width gained nothing.

  Args:
    num_rows: training rows.
    num_features: columns D.

  Returns:
    dict of `TrainConfig` fields.
  """
  large = num_rows >= LARGE_FROM_ROWS
  return {
      "hidden_units": (256, 256) if large else (128, 128),
      "latent_dim": max(2, num_features // 2),
      "batch_size": int(min(1024, max(32, 2 ** round(math.log2(
          max(num_rows, 1) / 256))))),
      "learning_rate": 1e-3,
      "patience": 50,
      "lr_patience": 10,
      "num_train_samples": 50 if large else 10,
      "num_atoms": 8,
      "df_transform": "exp" if large else "softplus",
  }


def search_candidates(num_rows, num_features):
  """The configurations `--search` tries, most promising first.

  Each is a dict of `TrainConfig` fields over the defaults; the first is
  the defaults themselves.

  Args:
    num_rows: training rows.
    num_features: columns D.

  Returns:
    list of (name, dict).
  """
  other_width = (("narrow_128", {"hidden_units": (128, 128)})
                 if num_rows >= LARGE_FROM_ROWS else
                 ("wide_256", {"hidden_units": (256, 256)}))
  return [
      ("defaults", {}),
      ("latent_full", {"latent_dim": max(2, num_features)}),
      ("atoms_16", {"num_atoms": 16}),
      other_width,
      ("gaussian", {"likelihood": "gaussian"}),
      ("laplace", {"likelihood": "laplace"}),
      ("small_64", {"hidden_units": (64, 64)}),
      ("deep_3x128", {"hidden_units": (128, 128, 128)}),
      ("slow_lr", {"learning_rate": 3e-4}),
  ]


@dataclasses.dataclass
class TrainConfig:
  """Everything one run needs; the CLI flags map one to one onto fields.

  Fields left None are chosen by `default_recipe` from the data's shape.
  """

  data: str = None  # None: the embedded default data
  read_options: data_lib.ReadOptions = None
  stream: str = "auto"  # "auto" (files over STREAM_BYTES), "on", "off"
  latent_dim: int = None
  hidden_units: tuple = None
  likelihood: str = families.DEFAULT
  beta: float = 1.0
  kl_warmup_steps: int = 0
  free_bits: float = 0.0
  num_train_samples: int = None
  num_atoms: int = None
  df_transform: str = None  # Student's t: "softplus" or "exp"
  epochs: int = 1000
  batch_size: int = None
  learning_rate: float = None
  validation_split: float = 0.2
  patience: int = None
  lr_patience: int = None  # 0: a constant learning rate
  likelihood_scale_floor: float = 1e-3
  refit: bool = False  # retrain on all rows for the best epoch count
  adapt: bool = True
  num_samples: int = 1000
  seed: int = 0
  search: bool = False  # try `search_candidates` within `time_budget`
  time_budget: float = 10.0  # minutes, for `search`
  deadline: float = None  # time.monotonic() at which training stops
  strategy: str = "default"  # or "multi_worker" (tf.distribute, TF_CONFIG)
  backup_every_steps: int = None  # mid-epoch backups, besides each epoch's
  logdir: str = "runs/tfvae"  # None: no TensorBoard logs
  monitor: bool = True  # the VAEMonitor extras besides Keras' own scalars
  checkpoint_dir: str = None
  export_dir: str = None
  overwrite: bool = False
  verbose: int = 1

  def resolve(self, num_rows, num_features):
    """A copy with every None recipe field set from `default_recipe`.

    `hidden_units="snippet"` is the original TF1 snippet's architecture:
    one hidden layer as wide as the data and (unless given) 5 latents.
    """
    recipe = default_recipe(num_rows, num_features)
    if self.hidden_units == "snippet":
      recipe.update(hidden_units=(num_features,), latent_dim=5)
      config = dataclasses.replace(self, hidden_units=None)
    else:
      config = self
    return dataclasses.replace(config, **{
        name: recipe[name] for name in RECIPE_FIELDS
        if getattr(config, name) is None})

  def model_options(self):
    """The `VAE` constructor arguments these settings give."""
    return dict(latent_dim=self.latent_dim, hidden_units=self.hidden_units,
                likelihood=self.likelihood, beta=self.beta,
                kl_warmup_steps=self.kl_warmup_steps,
                free_bits=self.free_bits,
                num_train_samples=self.num_train_samples,
                num_atoms=self.num_atoms,
                df_transform=self.df_transform or "softplus",
                likelihood_scale_floor=self.likelihood_scale_floor)


@dataclasses.dataclass
class TrainSummary:
  """What a run produced; `format()` is the CLI's closing report."""

  source: str
  num_train: int
  num_validation: int
  input_dim: int
  epochs_run: int
  best_epoch: int
  first_loss: float
  train: dict
  validation: dict
  validation_log_likelihood: float
  num_samples: int
  log_likelihood_rows: int = 0
  summary_rows: dict = None
  recipe: dict = None
  search_table: list = None
  history: dict = None
  streamed: bool = False
  beta: float = 1.0
  num_train_samples: int = 1
  missing_fraction: dict = None
  dropped_rows: int = 0
  logdir: str = None
  checkpoint_dir: str = None
  export_paths: dict = None
  model: object = dataclasses.field(default=None, repr=False)

  def format(self):
    def row(name, metrics, rows):
      if not metrics:
        return f"  {name:<11} (no data)"
      note = ""
      if rows is not None:
        note = f"   ({rows} rows)"
      return (f"  {name:<11} loss {metrics['loss']:10.4f}   reconstruction_nll "
              f"{metrics['reconstruction_nll']:10.4f}   kl "
              f"{metrics['kl']:8.4f}{note}")

    rows = self.summary_rows or {}
    if self.num_train_samples == 1:
      loss_is = f"loss = reconstruction_nll + beta * kl, beta = {self.beta:g}"
    else:
      loss_is = (f"loss = -importance-weighted bound, K = "
                 f"{self.num_train_samples}, beta = {self.beta:g}")
    lines = [
        "",
        f"tfvae summary: {self.source}, {self.num_train} training / "
        f"{self.num_validation} validation examples, {self.input_dim} features"
        + (" (streamed)" if self.streamed else ""),
    ]
    if self.dropped_rows:
      lines.append(f"  {self.dropped_rows} rows with every value missing were "
                   "left out")
    if self.missing_fraction:
      shown = ", ".join(f"{name} {fraction:.1%}" for name, fraction in
                        self.missing_fraction.items() if fraction > 0)
      lines.append(f"  missing values per column: {shown}")
    if self.search_table:
      lines.append("  search (validation log-likelihood, nats per example; "
                   "higher is better):")
      for entry in self.search_table:
        mark = "*" if entry["chosen"] else " "
        score = ("stopped by the time budget" if entry["score"] is None
                 else f"{entry['score']:10.4f}")
        lines.append(f"   {mark} {entry['name']:<12} {score}   "
                     f"{entry['epochs']:4d} epochs {entry['seconds']:6.0f} s")
    if self.recipe:
      lines.append("  settings: " + ", ".join(
          f"{name} {_show(value)}" for name, value in self.recipe.items()))
    lines += [
        f"  epochs run {self.epochs_run} (best {self.best_epoch}); first-epoch "
        f"loss {self.first_loss:.4f}",
        f"  all values in nats per example, in the data's own units ({loss_is})",
        row("train", self.train, rows.get("train")),
        row("validation", self.validation, rows.get("validation")),
    ]
    if not math.isnan(self.validation_log_likelihood):
      subset = (f", {self.log_likelihood_rows} random validation rows"
                if self.log_likelihood_rows < self.num_validation else "")
      lines.append(
          f"  validation marginal log-likelihood (IWAE, K={self.num_samples}"
          f"{subset}): {self.validation_log_likelihood:.4f} nats per example")
    if self.logdir:
      lines.append(f"  TensorBoard logs: {self.logdir}  "
                   f"(tensorboard --logdir {self.logdir})")
    if self.checkpoint_dir:
      lines.append(f"  checkpoint: {self.checkpoint_dir}")
    for part, path in (self.export_paths or {}).items():
      lines.append(f"  exported {part}: {path}")
    return "\n".join(lines)


def _show(value):
  if isinstance(value, (tuple, list)):
    return "-".join(str(v) for v in value) or "linear"
  return f"{value:g}" if isinstance(value, float) else str(value)


def check_outputs(config):
  """Checks every output location before any work, without creating any.

  Raises:
    ValueError / OSError: a location is a file where a folder is needed,
      or cannot be written.
    FileExistsError: the checkpoint folder exists and may not be replaced.
  """
  if config.logdir:
    if os.path.lexists(config.logdir) and not os.path.isdir(config.logdir):
      raise ValueError(f"--logdir {config.logdir} is a file; expected a folder")
    atomic.check_writable_folder(config.logdir)
  if config.checkpoint_dir:
    checkpoint.check_checkpoint_dir(config.checkpoint_dir, config.overwrite)
  if config.export_dir:
    if os.path.lexists(config.export_dir) and not os.path.isdir(
        config.export_dir):
      raise ValueError(f"--export-dir {config.export_dir} is a file; expected "
                       "a folder")
    atomic.check_writable_folder(config.export_dir)


@dataclasses.dataclass
class TrainingData:
  """A run's data: the two splits in memory, or a file to stream.

  In memory, `train` and `validation` are arrays. Streamed, they are None
  and `stream(split)` builds a `tf.data.Dataset`; `loc` and `scale` are the
  standardisation statistics of the scan. Either way the split is the same
  (`tfvae.data.validation_rows`), and `train_sample` / `validation_sample`
  are bounded samples for the closing evaluation.
  """

  source: str
  width: int
  feature_names: tuple
  num_train: int
  num_validation: int
  dropped_rows: int
  missing_fraction: np.ndarray
  train_sample: np.ndarray
  validation_sample: np.ndarray
  train: np.ndarray = None
  validation: np.ndarray = None
  path: str = None
  read_options: data_lib.ReadOptions = None
  loc: np.ndarray = None
  scale: np.ndarray = None

  @property
  def streamed(self):
    return self.path is not None

  def stream(self, split, batch_size, config):
    from tfvae import input_pipeline  # pylint: disable=g-import-not-at-top
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
  if table is None and config.data is not None:
    data_lib.open_table(config.data, config.read_options)  # fails early
  if table is None and _should_stream(config):
    from tfvae import input_pipeline  # pylint: disable=g-import-not-at-top
    scan = input_pipeline.scan(config.data, config.validation_split,
                               config.seed, config.read_options)
    return TrainingData(
        source=scan.source, width=scan.width, feature_names=scan.feature_names,
        num_train=scan.num_train, num_validation=scan.num_validation,
        dropped_rows=scan.dropped_rows, missing_fraction=scan.missing_fraction,
        train_sample=scan.train_sample, validation_sample=scan.validation_sample,
        path=config.data, read_options=config.read_options, loc=scan.loc,
        scale=scan.scale)
  if table is None:
    table = load_table(config)
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
  return TrainingData(
      source=table.source, width=table.values.shape[1],
      feature_names=table.feature_names, num_train=len(x_train),
      num_validation=len(x_validation), dropped_rows=table.dropped_rows,
      missing_fraction=table.missing_fraction,
      train_sample=_subset(x_train, MAX_SUMMARY_ROWS, config.seed),
      validation_sample=_subset(x_validation, MAX_SUMMARY_ROWS, config.seed),
      train=x_train, validation=x_validation)


def load_table(config):
  """The run's data, read and validated (no TensorFlow)."""
  if config.data is None:
    return data_lib.load_default()
  return data_lib.read_table(config.data, options=config.read_options)


def run(config):
  """Checks outputs, reads the data, then starts TensorFlow and trains.

  Args:
    config: a `TrainConfig`.

  Returns:
    A `TrainSummary` (its `model` field holds the trained `VAE`).
  """
  check_outputs(config)
  data = prepare_data(config)
  strategies = []
  runtime.import_tensorflow(
      verbose=config.verbose >= 3,
      startup=lambda tf: strategies.append(make_strategy(config.strategy)))

  def announce(epoch, directory):
    if config.verbose >= 1:
      print(f"resuming from epoch {epoch} of {directory}", flush=True)

  if config.search:
    return search(config, data)
  return train(config, data, on_resume=announce, strategy=strategies[0])


def search(config, data=None):
  """Tries `search_candidates` within `config.time_budget` minutes.

  Each candidate trains on the training split with early stopping on the
  validation split and is scored by its validation log-likelihood
  (importance-weighted, `config.num_samples`); the best one is the result
  (it is not trained again). Training stops when the budget is spent, so the
  whole search, closing evaluations included, stays close to the budget.
  With a log directory, candidate c logs under `LOGDIR/search/c`, so the
  HParams dashboard compares them.

  Args:
    config: a `TrainConfig` (its `search` flag is ignored here).
    data: a `TrainingData` or `tfvae.data.Table`; default `prepare_data`.

  Returns:
    The winner's `TrainSummary`, with `search_table` listing every
    candidate, and its checkpoint and export written as `config` asks.
  """
  import time  # pylint: disable=g-import-not-at-top
  check_outputs(config)
  if data is None or isinstance(data, data_lib.Table):
    data = prepare_data(config, table=data)
  if not data.num_validation:
    raise ValueError("--search needs a validation split (validation_split > 0)")
  start = time.monotonic()
  deadline = start + 60.0 * config.time_budget
  table, best = [], None
  for name, overrides in search_candidates(data.num_train, data.width):
    remaining = deadline - time.monotonic()
    if table and remaining < 0.05 * 60.0 * config.time_budget:
      break
    trial = dataclasses.replace(
        config, search=False, checkpoint_dir=None, export_dir=None,
        deadline=deadline, verbose=min(config.verbose, 1),
        logdir=(os.path.join(config.logdir, "search", name)
                if config.logdir else None), **overrides)
    began = time.monotonic()
    summary = train(trial, data)
    score = summary.validation_log_likelihood
    row = {"name": name, "settings": overrides, "epochs": summary.epochs_run,
           "seconds": time.monotonic() - began,
           "score": score if math.isfinite(score) else None, "chosen": False}
    table.append(row)
    if row["score"] is not None and (best is None or row["score"] > best[0]):
      best = (row["score"], row, summary, trial)
  _, row, summary, trial = best
  row["chosen"] = True
  summary.search_table = table
  summary.logdir = config.logdir
  chosen = dataclasses.replace(trial, checkpoint_dir=config.checkpoint_dir,
                               export_dir=config.export_dir,
                               logdir=config.logdir, deadline=None)
  reported = {**summary.train,
              **{f"val_{k}": v for k, v in summary.validation.items()},
              "validation_log_likelihood": summary.validation_log_likelihood,
              "search": table}
  _write_outputs(summary, summary.model, chosen, reported, chief=True)
  return summary


def _progress_callback(config):
  import tf_keras  # pylint: disable=g-import-not-at-top

  class ProgressLine(tf_keras.callbacks.Callback):
    """One line: the epoch, the losses, the best validation loss so far."""

    def on_train_begin(self, logs=None):
      self.progress = runtime.Progress("training", config.epochs, "epochs",
                                       enabled=config.verbose == 1)
      self.best = (math.inf, None)
      self._last = None

    def on_epoch_end(self, epoch, logs=None):
      logs = logs or {}
      parts = [f"loss {logs.get('loss', math.nan):.4f}"]
      if "val_loss" in logs:
        if logs["val_loss"] < self.best[0]:
          self.best = (logs["val_loss"], epoch + 1)
        parts.append(f"val_loss {logs['val_loss']:.4f} (best "
                     f"{self.best[0]:.4f} at epoch {self.best[1]})")
      self._last = (epoch + 1, ", ".join(parts))
      self.progress.update(*self._last)

    def on_train_end(self, logs=None):
      if self._last:
        self.progress.close(*self._last)

  return ProgressLine()


def _deadline_callback(deadline):
  import time  # pylint: disable=g-import-not-at-top
  import tf_keras  # pylint: disable=g-import-not-at-top

  class Deadline(tf_keras.callbacks.Callback):
    """Stops training at `deadline` (time.monotonic()), after a step."""

    def on_train_batch_end(self, batch, logs=None):
      if time.monotonic() >= deadline:
        self.model.stop_training = True

  return Deadline()


def _subset(x, max_rows, seed):
  if len(x) <= max_rows:
    return x
  order = np.random.default_rng(seed).choice(len(x), max_rows, replace=False)
  return x[np.sort(order)]


class Interrupted(Exception):
  """SIGINT or SIGTERM stopped a run; its backup (if any) was saved."""

  def __init__(self, signal_name, epoch, directory):
    where = (f"; backup of epoch {epoch} saved in {directory}: run the same "
             "command to resume" if directory else "")
    super().__init__(f"interrupted by {signal_name}{where}")
    self.signal_name = signal_name


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


def _atoms_needed(model):
  """The most atoms any column of an adapted model holds (0 when none)."""
  if not model.num_atoms:
    return 0
  atoms = model.standardization.atoms.numpy()
  return int(np.max(np.sum(np.isfinite(atoms), axis=1), initial=0))


def _model_settings(model):
  """What a resumed run must share with the one that saved the backup."""
  config = _jsonable(model.get_config())
  config.pop("name", None)
  return config


def train(config, data=None, model_options=None, on_resume=None,
          strategy=None):
  """Runs one training job (imports TensorFlow).

  With `config.checkpoint_dir`, the state at the end of every epoch is
  backed up in it (`tfvae.checkpoint.Backup`); if it holds an unfinished
  run with the same settings, training resumes from its last backup. SIGINT
  and SIGTERM save a backup and raise `Interrupted`.

  Args:
    config: a `TrainConfig`.
    data: a `TrainingData` (`prepare_data`) or a `tfvae.data.Table`; default
      `prepare_data(config)`.
    model_options: optional dict of further `VAE` constructor arguments
      (beyond the command line's), e.g. for benchmarks.
    on_resume: optional callable(epoch, directory), called when a run
      resumes.
    strategy: optional `tf.distribute` strategy; default
      `make_strategy(config.strategy)` (a multi-worker strategy must be
      made before TensorFlow runs any operation).

  Returns:
    A `TrainSummary` (its `model` field holds the trained `VAE`).

  Raises:
    ValueError: bad data or settings, with a message naming the problem.
    FileExistsError: the checkpoint directory exists and `overwrite` is off.
    Interrupted: SIGINT or SIGTERM.
  """
  import tf_keras  # pylint: disable=g-import-not-at-top
  from tfvae import model as model_lib  # pylint: disable=g-import-not-at-top
  from tfvae import networks  # pylint: disable=g-import-not-at-top

  check_outputs(config)
  if data is None or isinstance(data, data_lib.Table):
    data = prepare_data(config, table=data)
  config = config.resolve(data.num_train, data.width)
  recipe = {name: getattr(config, name) for name in RECIPE_FIELDS}
  has_validation = data.num_validation > 0
  if strategy is None:
    strategy = make_strategy(config.strategy)
  chief = is_chief(strategy)

  def make_model(adapt_rows):
    tf_keras.utils.set_random_seed(config.seed)
    with strategy.scope():
      model = model_lib.VAE(input_dim=data.width,
                            feature_names=data.feature_names, seed=config.seed,
                            **{**config.model_options(),
                               **(model_options or {})})
      if config.adapt:
        if adapt_rows is None:  # streamed: the scan's statistics
          model.set_statistics(data.loc, data.scale, *model.find_atoms(
              data.train_sample, data.scale))
        else:
          model.adapt(adapt_rows)
      model.compile(networks.make_optimizer(config.learning_rate))
    return model

  model = make_model(data.train)
  needed = _atoms_needed(model)
  if needed < model.num_atoms:
    # Room for as many atoms as the busiest column holds, no more: the
    # mixture's outputs cost time on every step (2.7x on 64 continuous
    # columns, scripts/bench_train.py), whether or not atoms were found.
    config = dataclasses.replace(config, num_atoms=needed)
    recipe["num_atoms"] = needed
    model_options = {**(model_options or {}), "num_atoms": needed}
    model = make_model(data.train)
  train_input, validation_input, fit_options = _fit_inputs(
      data, config, strategy, has_validation)
  monitored = "val_loss" if has_validation else "loss"
  early_stopping = plateau = backup = None
  if has_validation and config.patience > 0:
    early_stopping = ResumableEarlyStopping(
        monitor="val_loss", patience=config.patience,
        restore_best_weights=True)
  if config.lr_patience > 0:
    plateau = ResumableReduceLROnPlateau(
        monitor=monitored, factor=0.5, patience=config.lr_patience,
        min_lr=config.learning_rate / 64)

  initial_epoch, past = 0, {}
  if config.checkpoint_dir:
    backup = checkpoint.Backup(config.checkpoint_dir, model, writable=chief)
    if backup.exists() and config.overwrite:
      backup.remove()  # start over
    if backup.exists():
      marker = checkpoint.read_metadata(config.checkpoint_dir)
      if marker.get("model") != _model_settings(model):
        raise ValueError(
            f"{config.checkpoint_dir} holds an unfinished run with other "
            "settings; pass overwrite=True to start over, or run the same "
            "command as before")
      state, best_weights = backup.restore()
      initial_epoch, past = state["epoch"], state["history"]
      if early_stopping:
        early_stopping.resume(state.get("early_stopping"), best_weights)
      if plateau:
        plateau.resume(state.get("plateau"))
      if on_resume:
        on_resume(initial_epoch, config.checkpoint_dir)
    elif chief:
      checkpoint.write_marker(
          config.checkpoint_dir, complete=False,
          model=_model_settings(model),
          training=_jsonable(dataclasses.asdict(config)))
  logdir, temporary_logdir = config.logdir, None
  if logdir and not chief:
    temporary_logdir = logdir = tempfile.mkdtemp(prefix="tfvae-worker-logs-")

  callbacks = [_progress_callback(config)]
  callbacks += [c for c in (plateau, early_stopping) if c is not None]
  if config.deadline is not None:
    callbacks.append(_deadline_callback(config.deadline))
  stopper = BackupAndSignals(backup, early_stopping, plateau, past,
                             every_steps=config.backup_every_steps)
  callbacks.append(stopper)
  monitor = None
  if logdir:
    from tfvae import monitoring  # pylint: disable=g-import-not-at-top
    interrupted = lambda: stopper.signal_name is not None  # noqa: E731
    board = monitoring.EpochTensorBoard(logdir, skip_epoch=interrupted)
    board.fill_missing(past, initial_epoch)
    callbacks.append(board)
    if config.monitor:
      monitor = monitoring.VAEMonitor(
          logdir,
          data.validation_sample if has_validation else data.train_sample,
          hparams=_hparams(config, data), skip_epoch=interrupted,
          seed=config.seed)
      callbacks.append(monitor)
  try:
    with stopper.catching_signals():
      history = model.fit(
          train_input,
          validation_data=validation_input,
          epochs=config.epochs,
          initial_epoch=initial_epoch,
          callbacks=callbacks,
          verbose=2 if config.verbose >= 2 else 0,
          **fit_options)
    if stopper.signal_name:
      raise Interrupted(stopper.signal_name, stopper.saved_epoch,
                        config.checkpoint_dir if backup else None)
  finally:
    if backup is not None:
      backup.close()
    if temporary_logdir:
      import shutil  # pylint: disable=g-import-not-at-top
      shutil.rmtree(temporary_logdir, ignore_errors=True)
  full_history = {name: list(past.get(name, [])) + list(values)
                  for name, values in history.history.items()}
  losses = full_history["loss"]
  best_epoch = int(np.nanargmin(full_history[monitored])) + 1
  if config.refit and has_validation and not data.streamed:
    model = _refit(make_model, data, config, full_history, best_epoch)

  summary_rows = {}
  train_metrics = _evaluate(model, data.train_sample, config.batch_size)
  if len(data.train_sample) < data.num_train:
    summary_rows["train"] = len(data.train_sample)
  validation_metrics = {}
  validation_ll, ll_rows = float("nan"), 0
  if has_validation:
    validation_metrics = _evaluate(model, data.validation_sample,
                                   config.batch_size)
    if len(data.validation_sample) < data.num_validation:
      summary_rows["validation"] = len(data.validation_sample)
    scored = _subset(data.validation_sample, MAX_LOG_LIKELIHOOD_ROWS,
                     config.seed)
    ll_rows = len(scored)
    validation_ll = float(np.mean(model.marginal_log_likelihood(
        scored, num_samples=config.num_samples, seed=config.seed,
        verbose=1 if config.verbose >= 1 and _is_slow(scored, config) else 0)))
  reported = dict(train_metrics)
  reported.update({f"val_{k}": v for k, v in validation_metrics.items()})
  if has_validation:
    reported["validation_log_likelihood"] = validation_ll
  bad = {name: value for name, value in reported.items()
         if not math.isfinite(value)}
  if bad:
    raise FloatingPointError(f"training produced non-finite values: {bad}")

  names = data.feature_names or tuple(
      f"column {i + 1}" for i in range(data.width))
  summary = TrainSummary(
      source=data.source,
      num_train=data.num_train,
      num_validation=data.num_validation,
      input_dim=data.width,
      epochs_run=len(losses),
      best_epoch=best_epoch,
      first_loss=float(losses[0]),
      train=train_metrics,
      validation=validation_metrics,
      validation_log_likelihood=validation_ll,
      num_samples=config.num_samples,
      log_likelihood_rows=ll_rows,
      summary_rows=summary_rows,
      recipe=recipe,
      history=full_history,
      streamed=data.streamed,
      beta=config.beta,
      num_train_samples=config.num_train_samples,
      missing_fraction=(dict(zip(names, data.missing_fraction.tolist()))
                        if data.missing_fraction.any() else None),
      dropped_rows=data.dropped_rows,
      logdir=config.logdir,
      model=model)
  summary.logdir = config.logdir if chief else None
  if monitor is not None and chief:
    monitor.set_model(model)  # the final one (best weights, or the refit)
    monitor.write_final(len(losses), {
        "best_val_loss": (float(np.nanmin(full_history["val_loss"]))
                          if has_validation else None),
        "validation_log_likelihood": validation_ll})
  _write_outputs(summary, model, config, reported, chief)
  return summary


def _hparams(config, data):
  """The run's settings for TensorBoard's HParams dashboard."""
  return {
      "data": data.source,
      "likelihood": config.likelihood,
      "latent_dim": config.latent_dim,
      "hidden_units": "-".join(str(u) for u in config.hidden_units) or "linear",
      "beta": config.beta,
      "kl_warmup_steps": config.kl_warmup_steps,
      "free_bits": config.free_bits,
      "num_train_samples": config.num_train_samples,
      "num_atoms": config.num_atoms,
      "df_transform": config.df_transform,
      "learning_rate": config.learning_rate,
      "lr_patience": config.lr_patience,
      "batch_size": config.batch_size,
      "epochs": config.epochs,
      "patience": config.patience,
      "validation_split": config.validation_split,
      "adapt": config.adapt,
      "seed": config.seed,
  }


def _write_outputs(summary, model, config, reported, chief):
  """The final checkpoint and export: the chief's to their places; every
  other worker saves too (multi-worker saving is collective) into a
  temporary folder that is then deleted, as TensorFlow's guide prescribes."""
  import shutil  # pylint: disable=g-import-not-at-top
  for target in ("checkpoint", "export"):
    destination = getattr(config, f"{target}_dir")
    if not destination:
      continue
    scratch = None if chief else tempfile.mkdtemp(prefix="tfvae-worker-")
    if target == "checkpoint":
      path = checkpoint.save_checkpoint(
          model, os.path.join(scratch, "c") if scratch else destination,
          overwrite=config.overwrite,
          metadata={"training": _jsonable(dataclasses.asdict(config)),
                    "model": _model_settings(model),
                    "results": _jsonable(reported),
                    "history": _jsonable(summary.history or {})})
      if chief:
        summary.checkpoint_dir = path
    else:
      from tfvae import export  # pylint: disable=g-import-not-at-top
      paths = export.export_model(model, scratch or destination)
      if chief:
        summary.export_paths = paths
    if scratch:
      shutil.rmtree(scratch, ignore_errors=True)


def _fit_inputs(data, config, strategy, has_validation):
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
  from tfvae import input_pipeline  # pylint: disable=g-import-not-at-top

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


def _callback_classes():
  """The resumable callbacks (defined on first use: they subclass tf_keras)."""
  import tf_keras  # pylint: disable=g-import-not-at-top

  class ResumableEarlyStopping(tf_keras.callbacks.EarlyStopping):
    """Keras' early stopping whose state survives a crash (`state`,
    `resume`): the best value, its epoch, the epochs waited, the best
    weights."""

    _resumed = None

    def resume(self, state, best_weights):
      self._resumed = (state, best_weights)

    def on_train_begin(self, logs=None):
      super().on_train_begin(logs)
      if self._resumed and self._resumed[0]:
        state, best_weights = self._resumed
        self.wait, self.best = state["wait"], state["best"]
        self.best_epoch = state["best_epoch"]
        self.best_weights = best_weights

    def state(self):
      return {"wait": self.wait, "best": float(self.best),
              "best_epoch": self.best_epoch}

  class ResumableReduceLROnPlateau(tf_keras.callbacks.ReduceLROnPlateau):
    """Keras' learning-rate halving on plateaus, with a resumable state (the
    rate itself is the optimizer's, in the backup)."""

    _resumed = None

    def resume(self, state):
      self._resumed = state

    def on_train_begin(self, logs=None):
      super().on_train_begin(logs)
      if self._resumed:
        self.wait, self.best = self._resumed["wait"], self._resumed["best"]
        self.cooldown_counter = self._resumed["cooldown_counter"]

    def state(self):
      return {"wait": self.wait, "best": float(self.best),
              "cooldown_counter": self.cooldown_counter}

  class BackupAndSignals(tf_keras.callbacks.Callback):
    """Backs the run up at the end of every epoch (and every
    `every_steps` steps), and on SIGINT / SIGTERM saves a backup at the next
    step and stops. A mid-epoch backup resumes at the start of its epoch,
    with the weights it saved.

    Args:
      backup: a `tfvae.checkpoint.Backup`, or None (signals still stop
        the run cleanly).
      early_stopping, plateau: the resumable callbacks, or None.
      past: the history of the epochs before a resumption.
      every_steps: optional int, steps between mid-epoch backups.
    """

    def __init__(self, backup, early_stopping, plateau, past, every_steps=None):
      super().__init__()
      self.backup = backup
      self.early_stopping = early_stopping
      self.plateau = plateau
      self.history = {name: list(values) for name, values in past.items()}
      self.every_steps = every_steps
      self.signal_name = None
      self.saved_epoch = None
      self._epoch = 0
      self._steps_since_backup = 0

    @contextlib.contextmanager
    def catching_signals(self):
      if threading.current_thread() is not threading.main_thread():
        yield
        return
      previous = {}

      def handler(number, frame):
        del frame
        self.signal_name = signal.Signals(number).name

      for number in (signal.SIGINT, signal.SIGTERM):
        previous[number] = signal.signal(number, handler)
      try:
        yield
      finally:
        for number, old in previous.items():
          signal.signal(number, old)

    def _state(self, epoch):
      return {
          "epoch": epoch,
          "history": self.history,
          "early_stopping": (self.early_stopping.state()
                             if self.early_stopping else None),
          "plateau": self.plateau.state() if self.plateau else None,
      }

    def _save(self, epoch):
      if self.backup is None:
        return
      best = self.early_stopping.best_weights if self.early_stopping else None
      self.backup.save(self._state(epoch), best)
      self.saved_epoch = epoch
      self._steps_since_backup = 0

    def on_epoch_begin(self, epoch, logs=None):
      self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
      self._steps_since_backup += 1
      if self.signal_name:
        # Mid-epoch: the epoch is redone from its start on resumption.
        self._save(self._epoch)
        self.model.stop_training = True
      elif self.every_steps and self._steps_since_backup >= self.every_steps:
        self._save(self._epoch)

    def on_epoch_end(self, epoch, logs=None):
      if self.signal_name:
        return  # the interrupted epoch is not complete
      for name, value in (logs or {}).items():
        self.history.setdefault(name, []).append(float(value))
      self._save(epoch + 1)

  return ResumableEarlyStopping, ResumableReduceLROnPlateau, BackupAndSignals


def ResumableEarlyStopping(*args, **kwargs):  # pylint: disable=invalid-name
  return _callback_classes()[0](*args, **kwargs)


def ResumableReduceLROnPlateau(*args, **kwargs):  # pylint: disable=invalid-name
  return _callback_classes()[1](*args, **kwargs)


def BackupAndSignals(*args, **kwargs):  # pylint: disable=invalid-name
  return _callback_classes()[2](*args, **kwargs)


def _refit(make_model, data, config, history, best_epoch):
  """A fresh model trained on all rows for the best epoch count, replaying
  the learning-rate schedule of the run with the validation split."""
  import tf_keras  # pylint: disable=g-import-not-at-top
  everything = np.concatenate([data.train, data.validation])
  model = make_model(everything)
  rates = history.get("lr", [config.learning_rate] * best_epoch)
  schedule = tf_keras.callbacks.LearningRateScheduler(
      lambda epoch, _: float(rates[min(epoch, len(rates) - 1)]))
  model.fit(everything, epochs=best_epoch, batch_size=config.batch_size,
            shuffle=True, callbacks=[schedule], verbose=0)
  return model


def _is_slow(x, config):
  """Whether the closing evaluation is long enough to show progress."""
  return len(x) * config.num_samples > 5e6


def _jsonable(value):
  if isinstance(value, dict):
    return {k: _jsonable(v) for k, v in value.items()}
  if isinstance(value, (list, tuple)):
    return [_jsonable(v) for v in value]
  if isinstance(value, (str, int, float, bool)) or value is None:
    return value
  return str(value)


def _evaluate(model, x, batch_size):
  """Averages of the loss terms over x (deterministic: seeded by the model)."""
  metrics = model.evaluate(x, batch_size=batch_size, verbose=0, return_dict=True)
  return {name: float(value) for name, value in metrics.items()}
