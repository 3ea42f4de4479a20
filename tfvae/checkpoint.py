"""Training checkpoints: a Keras `.keras` file and a tfvae marker, in a folder.

A checkpoint folder holds

    model.keras             the `VAE` in Keras' native format: config,
                            weights (standardisation included) and the
                            optimizer's state; `tf_keras.models.load_model`
                            reads it directly
    tfvae_checkpoint.json   what wrote it: the format, whether the run
                            finished, the training settings and results
    backup/                 while a run is on: its state at the end of the
                            last epoch (`Backup`), from which the same
                            command resumes after a crash, and, for a
                            trimmed run, the rows it kept (`write_trim`)

Only these three names are tfvae's: `overwrite=True` replaces the model
and the marker (each written to a temporary file and renamed into place,
so a reader never sees half a file) and deletes the backup, and leaves
everything else in the folder as it was (the user's notes, the input
data, TensorBoard logs or exports placed inside it). A folder reached
through a symbolic link is resolved once, and written into where it really
is. A folder that holds no tfvae marker is never written into unless it is
empty.
"""

import json
import os
import tempfile

from tfvae import atomic

MODEL_FILE = "model.keras"
MARKER_FILE = "tfvae_checkpoint.json"
FORMAT = "tfvae-checkpoint"


def is_checkpoint(directory):
  """Whether `directory` is a checkpoint folder that tfvae wrote."""
  directory = os.fspath(directory)
  marker = os.path.join(directory, MARKER_FILE)
  try:
    with open(marker, encoding="utf-8") as f:
      return json.load(f).get("format") == FORMAT
  except (OSError, ValueError, AttributeError):
    return False


def why_not_a_checkpoint(directory):
  """A one-line message: `directory` is not a tfvae checkpoint, and why."""
  return (f"{os.fspath(directory)} is not a tfvae checkpoint: "
          f"{_missing_part(directory)}")


def _missing_part(directory):
  """What `directory` lacks to be a tfvae checkpoint (one phrase)."""
  directory = os.fspath(directory)
  marker = os.path.join(directory, MARKER_FILE)
  if not os.path.isdir(directory):
    reason = "no such folder" if not os.path.lexists(directory) else (
        "it is a file, not a folder")
  elif not os.path.isfile(marker):
    reason = (f"it has no {MARKER_FILE} (tfvae-train --checkpoint-dir "
              "writes checkpoints)")
  else:
    try:
      with open(marker, encoding="utf-8") as f:
        found = json.load(f)
      reason = (f"its {MARKER_FILE} names the format "
                f"{found.get('format')!r}, not {FORMAT!r}"
                if isinstance(found, dict) else
                f"its {MARKER_FILE} does not hold a JSON object")
    except OSError as error:
      reason = f"its {MARKER_FILE} cannot be read ({error.strerror})"
    except ValueError as error:
      reason = (f"its {MARKER_FILE} is not valid JSON (truncated or "
                f"corrupted: {error})")
    else:
      if is_checkpoint(directory):  # the marker is ours: what else lacks?
        reason = (f"its {MODEL_FILE} is missing" if not os.path.isfile(
            os.path.join(directory, MODEL_FILE)) else "nothing (it is one)")
  return reason


def check_replaceable(directory):
  """Raises `FileExistsError` unless `directory` may be replaced by a new
  checkpoint: it must be a tfvae checkpoint (or an empty folder)."""
  directory = os.path.abspath(os.fspath(directory))
  if os.path.isdir(directory) and not os.listdir(directory):
    return
  if not os.path.isdir(directory) or not is_checkpoint(directory):
    raise FileExistsError(
        f"{directory} exists and is not a tfvae checkpoint; refusing to "
        f"replace it (choose a new folder): {_missing_part(directory)}")


def check_checkpoint_dir(directory, overwrite=False):
  """Checks, before any training, that a checkpoint can be written there
  (a new or empty folder, an unfinished run to resume, or with `overwrite`
  a finished tfvae checkpoint).

  Returns:
    The folder's real path (symbolic links resolved): write there.

  Raises:
    FileExistsError: it exists and may not be replaced.
    OSError / ValueError: it cannot be created or written.
  """
  directory = os.path.realpath(os.fspath(directory))
  if os.path.lexists(directory):
    if not os.path.isdir(directory):
      raise ValueError(f"{directory} is a file; expected a checkpoint folder")
    if is_unfinished(directory):
      return directory  # a run to resume
    if not overwrite and os.listdir(directory):
      raise FileExistsError(
          f"{directory} already exists; pass overwrite=True to replace a "
          "tfvae checkpoint")
    check_replaceable(directory)
  atomic.check_writable_folder(os.path.dirname(directory))
  return directory


