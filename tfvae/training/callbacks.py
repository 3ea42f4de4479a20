"""The callbacks of a training run: early stopping and learning-rate
halving whose state survives a crash, the backup of every epoch with
SIGINT / SIGTERM handling, the one-line progress, and the deadline of
`--search`. Imports `tf_keras`: the training loop imports this module when
a run starts."""

import contextlib
import math
import signal
import threading
import time

import tf_keras

from tfvae import runtime


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


def recipe_callbacks(callbacks, has_validation, patience, lr_patience,
                     learning_rate):
  """The recipe's early stopping and learning-rate halving, those of
  `tfvae-train` and of `VAE.fit`, minus the kinds `callbacks` already has.

  Args:
    callbacks: the caller's callbacks (None or a list).
    has_validation: whether there are validation rows (early stopping and
      the halving watch `val_loss`; without them, the halving watches
      `loss` and nothing stops early).
    patience: epochs without a better validation loss before stopping (0:
      never); the best weights are kept.
    lr_patience: epochs without progress before the learning rate halves
      (0: never), down to `learning_rate / 64`.
    learning_rate: the rate training starts from (None: no halving).

  Returns:
    list of (resumable) callbacks: the halving, then the early stopping.
  """
  kinds = tuple(type(c) for c in callbacks or ())
  added = []
  if (lr_patience > 0 and learning_rate is not None and not any(
      issubclass(k, tf_keras.callbacks.ReduceLROnPlateau) for k in kinds)):
    added.append(ResumableReduceLROnPlateau(
        monitor="val_loss" if has_validation else "loss", factor=0.5,
        patience=lr_patience, min_lr=learning_rate / 64))
  if (has_validation and patience > 0 and not any(
      issubclass(k, tf_keras.callbacks.EarlyStopping) for k in kinds)):
    added.append(ResumableEarlyStopping(
        monitor="val_loss", patience=patience, restore_best_weights=True))
  return added


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


class ProgressLine(tf_keras.callbacks.Callback):
  """One line: the epoch, the losses, the best validation loss so far.

  Args:
    epochs: the most epochs the run may take.
    enabled: False shows nothing.
  """

  def __init__(self, epochs, enabled=True):
    super().__init__()
    self.epochs = epochs
    self.enabled = enabled

  def on_train_begin(self, logs=None):
    self.progress = runtime.Progress("training", self.epochs, "epochs",
                                     enabled=self.enabled)
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


class Deadline(tf_keras.callbacks.Callback):
  """Stops training at `deadline` (time.monotonic()), after a step."""

  def __init__(self, deadline):
    super().__init__()
    self.deadline = deadline

  def on_train_batch_end(self, batch, logs=None):
    if time.monotonic() >= self.deadline:
      self.model.stop_training = True
