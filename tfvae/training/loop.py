"""One training run end to end, as a short list of named steps: check the
outputs, read the data, build the model, resume or start, fit, evaluate,
summarise, write the checkpoint and the export.

`tfvae-train` is a thin wrapper around `run(TrainConfig(...))`, which checks
every output location and reads the data before it imports TensorFlow, so
that mistakes cost a second. Importing this module does not import
TensorFlow; `train` does.
"""

import dataclasses
import math
import os
import tempfile
import time

import numpy as np

from tfvae import atomic
from tfvae import checkpoint
from tfvae import data as data_lib
from tfvae import runtime
from tfvae import validation
from tfvae.data import columns
from tfvae.inference import calibration
from tfvae.training import inputs
from tfvae.training import recipe as recipe_lib
from tfvae.training import summary as summary_lib

# The closing importance-weighted evaluation scores at most this many
# validation rows (a seeded random subset beyond it), so that the end of a
# run costs a bounded, small fraction of training.
MAX_LOG_LIKELIHOOD_ROWS = 10000


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


def run(config, data=None):
  """Checks outputs, reads the data, then starts TensorFlow and trains.

  Args:
    config: a `TrainConfig`.
    data: optional `TrainingData` already read (`inputs.prepare_data`).

  Returns:
    A `TrainSummary` (its `model` field holds the trained `VAE`).
  """
  check_outputs(config)
  if data is None:
    data = inputs.prepare_data(config)
  strategies = []
  runtime.import_tensorflow(
      verbose=config.verbose >= 3,
      startup=lambda tf: strategies.append(inputs.make_strategy(config.strategy)))

  def announce(epoch, directory):
    if config.verbose >= 1:
      print(f"resuming from epoch {epoch} of {directory}", flush=True)

  if config.search:
    from tfvae.training import tuning  # pylint: disable=g-import-not-at-top
    return tuning.search(config, data)
  return train(config, data, on_resume=announce, strategy=strategies[0])


class Interrupted(Exception):
  """SIGINT or SIGTERM stopped a run; its backup (if any) was saved."""

  def __init__(self, signal_name, epoch, directory):
    where = (f"; backup of epoch {epoch} saved in {directory}: run the same "
             "command to resume" if directory else "")
    super().__init__(f"interrupted by {signal_name}{where}")
    self.signal_name = signal_name


@dataclasses.dataclass
class _Job:
  """What the steps of `train` share: the settings, the data, where it
  runs, the model's extra constructor arguments, and the TensorBoard
  monitor once there is one."""

  config: object
  data: inputs.TrainingData
  strategy: object
  chief: bool
  model_options: dict
  monitor: object = None
  # `fit_epochs` (run by this process), `fit_seconds`, `evaluation_seconds`.
  timing: dict = dataclasses.field(default_factory=dict)
  # What `trim_rows` left out, for the summary, and its masks of the rows
  # kept (training, validation), for the backup.
  trimmed: dict = None
  kept_rows: tuple = None
  # The K the recipe wanted, if the epoch budget made it choose a lower one.
  train_samples_lowered_from: int = None

  @property
  def has_validation(self):
    return self.data.num_validation > 0

  @property
  def monitored(self):
    return "val_loss" if self.has_validation else "loss"