def save_checkpoint(model, directory, overwrite=False, metadata=None):
  """Writes `model` (with its optimizer state) and a marker to `directory`.

  Only tfvae's own files are replaced (see the module docstring): the
  marker is first rewritten as unfinished, then the model and the finished
  marker are each renamed into place, and the run's backup is deleted last.
  A crash at any point leaves a folder that `load_checkpoint` or a resumed
  run reads.

  Args:
    model: a `tfvae.VAE`.
    directory: the checkpoint folder (created if missing); a symbolic link
      is followed.
    overwrite: replace an existing tfvae checkpoint's model and marker;
      a folder without a tfvae marker is refused unless empty.
    metadata: optional JSON-able dict stored in the marker (e.g. the
      training settings and results).

  Returns:
    The folder's real absolute path.

  Raises:
    FileExistsError: `directory` holds something that may not be replaced.
  """
  directory = os.path.realpath(os.fspath(directory))
  if os.path.lexists(directory) and not os.path.isdir(directory):
    raise ValueError(f"{directory} is a file; expected a checkpoint folder")
  if os.path.isdir(directory) and os.listdir(directory) and not is_unfinished(
      directory):
    if not overwrite:
      raise FileExistsError(
          f"{directory} already exists; refusing to overwrite it (pass "
          "overwrite=True to replace a tfvae checkpoint)")
    check_replaceable(directory)
  from tfvae import __version__  # pylint: disable=g-import-not-at-top
  fields = {"complete": True, "tfvae_version": __version__,
            # What commands check their input against before TensorFlow.
            # (The score reference and the level calibration, results,
            # are in model.keras only.)
            "model": {name: value for name, value in model.get_config().items()
                      if name not in ("name", "score_reference",
                                      "level_calibration")},
            **(metadata or {})}
  write_marker(directory, **{**fields, "complete": False})
  with atomic.atomic_path(os.path.join(directory, MODEL_FILE),
                          suffix=".keras") as temp:
    model.save(temp)
  write_marker(directory, **fields)
  _remove_backup(directory)
  return directory


def read_metadata(directory):
  """The marker's contents, a dict."""
  path = os.path.join(os.fspath(directory), MARKER_FILE)
  if not os.path.isfile(path):
    return {}
  with open(path, encoding="utf-8") as f:
    return json.load(f)


def _version_tuple(text):
  parts = []
  for part in str(text).split(".")[:3]:
    digits = "".join(c for c in part if c.isdigit())
    parts.append(int(digits) if digits else 0)
  return tuple(parts)


def check_version(directory):
  """Refuses a checkpoint written by a newer tfvae than this one (its
  model may hold what this code cannot read); older ones load, each
  computing what it did (checkpoints before 0.4 name no version)."""
  from tfvae import __version__  # pylint: disable=g-import-not-at-top
  written = read_metadata(directory).get("tfvae_version")
  if written is not None and (
      _version_tuple(written)[:2] > _version_tuple(__version__)[:2]):
    raise ValueError(
        f"{os.fspath(directory)} was written by tfvae {written}, newer than "
        f"this tfvae {__version__}; upgrade tfvae to read it")


def load_checkpoint(directory):
  """Rebuilds the `tfvae.VAE` saved by `save_checkpoint`, optimizer included.

  Args:
    directory: a checkpoint folder.

  Returns:
    A compiled `tfvae.VAE` with the saved weights.

  Raises:
    ValueError: the folder is not a tfvae checkpoint or is unreadable.
  """
  import tf_keras  # pylint: disable=g-import-not-at-top
  from tfvae import model as model_lib  # pylint: disable=g-import-not-at-top

  directory = os.fspath(directory)
  model_path = os.path.join(directory, MODEL_FILE)
  if not os.path.isfile(model_path):
    raise ValueError(
        f"{directory} is not a tfvae checkpoint: {MODEL_FILE} is missing "
        "(write one with tfvae-train --checkpoint-dir)")
  check_version(directory)
  try:
    model = tf_keras.models.load_model(model_path)
  except (ValueError, OSError, KeyError, TypeError) as error:
    raise ValueError(f"{model_path}: cannot load the model ({error})") from None
  if not isinstance(model, model_lib.VAE):
    raise ValueError(f"{model_path} holds a {type(model).__name__}, not a "
                     "tfvae VAE")
  return model


# -- Backups of a running job -------------------------------------------------

BACKUP_DIR = "backup"
STATE_FILE = "state.json"
BEST_WEIGHTS_FILE = "best_weights.npz"
TRIM_FILE = "trimmed_rows.npz"


def write_marker(directory, **fields):
  """Writes (atomically) the marker that makes `directory` recognisably
  tfvae's: the format and `fields` (e.g. complete=False while a run is on)."""
  atomic.make_parent(os.path.join(directory, MARKER_FILE))
  path = os.path.join(directory, MARKER_FILE)
  with atomic.atomic_file(path, overwrite=True) as f:
    json.dump({"format": FORMAT, **fields}, f, indent=2, default=str)


