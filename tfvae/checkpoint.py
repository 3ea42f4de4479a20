"""Training checkpoints: a Keras `.keras` file and a tfvae marker, in a folder.

A checkpoint folder holds

    model.keras             the `VAE` in Keras' native format: config,
                            weights (standardisation included) and the
                            optimizer's state; `tf_keras.models.load_model`
                            reads it directly
    tfvae_checkpoint.json   what wrote it: the format, whether the run
                            finished, the training settings and results

It is written atomically and replaced only with `overwrite=True`, and only
when it is a tfvae checkpoint: nothing else is ever deleted.
"""

import json
import os

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


def check_replaceable(directory):
  """Raises `FileExistsError` unless `directory` may be replaced by a new
  checkpoint: it must be a tfvae checkpoint (or an empty folder)."""
  directory = os.path.abspath(os.fspath(directory))
  if os.path.isdir(directory) and not os.listdir(directory):
    return
  if not os.path.isdir(directory) or not is_checkpoint(directory):
    raise FileExistsError(
        f"{directory} exists and is not a tfvae checkpoint; refusing to "
        "replace it (choose a new folder)")


def check_checkpoint_dir(directory, overwrite=False):
  """Checks, before any training, that a checkpoint can be written there.

  Raises:
    FileExistsError: it exists and may not be replaced.
    OSError / ValueError: it cannot be created or written.
  """
  directory = os.path.abspath(os.fspath(directory))
  if os.path.lexists(directory):
    if not os.path.isdir(directory):
      raise ValueError(f"{directory} is a file; expected a checkpoint folder")
    if not overwrite and os.listdir(directory):
      raise FileExistsError(
          f"{directory} already exists; pass overwrite=True to replace a "
          "tfvae checkpoint")
    check_replaceable(directory)
  atomic.check_writable_folder(os.path.dirname(directory))
  return directory


def save_checkpoint(model, directory, overwrite=False, metadata=None):
  """Writes `model` (with its optimizer state) and a marker to `directory`.

  Args:
    model: a `tfvae.VAE`.
    directory: the checkpoint folder to create.
    overwrite: replace an existing tfvae checkpoint (only after the new
      one is complete); anything else is refused.
    metadata: optional JSON-able dict stored in the marker (e.g. the
      training settings and results).

  Returns:
    The folder's absolute path.

  Raises:
    FileExistsError: `directory` exists and may not be replaced.
  """
  directory = os.path.abspath(os.fspath(directory))
  if os.path.isdir(directory) and not os.listdir(directory):
    os.rmdir(directory)  # an empty folder: nothing to keep
  replace = check_replaceable if overwrite else None
  with atomic.atomic_directory(directory, replace=replace) as temp:
    model.save(os.path.join(temp, MODEL_FILE))
    with open(os.path.join(temp, MARKER_FILE), "w", encoding="utf-8") as f:
      json.dump({"format": FORMAT, "complete": True,
                 **(metadata or {})}, f, indent=2, default=str)
  return directory


def read_metadata(directory):
  """The marker's contents, a dict."""
  path = os.path.join(os.fspath(directory), MARKER_FILE)
  if not os.path.isfile(path):
    return {}
  with open(path, encoding="utf-8") as f:
    return json.load(f)


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
  try:
    model = tf_keras.models.load_model(model_path)
  except (ValueError, OSError, KeyError, TypeError) as error:
    raise ValueError(f"{model_path}: cannot load the model ({error})") from None
  if not isinstance(model, model_lib.VAE):
    raise ValueError(f"{model_path} holds a {type(model).__name__}, not a "
                     "tfvae VAE")
  return model