def train(config, data=None, model_options=None, on_resume=None,
          strategy=None):
  """Runs one training job (imports TensorFlow).

  With `config.checkpoint_dir`, the state at the end of every epoch is
  backed up in it (`tfvae.checkpoint.Backup`); if it holds an unfinished
  run with the same settings, training resumes from its last backup. SIGINT
  and SIGTERM save a backup and raise `Interrupted`.

  Args:
    config: a `TrainConfig`.
    data: a `TrainingData` (`inputs.prepare_data`) or a `tfvae.data.Table`;
      default `inputs.prepare_data(config)`.
    model_options: optional dict of further `VAE` constructor arguments
      (beyond the command line's), e.g. for benchmarks.
    on_resume: optional callable(epoch, directory), called when a run
      resumes.
    strategy: optional `tf.distribute` strategy; default
      `inputs.make_strategy(config.strategy)` (a multi-worker strategy must
      be made before TensorFlow runs any operation).

  Returns:
    A `TrainSummary` (its `model` field holds the trained `VAE`).

  Raises:
    ValueError: bad data or settings, with a message naming the problem.
    FileExistsError: the checkpoint directory exists and `overwrite` is off.
    Interrupted: SIGINT or SIGTERM.
  """
  check_outputs(config)
  if data is None or isinstance(data, data_lib.Table):
    data = inputs.prepare_data(config, table=data)
  k_given = config.num_train_samples is not None
  config = config.resolve(data.num_train, data.width)
  strategy = strategy or inputs.make_strategy(config.strategy)
  job = _Job(config, data, strategy, inputs.is_chief(strategy),
             dict(model_options or {}))
  if not k_given:
    job.train_samples_lowered_from = config.lowered_train_samples(
        data.num_train)
  if config.trim:
    trim_rows(job)
  model = _build_model_with_room_for_its_atoms(job)
  started = time.monotonic()
  history = _fit(job, model, on_resume)
  job.timing["fit_seconds"] = time.monotonic() - started
  best_epoch = int(np.nanargmin(history[job.monitored])) + 1
  refit = job.config.refit and job.has_validation and not data.streamed
  if refit:
    model = _refit(job, model, history)
  # A refit model trained on the validation rows too: their scores are no
  # held-out reference for percentiles.
  started = time.monotonic()
  evaluation = _closing_evaluation(job, model, calibrate=not refit)
  job.timing["evaluation_seconds"] = time.monotonic() - started
  summary = _summarize(job, model, history, best_epoch, evaluation)
  if job.monitor is not None and job.chief:
    job.monitor.set_model(model)  # the final one (best weights, or the refit)
    job.monitor.write_final(len(history["loss"]), {
        "best_val_loss": (float(np.nanmin(history["val_loss"]))
                          if job.has_validation else None),
        "validation_log_likelihood": evaluation["validation_log_likelihood"]})
  write_outputs(summary, model, job.config, evaluation["reported"], job.chief)
  return summary


def trim_rows(job):
  """Leaves out of both splits the `config.trim` share of rows least likely
  under a first fit (a trimmed likelihood, as robust statistics trims
  outliers: the run's model then is not pulled towards the anomalies that
  the rows it is given hold). Updates `job.data` and `job.trimmed`.

  A first model of the run's settings is fitted on all rows (no backups,
  logs or outputs); the rows whose anomaly score (`VAE.anomaly_score`, the
  run's seed) lies above the (1 - trim) quantile of the training rows'
  scores are left out, in the training and the validation split alike.
  A run that resumes keeps the rows its start kept (stored with its
  backup, `checkpoint.TRIM_FILE`) instead of fitting a first model again.

  Raises:
    ValueError: the data are streamed, trim is not in [0, 0.5), or the
      checkpoint folder holds an unfinished run trimmed otherwise.
  """
  config, data = job.config, job.data
  validation.check_trim(config.trim)
  if data.streamed:
    raise ValueError(f"{data.source}: trim needs the table in memory; it is "
                     "streamed (a file over 512 MiB, or stream='on')")
  stored = _stored_trim(job)
  if stored is not None:
    keep_train, keep_validation, threshold = stored
  else:
    pilot = _Job(dataclasses.replace(config, trim=0.0, checkpoint_dir=None,
                                     logdir=None, export_dir=None),
                 data, job.strategy, job.chief, dict(job.model_options))
    model = _build_model_with_room_for_its_atoms(pilot)
    _fit(pilot, model, None)
    scores = model.anomaly_score(data.train, seed=config.seed)
    threshold = float(np.quantile(scores, 1.0 - config.trim))
    keep_train = scores <= threshold
    keep_validation = np.ones(data.num_validation, bool)
    if data.num_validation:
      keep_validation = model.anomaly_score(data.validation,
                                            seed=config.seed) <= threshold
  job.trimmed = {"fraction": config.trim, "threshold": threshold,
                 "train": int(np.sum(~keep_train)),
                 "validation": int(np.sum(~keep_validation))}
  job.kept_rows = (keep_train, keep_validation)
  job.data = inputs.keep_rows(data, keep_train, keep_validation, config.seed)


