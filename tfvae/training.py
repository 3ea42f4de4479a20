"""One training run end to end: data -> model -> fit -> evaluate -> outputs.

`tfvae-train` is a thin wrapper around `train(TrainConfig(...))`.
"""

import dataclasses
import math
import os

import numpy as np
import tensorflow as tf
import tf_keras

from tfvae import checkpoint
from tfvae import data as data_lib
from tfvae import model as model_lib
from tfvae import monitoring


@dataclasses.dataclass
class TrainConfig:
  """Everything one run needs; the CLI flags map one to one onto fields."""

  data: str = None  # None: the embedded default data
  latent_dim: int = 5
  hidden_units: tuple = None  # None: one layer of width input_dim
  likelihood: str = "student_t"
  beta: float = 1.0
  kl_warmup_steps: int = 0
  free_bits: float = 0.0
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
  verbose: int = 2


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
  logdir: str
  checkpoint_dir: str = None
  export_paths: dict = None
  model: object = dataclasses.field(default=None, repr=False)

  def format(self):
    def row(name, metrics):
      if not metrics:
        return f"  {name:<11} (no data)"
      return (f"  {name:<11} loss {metrics['loss']:10.4f}   reconstruction_nll "
              f"{metrics['reconstruction_nll']:10.4f}   kl {metrics['kl']:8.4f}")

    lines = [
        "",
        f"tfvae summary: {self.source}, {self.num_train} training / "
        f"{self.num_validation} validation examples, {self.input_dim} features",
        f"  epochs run {self.epochs_run} (best {self.best_epoch}); first-epoch "
        f"loss {self.first_loss:.4f}",
        "  all values in nats per example, in the data's own units "
        "(loss = reconstruction_nll + beta * kl)",
        row("train", self.train),
        row("validation", self.validation),
    ]
    if not math.isnan(self.validation_log_likelihood):
      lines.append(
          f"  validation marginal log-likelihood (IWAE, K={self.num_samples}): "
          f"{self.validation_log_likelihood:.4f} nats per example")
    if self.logdir:
      lines.append(f"  TensorBoard logs: {self.logdir}  "
                   f"(tensorboard --logdir {self.logdir})")
    if self.checkpoint_dir:
      lines.append(f"  checkpoint: {self.checkpoint_dir}")
    for part, path in (self.export_paths or {}).items():
      lines.append(f"  exported {part}: {path}")
    return "\n".join(lines)


def train(config):
  """Runs one training job.

  Args:
    config: a `TrainConfig`.

  Returns:
    A `TrainSummary` (its `model` field holds the trained `VAE`).

  Raises:
    ValueError: bad data or settings, with a message naming the problem.
    FileExistsError: the checkpoint directory exists and `overwrite` is off.
  """
  if config.checkpoint_dir and os.path.exists(config.checkpoint_dir) and (
      not config.overwrite):
    # Checked before training, so an hour of work is not lost at the end.
    raise FileExistsError(
        f"{config.checkpoint_dir} already exists; pass --overwrite to replace it")
  table = (data_lib.load_default() if config.data is None
           else data_lib.read_table(config.data))
  x_train, x_validation = data_lib.split(
      table.values, config.validation_split, seed=config.seed)
  if len(x_train) < 2:
    raise ValueError(f"{table.source}: too few rows to train on ({len(x_train)})")

  tf_keras.utils.set_random_seed(config.seed)
  model = model_lib.VAE(
      input_dim=table.values.shape[1],
      latent_dim=config.latent_dim,
      hidden_units=config.hidden_units,
      likelihood=config.likelihood,
      beta=config.beta,
      kl_warmup_steps=config.kl_warmup_steps,
      free_bits=config.free_bits,
      feature_names=table.feature_names)
  if config.adapt:
    model.adapt(x_train)
  model.compile(model_lib.make_optimizer(config.learning_rate))

  has_validation = len(x_validation) > 0
  callbacks = []
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
      verbose=config.verbose)

  losses = history.history["loss"]
  monitor = "val_loss" if has_validation else "loss"
  best_epoch = int(np.argmin(history.history[monitor])) + 1
  train_metrics = _evaluate(model, x_train, config.batch_size)
  validation_metrics = (_evaluate(model, x_validation, config.batch_size)
                        if has_validation else {})
  validation_ll = (
      float(np.mean(model.marginal_log_likelihood(
          x_validation, num_samples=config.num_samples, seed=config.seed)))
      if has_validation else float("nan"))
  reported = dict(train_metrics)
  reported.update({f"val_{k}": v for k, v in validation_metrics.items()})
  if has_validation:
    reported["validation_log_likelihood"] = validation_ll
  bad = {name: value for name, value in reported.items()
         if not math.isfinite(value)}
  if bad:
    raise FloatingPointError(f"training produced non-finite values: {bad}")

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
      logdir=config.logdir,
      model=model)
  if config.checkpoint_dir:
    summary.checkpoint_dir = checkpoint.save_checkpoint(
        model, config.checkpoint_dir, overwrite=config.overwrite)
  if config.export_dir:
    from tfvae import export  # pylint: disable=g-import-not-at-top
    summary.export_paths = export.export(model, config.export_dir)
  return summary


def _evaluate(model, x, batch_size):
  """Averages of the loss terms over x, with a fixed seed for repeatability."""
  tf.random.set_seed(0)
  metrics = model.evaluate(x, batch_size=batch_size, verbose=0, return_dict=True)
  return {name: float(value) for name, value in metrics.items()}