def write_trim(directory, keep_train, keep_validation, threshold):
  """Stores (atomically, in `directory/backup/`) which rows a trimmed run
  kept (`TrainConfig.trim`), so that it resumes on the same rows.

  Args:
    directory: the checkpoint folder.
    keep_train, keep_validation: bool numpy arrays, one per split's row.
    threshold: the score above which rows were left out.
  """
  import numpy as np  # pylint: disable=g-import-not-at-top
  path = os.path.join(directory, BACKUP_DIR, TRIM_FILE)
  atomic.make_parent(path)
  with atomic.atomic_file(path, overwrite=True, mode="wb", newline=None) as f:
    np.savez(f, keep_train=np.asarray(keep_train, bool),
             keep_validation=np.asarray(keep_validation, bool),
             threshold=np.float64(threshold))


def read_trim(directory):
  """(keep_train, keep_validation, threshold) as `write_trim` stored them,
  or None if the folder's backup holds none."""
  import numpy as np  # pylint: disable=g-import-not-at-top
  path = os.path.join(directory, BACKUP_DIR, TRIM_FILE)
  if not os.path.isfile(path):
    return None
  with np.load(path) as stored:
    return (stored["keep_train"].astype(bool),
            stored["keep_validation"].astype(bool),
            float(stored["threshold"]))


def has_backup(directory):
  """Whether `directory` holds a backup a run can resume from."""
  return os.path.isfile(os.path.join(directory, BACKUP_DIR, STATE_FILE))


def is_unfinished(directory):
  """Whether `directory` holds a tfvae run that has not finished."""
  return is_checkpoint(directory) and not read_metadata(directory).get(
      "complete", True)


def _remove_backup(directory):
  """Deletes `directory/backup/` (tfvae's own), never anything beside it."""
  import shutil  # pylint: disable=g-import-not-at-top
  path = os.path.join(directory, BACKUP_DIR)
  if os.path.islink(path):
    os.remove(path)  # not ours to follow
  elif os.path.isdir(path):
    shutil.rmtree(path, ignore_errors=True)


class Backup:
  """The running state of a training job, in `directory/backup/`.

  A `tf.train.CheckpointManager` of the model and its optimizer (two kept,
  so that the one `state.json` names always exists), the best weights so
  far (`best_weights.npz`), and `state.json`: the epochs done, the
  callbacks' states, the history. `state.json` is written last and
  atomically, so a kill at any moment leaves the previous backup whole.

  Args:
    directory: the checkpoint folder.
    model: the model whose variables (and optimizer's) are saved.
    writable: False for a multi-worker job's non-chief workers, which save
      to a temporary folder (collective saving needs every worker) and read
      the chief's backup.
  """

  def __init__(self, directory, model, writable=True):
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    self.directory = os.path.join(os.fspath(directory), BACKUP_DIR)
    self.writable = writable
    self._checkpoint = tf.train.Checkpoint(model=model,
                                           optimizer=model.optimizer)
    self._model = model
    # A non-chief worker's copy goes to a private temporary folder.
    self._save_directory = (self.directory if writable else
                            tempfile.mkdtemp(prefix="tfvae-worker-backup-"))
    self._manager = tf.train.CheckpointManager(
        self._checkpoint, self._save_directory, max_to_keep=2)

  def exists(self):
    return has_backup(os.path.dirname(self.directory))

  def save(self, state, best_weights=None):
    """Saves the variables, the best weights and `state` (a JSON-able dict)."""
    import numpy as np  # pylint: disable=g-import-not-at-top
    path = self._manager.save()
    if not self.writable:
      return
    if best_weights is not None:
      with atomic.atomic_file(os.path.join(self.directory, BEST_WEIGHTS_FILE),
                              overwrite=True, mode="wb", newline=None) as f:
        np.savez(f, *best_weights)
    with atomic.atomic_file(os.path.join(self.directory, STATE_FILE),
                            overwrite=True) as f:
      json.dump({**state, "checkpoint": os.path.basename(path),
                 "best_weights": best_weights is not None}, f, default=float)

  def restore(self):
    """Restores the variables; returns (state dict, best weights or None)."""
    import numpy as np  # pylint: disable=g-import-not-at-top
    with open(os.path.join(self.directory, STATE_FILE), encoding="utf-8") as f:
      state = json.load(f)
    self._model.optimizer.build(self._model.trainable_variables)
    self._checkpoint.restore(
        os.path.join(self.directory, state["checkpoint"])).assert_consumed()
    best = None
    if state.get("best_weights"):
      with np.load(os.path.join(self.directory, BEST_WEIGHTS_FILE)) as stored:
        best = [stored[f"arr_{i}"] for i in range(len(stored.files))]
    return state, best

  def remove(self):
    """Deletes the backup (a run that starts over)."""
    if self.writable:
      _remove_backup(os.path.dirname(self.directory))

  def close(self):
    """Deletes a non-chief worker's temporary backups."""
    if not self.writable:
      import shutil  # pylint: disable=g-import-not-at-top
      shutil.rmtree(self._save_directory, ignore_errors=True)