def trimmed_data(config, data):
  """`data` without the rows `trim_rows` leaves out, for runs that share
  one trimming (`tuning.search`'s candidates).

  Returns:
    (a new `TrainingData`, the summary's dict of what was left out).
  """
  config = config.resolve(data.num_train, data.width)
  strategy = inputs.make_strategy(config.strategy)
  job = _Job(dataclasses.replace(config, checkpoint_dir=None), data, strategy,
             inputs.is_chief(strategy), {})
  trim_rows(job)
  return job.data, job.trimmed


def _stored_trim(job):
  """The rows an unfinished run of this checkpoint folder kept when it
  started (`checkpoint.read_trim`), if the run will resume; else None.

  Raises:
    ValueError: the unfinished run was trimmed by another share, or its
      rows do not match the data's.
  """
  config, data = job.config, job.data
  if (not config.checkpoint_dir or config.overwrite or
      not checkpoint.is_unfinished(config.checkpoint_dir) or
      not checkpoint.has_backup(config.checkpoint_dir)):
    return None
  training_settings = checkpoint.read_metadata(config.checkpoint_dir).get(
      "training") or {}
  stored = checkpoint.read_trim(config.checkpoint_dir)
  if (training_settings.get("trim", 0.0) != config.trim or stored is None or
      len(stored[0]) != data.num_train or
      len(stored[1]) != data.num_validation):
    raise ValueError(
        f"{config.checkpoint_dir} holds an unfinished run with other "
        "settings or rows; pass overwrite=True to start over, or run the "
        "same command as before")
  return stored


def _build_model(job, adapt_rows):
  """A new compiled `VAE` for the run, adapted to `adapt_rows` (None: the
  streamed scan's statistics)."""
  import tf_keras  # pylint: disable=g-import-not-at-top
  from tfvae import model as model_lib  # pylint: disable=g-import-not-at-top
  from tfvae import networks  # pylint: disable=g-import-not-at-top
  config, data = job.config, job.data
  tf_keras.utils.set_random_seed(config.seed)
  with job.strategy.scope():
    options = {**config.model_options(), **job.model_options}
    if data.categories:
      # A categorical column's levels are its atoms.
      most = max(len(levels) for levels in data.categories if levels)
      options["num_atoms"] = max(options.get("num_atoms") or 0, most)
    model = model_lib.VAE(input_dim=data.width,
                          feature_names=data.feature_names, seed=config.seed,
                          categories=data.categories,
                          column_types=data.column_types,
                          ignored_columns=data.ignored_columns or None,
                          **options)
    if config.adapt:
      if adapt_rows is None:  # streamed: the scan's statistics
        model.adapt_to_sample(data.loc, data.scale, data.train_sample,
                              data.value_range)
      else:
        model.adapt(adapt_rows)
    model.compile(networks.make_optimizer(config.learning_rate))
  return model


def _build_model_with_room_for_its_atoms(job):
  """The run's model, with room for as many atoms as the busiest column
  holds and no more: the mixture's outputs cost time on every step (2.7x
  on 64 continuous columns, scripts/bench_train.py), whether or not atoms
  were found. Updates `job.config` and `job.model_options` to match."""
  model = _build_model(job, job.data.train)
  needed = _atoms_needed(model)
  if needed < model.num_atoms:
    job.config = dataclasses.replace(job.config, num_atoms=needed)
    job.model_options["num_atoms"] = needed
    model = _build_model(job, job.data.train)
  return model


