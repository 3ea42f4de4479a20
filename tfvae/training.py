"""One training run end to end: data -> model -> fit -> evaluate -> outputs.

`tfvae-train` is a thin wrapper around `run(TrainConfig(...))`, which checks
every output location and reads the data before it imports TensorFlow, so
that mistakes cost a second. Importing this module does not import
TensorFlow; `train` does.
"""

import dataclasses
import math
import os

import numpy as np

from tfvae import atomic
from tfvae import checkpoint
from tfvae import data as data_lib
from tfvae import families
from tfvae import runtime

# The closing importance-weighted evaluation scores at most this many
# validation rows (a seeded random subset beyond it), and the closing
# train / validation metrics at most `MAX_SUMMARY_ROWS` rows, so that the
# end of a run costs a bounded, small fraction of training.
MAX_LOG_LIKELIHOOD_ROWS = 10000
MAX_SUMMARY_ROWS = 100000


@dataclasses.dataclass
class TrainConfig:
  """Everything one run needs; the CLI flags map one to one onto fields."""

  data: str = None  # None: the embedded default data
  read_options: data_lib.ReadOptions = None
  latent_dim: int = 5
  hidden_units: tuple = None  # None: one layer of width input_dim
  likelihood: str = families.DEFAULT
  beta: float = 1.0
  kl_warmup_steps: int = 0
  free_bits: float = 0.0
  num_train_samples: int = 1
  epochs: int = 1000
  batch_size: int = 32
  learning_rate: float = 1e-3
  validation_split: float = 0.2
  patience: int = 50
  adapt: bool = True
  num_samples: int = 1000
  seed: int = 0
  logdir: str = "runs/tfvae"  # None: no TensorBoard logs
  checkpoint_dir: str = None
  export_dir: str = None
  overwrite: bool = False
  verbose: int = 1

  def model_options(self):
    """The `VAE` constructor arguments these settings give."""
    return dict(latent_dim=self.latent_dim, hidden_units=self.hidden_units,
                likelihood=self.likelihood, beta=self.beta,
                kl_warmup_steps=self.kl_warmup_steps,
                free_bits=self.free_bits,
                num_train_samples=self.num_train_samples)


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
        f"{self.num_validation} validation examples, {self.input_dim} features",
    ]
    if self.dropped_rows:
      lines.append(f"  {self.dropped_rows} rows with every value missing were "
                   "left out")
    if self.missing_fraction:
      shown = ", ".join(f"{name} {fraction:.1%}" for name, fraction in
                        self.missing_fraction.items() if fraction > 0)
      lines.append(f"  missing values per column: {shown}")
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
  table = load_table(config)
  runtime.import_tensorflow(verbose=config.verbose >= 3)
  return train(config, table)


def _progress_callback(config):
  import tf_keras  # pylint: disable=g-import-not-at-top

  class ProgressLine(tf_keras.callbacks.Callback):
    """One line: the epoch, the losses, the best validation loss so far."""

    def on_train_begin(self, logs=None):
      self.progress = runtime.Progress("training", config.epochs, "epochs",
                                       enabled=config.verbose == 1)
      self.best = (math.inf, None)

    def on_epoch_end(self, epoch, logs=None):
      logs = logs or {}
      parts = [f"loss {logs.get('loss', math.nan):.4f}"]
      if "val_loss" in logs:
        if logs["val_loss"] < self.best[0]:
          self.best = (logs["val_loss"], epoch + 1)
        parts.append(f"val_loss {logs['val_loss']:.4f} (best "
                     f"{self.best[0]:.4f} at epoch {self.best[1]})")
      self.progress.update(epoch + 1, ", ".join(parts))
      self._last = (epoch + 1, ", ".join(parts))

    def on_train_end(self, logs=None):
      if getattr(self, "_last", None):
        self.progress.close(*self._last)

  return ProgressLine()


def _subset(x, max_rows, seed):
  if len(x) <= max_rows:
    return x
  order = np.random.default_rng(seed).choice(len(x), max_rows, replace=False)
  return x[np.sort(order)]


