"""TF Serving's layout, read without TensorFlow: a model base path holds
integer version folders, the largest is served, and each version that
tfvae wrote carries `assets.extra/tfvae_metadata.json` (its part, widths
and column names), so commands can check their input before TensorFlow
starts."""

import json
import os
import re

from tfvae import validation

METADATA_FILE = "tfvae_metadata.json"
PARTS = ("encoder", "decoder", "scorer")


def integer_versions(base_path):
  """The version folders under a model base path that TF Serving reads
  (integer names in [1, 2**63 - 1]), sorted."""
  if not os.path.isdir(base_path):
    return []
  return sorted(int(name) for name in os.listdir(base_path)
                if re.fullmatch(r"\d+", name)
                and 1 <= int(name) <= validation.MAX_VERSION
                and os.path.isdir(os.path.join(base_path, name)))


def latest_version_path(base_path):
  """The path of the largest version under `base_path` (what TF Serving serves).

  Raises:
    ValueError: no version folder exists.
  """
  versions = integer_versions(base_path)
  if not versions:
    raise ValueError(
        f"{base_path}: no integer version folder (expected e.g. {base_path}/1/"
        "saved_model.pb, as written by tfvae.export_model)")
  return os.path.join(base_path, str(versions[-1]))


def is_tfvae_export(path):
  """Whether `path` is a version folder that tfvae wrote."""
  return os.path.isfile(os.path.join(path, "assets.extra", METADATA_FILE))


def version_path(base_path):
  """A version folder: `base_path` itself when it holds a SavedModel, else
  its largest version."""
  base_path = os.fspath(base_path)
  if os.path.isfile(os.path.join(base_path, "saved_model.pb")):
    return base_path
  return latest_version_path(base_path)


def read_metadata(path):
  """The tfvae metadata of a version folder, a dict ({} if it has none)."""
  try:
    with open(os.path.join(path, "assets.extra", METADATA_FILE),
              encoding="utf-8") as f:
      metadata = json.load(f)
  except (OSError, ValueError):
    return {}
  return metadata if isinstance(metadata, dict) else {}


def check_part(path, part):
  """Raises `ValueError` unless the version folder `path` is tfvae's `part`
  ("encoder", "decoder" or "scorer"); a folder without tfvae metadata
  passes (a SavedModel written otherwise).

  Returns:
    The metadata dict.
  """
  metadata = read_metadata(path)
  found = metadata.get("part")
  if found is not None and found != part:
    raise ValueError(f"{path} is tfvae's {found}, not its {part}: pass the "
                     f"{part}'s base path (e.g. .../{part})")
  return metadata


def check_version_free(export_dir, version, overwrite=False, parts=PARTS):
  """Checks, before any work, that `version` may be written for each part:
  it is new, or (with `overwrite`) a version that tfvae wrote.

  Raises:
    FileExistsError: a version folder exists and may not be replaced.
  """
  for part in parts:
    path = os.path.join(os.fspath(export_dir), part, str(version))
    if not os.path.lexists(path):
      continue
    if not overwrite:
      raise FileExistsError(f"{path} already exists; pass overwrite=True or "
                            "another version")
    if not is_tfvae_export(path):
      raise FileExistsError(f"{path} exists but is not a tfvae export; "
                            "refusing to replace it")