def _fit(job, model, on_resume):
  """Fits `model` with the run's callbacks, from its backup if it has one.

  Returns:
    The whole history: the epochs of earlier, interrupted runs and these.
  """
  from tfvae.training import callbacks as callbacks_lib  # pylint: disable=g-import-not-at-top
  config = job.config
  backup = None
  recipe_callbacks = callbacks_lib.recipe_callbacks(
      None, job.has_validation, config.patience, config.lr_patience,
      config.learning_rate)
  plateau = next((c for c in recipe_callbacks if isinstance(
      c, callbacks_lib.ResumableReduceLROnPlateau)), None)
  early_stopping = next((c for c in recipe_callbacks if isinstance(
      c, callbacks_lib.ResumableEarlyStopping)), None)
  initial_epoch, past = 0, {}
  if config.checkpoint_dir:
    backup = checkpoint.Backup(config.checkpoint_dir, model,
                               writable=job.chief)
    initial_epoch, past = _resume_or_start(job, model, backup, early_stopping,
                                           plateau, on_resume)
  stopper = callbacks_lib.BackupAndSignals(
      backup, early_stopping, plateau, past,
      every_steps=config.backup_every_steps)
  callbacks = [callbacks_lib.ProgressLine(config.epochs,
                                          enabled=config.verbose == 1)]
  callbacks += [c for c in (plateau, early_stopping) if c is not None]
  if config.deadline is not None:
    callbacks.append(callbacks_lib.Deadline(config.deadline))
  callbacks.append(stopper)
  logdir = config.logdir
  if logdir and not job.chief:  # other workers log to a scratch folder
    logdir = tempfile.mkdtemp(prefix="tfvae-worker-logs-")
  callbacks += _logging_callbacks(job, logdir, stopper, past, initial_epoch)
  train_input, validation_input, fit_options = inputs.fit_inputs(
      job.data, config, job.strategy, job.has_validation)
  try:
    with stopper.catching_signals():
      history = model.fit(
          train_input, validation_data=validation_input, epochs=config.epochs,
          initial_epoch=initial_epoch, callbacks=callbacks,
          patience=config.patience, lr_patience=config.lr_patience,
          verbose=2 if config.verbose >= 2 else 0, **fit_options)
    job.timing["fit_epochs"] = len(history.history.get("loss", []))
    if stopper.signal_name:
      raise Interrupted(stopper.signal_name, stopper.saved_epoch,
                        config.checkpoint_dir if backup else None)
  finally:
    if backup is not None:
      backup.close()
    if logdir != config.logdir:
      import shutil  # pylint: disable=g-import-not-at-top
      shutil.rmtree(logdir, ignore_errors=True)
  # A run killed after its last epoch (in its closing evaluation) resumes
  # with no epoch left to run: its history is the backup's.
  names = list(past) + [name for name in history.history if name not in past]
  return {name: list(past.get(name, [])) + list(history.history.get(name, []))
          for name in names}


def _resume_or_start(job, model, backup, early_stopping, plateau, on_resume):
  """Restores an unfinished run's backup (same settings only), or marks the
  folder as holding a run that has started.

  Returns:
    (the first epoch to run, the history of the epochs already run).
  """
  config = job.config
  if backup.exists() and config.overwrite:
    backup.remove()  # start over
  if not backup.exists():
    if job.chief:
      checkpoint.write_marker(
          config.checkpoint_dir, complete=False,
          model=_model_settings(model),
          training=_jsonable(dataclasses.asdict(config)))
      if job.kept_rows is not None:  # before the first backup
        checkpoint.write_trim(config.checkpoint_dir, *job.kept_rows,
                              job.trimmed["threshold"])
    return 0, {}
  marker = checkpoint.read_metadata(config.checkpoint_dir)
  if (marker.get("model") != _model_settings(model) or
      (marker.get("training") or {}).get("trim", 0.0) != config.trim):
    raise ValueError(
        f"{config.checkpoint_dir} holds an unfinished run with other "
        "settings; pass overwrite=True to start over, or run the same "
        "command as before")
  state, best_weights = backup.restore()
  if early_stopping:
    early_stopping.resume(state.get("early_stopping"), best_weights)
  if plateau:
    plateau.resume(state.get("plateau"))
  if on_resume:
    on_resume(state["epoch"], config.checkpoint_dir)
  return state["epoch"], state["history"]


def _logging_callbacks(job, logdir, stopper, past, initial_epoch):
  """TensorBoard: Keras' epoch scalars (with the epochs of an earlier,
  interrupted run filled in) and, unless turned off, tfvae's monitor, which
  `job.monitor` then holds."""
  job.monitor = None
  if not logdir:
    return []
  from tfvae import monitoring  # pylint: disable=g-import-not-at-top
  interrupted = lambda: stopper.signal_name is not None  # noqa: E731
  board = monitoring.EpochTensorBoard(logdir, skip_epoch=interrupted)
  board.fill_missing(past, initial_epoch)
  if not job.config.monitor:
    return [board]
  data = job.data
  job.monitor = monitoring.VAEMonitor(
      logdir, data.validation_sample if job.has_validation else
      data.train_sample, hparams=_hparams(job.config, data),
      skip_epoch=interrupted, seed=job.config.seed)
  return [board, job.monitor]


