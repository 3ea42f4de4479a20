"""Training checkpoints: the model's config as JSON beside its weights.

A checkpoint directory holds `config.json` (the `VAE` constructor arguments)
and `weights.h5`. It is written atomically and never replaced silently.
"""

import json
import os

from tfvae import atomic

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "weights.h5"


def save_checkpoint(model, directory, overwrite=False):
  """Writes `model`'s config and weights to `directory`.

  Args:
    model: a `tfvae.VAE`.
    directory: the checkpoint directory to create.
    overwrite: replace an existing checkpoint.

  Returns:
    The directory's absolute path.

  Raises:
    FileExistsError: `directory` exists and `overwrite` is False.
  """
  with atomic.atomic_directory(directory, overwrite=overwrite) as temp:
    with open(os.path.join(temp, CONFIG_FILE), "w", encoding="utf-8") as f:
      json.dump(model.get_config(), f, indent=2)
    model.save_weights(os.path.join(temp, WEIGHTS_FILE))
  return os.path.abspath(directory)


def load_checkpoint(directory):
  """Rebuilds the `tfvae.VAE` saved by `save_checkpoint`.

  Args:
    directory: a checkpoint directory.

  Returns:
    A `tfvae.VAE` with the saved weights (standardisation included).

  Raises:
    ValueError: the directory or one of its files is missing or unreadable.
  """
  from tfvae import model as model_lib  # pylint: disable=g-import-not-at-top

  directory = os.fspath(directory)
  config_path = os.path.join(directory, CONFIG_FILE)
  weights_path = os.path.join(directory, WEIGHTS_FILE)
  for path in (config_path, weights_path):
    if not os.path.isfile(path):
      raise ValueError(
          f"{directory} is not a tfvae checkpoint: {os.path.basename(path)} "
          "is missing (write one with tfvae-train --checkpoint-dir)")
  try:
    with open(config_path, encoding="utf-8") as f:
      config = json.load(f)
  except json.JSONDecodeError as error:
    raise ValueError(f"{config_path}: not valid JSON ({error})") from None
  model = model_lib.VAE.from_config(config)
  model.load_weights(weights_path)
  return model