def train(config, table=None):
  """Runs one training job (imports TensorFlow).

  Args:
    config: a `TrainConfig`.
    table: optional `tfvae.data.Table`; default `load_table(config)`.

  Returns:
    A `TrainSummary` (its `model` field holds the trained `VAE`).

  Raises:
    ValueError: bad data or settings, with a message naming the problem.
    FileExistsError: the checkpoint directory exists and `overwrite` is off.
  """
  import tf_keras  # pylint: disable=g-import-not-at-top
  from tfvae import model as model_lib  # pylint: disable=g-import-not-at-top
  from tfvae import monitoring  # pylint: disable=g-import-not-at-top
  from tfvae import networks  # pylint: disable=g-import-not-at-top

  check_outputs(config)
  if table is None:
    table = load_table(config)
  x_train, x_validation = data_lib.split(
      table.values, config.validation_split, seed=config.seed)
  if len(x_train) < 2:
    raise ValueError(f"{table.source}: too few rows to train on ({len(x_train)})")
  data_lib.check_columns_observed(x_train, f"{table.source} (training rows)",
                                  table.feature_names)

  tf_keras.utils.set_random_seed(config.seed)
  model = model_lib.VAE(input_dim=table.values.shape[1],
                        feature_names=table.feature_names, seed=config.seed,
                        **config.model_options())
  if config.adapt:
    model.adapt(x_train)
  model.compile(networks.make_optimizer(config.learning_rate))

  has_validation = len(x_validation) > 0
  callbacks = [_progress_callback(config)]
  if config.logdir:
    callbacks += [
        tf_keras.callbacks.TensorBoard(log_dir=config.logdir),
        monitoring.LatentMonitor(
            config.logdir, x_validation if has_validation else x_train),
    ]
  if has_validation and config.patience > 0:
    callbacks.append(tf_keras.callbacks.EarlyStopping(
        monitor="val_loss", patience=config.patience,
        restore_best_weights=True))
  history = model.fit(
      x_train,
      validation_data=(x_validation,) if has_validation else None,
      epochs=config.epochs,
      batch_size=config.batch_size,
      shuffle=True,
      callbacks=callbacks,
      verbose=2 if config.verbose >= 2 else 0)

  losses = history.history["loss"]
  monitor = "val_loss" if has_validation else "loss"
  best_epoch = int(np.nanargmin(history.history[monitor])) + 1
  summary_rows = {}
  train_rows = _subset(x_train, MAX_SUMMARY_ROWS, config.seed)
  summary_rows["train"] = len(train_rows) if len(train_rows) < len(x_train) else None
  train_metrics = _evaluate(model, train_rows, config.batch_size)
  validation_metrics = {}
  validation_ll, ll_rows = float("nan"), 0
  if has_validation:
    validation_rows = _subset(x_validation, MAX_SUMMARY_ROWS, config.seed)
    summary_rows["validation"] = (len(validation_rows) if len(validation_rows)
                                  < len(x_validation) else None)
    validation_metrics = _evaluate(model, validation_rows, config.batch_size)
    scored = _subset(x_validation, MAX_LOG_LIKELIHOOD_ROWS, config.seed)
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

  missing = table.missing_fraction
  names = table.feature_names or tuple(
      f"column {i + 1}" for i in range(table.values.shape[1]))
  summary = TrainSummary(
      source=table.source,
      num_train=len(x_train),
      num_validation=len(x_validation),
      input_dim=table.values.shape[1],
      epochs_run=len(losses),
      best_epoch=best_epoch,
      first_loss=float(losses[0]),
      train=train_metrics,
      validation=validation_metrics,
      validation_log_likelihood=validation_ll,
      num_samples=config.num_samples,
      log_likelihood_rows=ll_rows,
      summary_rows=summary_rows,
      beta=config.beta,
      num_train_samples=config.num_train_samples,
      missing_fraction=(dict(zip(names, missing.tolist()))
                        if missing.any() else None),
      dropped_rows=table.dropped_rows,
      logdir=config.logdir,
      model=model)
  if config.checkpoint_dir:
    summary.checkpoint_dir = checkpoint.save_checkpoint(
        model, config.checkpoint_dir, overwrite=config.overwrite,
        metadata={"training": _jsonable(dataclasses.asdict(config)),
                  "results": _jsonable(reported)})
  if config.export_dir:
    from tfvae import export  # pylint: disable=g-import-not-at-top
    summary.export_paths = export.export_model(model, config.export_dir)
  return summary


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