def _real_columns_log_likelihood(model, rows, config):
  """With both text and real columns: the mean log p(x_real) of the rows,
  the first factor of log p(x) = log p(x_real) + log p(x_text | x_real)
  (the text columns marginalised); None otherwise."""
  text = [i for i, levels in enumerate(model.categories or ())
          if levels is not None]
  if not text or len(text) == model.input_dim:
    return None
  blanked = np.array(rows, np.float64)
  blanked[:, text] = np.nan
  return float(np.mean(model.marginal_log_likelihood(
      blanked, num_samples=config.num_samples, seed=config.seed)))


def _closing_evaluation(job, model, calibrate=True):
  """The trained model's losses on (bounded samples of) both splits and its
  validation marginal log-likelihood; with `calibrate`, the validation
  rows' scores become the model's reference for percentiles
  (`VAE.calibrate`).

  Returns:
    dict: `train`, `validation` (metric dicts), `validation_log_likelihood`,
    `log_likelihood_rows`, `summary_rows` and `reported` (everything, flat,
    for the checkpoint's marker).

  Raises:
    FloatingPointError: a value is not finite.
  """
  config, data = job.config, job.data
  summary_rows = {}
  train_metrics = _evaluate(model, data.train_sample, config.batch_size)
  if len(data.train_sample) < data.num_train:
    summary_rows["train"] = len(data.train_sample)
  validation_metrics = {}
  validation_ll, ll_rows, real_ll = float("nan"), 0, None
  level_weights = None
  if job.has_validation:
    validation_metrics = _evaluate(model, data.validation_sample,
                                   config.batch_size)
    if len(data.validation_sample) < data.num_validation:
      summary_rows["validation"] = len(data.validation_sample)
    scored = inputs.subset(data.validation_sample, MAX_LOG_LIKELIHOOD_ROWS,
                           config.seed)
    ll_rows = len(scored)
    log_likelihoods = model.marginal_log_likelihood(
        scored, num_samples=config.num_samples, seed=config.seed,
        verbose=1 if config.verbose >= 1 and _is_slow(scored, config) else 0)
    validation_ll = float(np.mean(log_likelihoods))
    real_ll = _real_columns_log_likelihood(model, scored, config)
    if calibrate and ll_rows >= 2 and np.isfinite(log_likelihoods).all():
      # The held-out rows' anomaly scores (`VAE.anomaly_score`'s basis,
      # from the log-likelihoods just estimated): the reference of
      # percentiles and contamination thresholds (`VAE.calibrate`).
      from tfvae.inference import importance  # pylint: disable=g-import-not-at-top
      model.score_reference = calibration.reference_quantiles(
          importance.scores_from_log_likelihoods(model, scored,
                                                 log_likelihoods))
    if calibrate and model.categories is not None:
      # Imputing a category: each categorical column's level probabilities
      # blended with the frequencies of every row by a weight fitted on
      # the validation rows (`VAE.calibrate_levels`).
      level_weights = model.calibrate_levels(
          scored, frequency_rows=np.concatenate(
              [data.train_sample, data.validation_sample]),
          seed=config.seed)
  reported = dict(train_metrics)
  reported.update({f"val_{k}": v for k, v in validation_metrics.items()})
  if job.has_validation:
    reported["validation_log_likelihood"] = validation_ll
  if real_ll is not None:
    reported["validation_log_likelihood_real_columns"] = real_ll
  bad = {name: value for name, value in reported.items()
         if not math.isfinite(value)}
  if bad:
    raise FloatingPointError(f"training produced non-finite values: {bad}")
  return {"train": train_metrics, "validation": validation_metrics,
          "validation_log_likelihood": validation_ll,
          "validation_log_likelihood_real": real_ll,
          "log_likelihood_rows": ll_rows, "summary_rows": summary_rows,
          "level_weights": level_weights, "reported": reported}


def _summarize(job, model, history, best_epoch, evaluation):
  """The run's `TrainSummary`."""
  config, data = job.config, job.data
  names = data.feature_names or tuple(
      f"column {i + 1}" for i in range(data.width))
  return summary_lib.TrainSummary(
      source=data.source,
      num_train=data.num_train,
      num_validation=data.num_validation,
      input_dim=data.width,
      epochs_run=len(history["loss"]),
      best_epoch=best_epoch,
      first_loss=float(history["loss"][0]),
      train=evaluation["train"],
      validation=evaluation["validation"],
      validation_log_likelihood=evaluation["validation_log_likelihood"],
      validation_log_likelihood_real=evaluation[
          "validation_log_likelihood_real"],
      num_samples=config.num_samples,
      log_likelihood_rows=evaluation["log_likelihood_rows"],
      score_threshold=(model.anomaly_threshold(0.01)
                       if model.score_reference is not None else None),
      level_weights=({name: weight for name, (weight, _, _) in
                      evaluation["level_weights"].items()}
                     if evaluation["level_weights"] else None),
      summary_rows=evaluation["summary_rows"],
      recipe={name: getattr(config, name)
              for name in recipe_lib.RECIPE_FIELDS},
      history=history,
      streamed=data.streamed,
      beta=config.beta,
      num_train_samples=config.num_train_samples,
      missing_fraction=(dict(zip(names, data.missing_fraction.tolist()))
                        if data.missing_fraction.any() else None),
      dropped_rows=data.dropped_rows,
      trimmed=job.trimmed,
      train_samples_lowered=(_lowered_train_samples(job)
                             if job.train_samples_lowered_from else None),
      column_lines=(columns.describe(data.categories, data.feature_names,
                                     data.train_sample, data.column_types)
                    if data.categories or data.column_types else None),
      ignored_columns=tuple(data.ignored_columns or ()),
      logdir=config.logdir if job.chief else None,
      fit_seconds=job.timing.get("fit_seconds"),
      evaluation_seconds=job.timing.get("evaluation_seconds"),
      rows_per_second=(
          job.timing.get("fit_epochs", 0) * data.num_train /
          job.timing["fit_seconds"] if job.timing.get("fit_seconds") else None),
      model=model)


def _lowered_train_samples(job):
  """What the summary says of a K the epoch budget lowered: the K wanted,
  the budget, and the minutes an epoch of the wanted K would take."""
  config, wanted = job.config, job.train_samples_lowered_from
  return {"wanted": wanted, "budget_minutes": config.epoch_budget,
          "wanted_minutes": recipe_lib.epoch_seconds(
              job.data.num_train, job.data.width, config.hidden_units,
              config.latent_dim, wanted) / 60.0}


def _atoms_needed(model):
  """The most atoms any column of an adapted model holds (0 when none)."""
  if not model.num_atoms:
    return 0
  from tfvae import statistics  # pylint: disable=g-import-not-at-top
  return statistics.most_atoms(model.standardization.atoms.numpy())


def _model_settings(model):
  """What a resumed run must share with the one that saved the backup."""
  config = _jsonable(model.get_config())
  config.pop("name", None)
  config.pop("score_reference", None)  # a result, kept in model.keras
  config.pop("level_calibration", None)  # likewise
  return config


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


def write_outputs(summary, model, config, reported, chief):
  """The final export and checkpoint: the chief's to their places; every
  other worker saves too (multi-worker saving is collective) into a
  temporary folder that is then deleted, as TensorFlow's guide prescribes.

  The export comes first: the checkpoint's marker saying the run finished
  is the last thing written, so a run killed while writing its outputs is
  still unfinished, and the same command resumes it (to no epoch left),
  evaluates and writes both again (the export as a new version)."""
  import shutil  # pylint: disable=g-import-not-at-top
  for target in ("export", "checkpoint"):
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


def _refit(job, model, history):
  """A fresh model trained on all rows (the training rows, then the
  validation rows) for the best epoch count, replaying the learning-rate
  schedule of the run with the validation split (`VAE.refit`)."""
  import tf_keras  # pylint: disable=g-import-not-at-top
  config, data = job.config, job.data
  tf_keras.utils.set_random_seed(config.seed)
  with job.strategy.scope():
    return model.refit(np.concatenate([data.train, data.validation]),
                       history=history, batch_size=config.batch_size)


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
