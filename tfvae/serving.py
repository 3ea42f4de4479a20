"""Using exported SavedModels: load the newest version, encode files.

Only plain TensorFlow is needed here: the exported graphs carry the
standardisation and the heads' parameter maps.
"""

import csv

import numpy as np
import tensorflow as tf

from tfvae import atomic
from tfvae import data as data_lib
from tfvae import runtime
from tfvae import versions


def load_signature(base_path, signature="serving_default"):
  """Loads a signature from the newest version under a model base path.

  Args:
    base_path: e.g. `saved_models/demo/encoder` (a folder of versions), or
      one version folder itself.
    signature: the signature's name.

  Returns:
    (function, input_name, input_width, version_path); the function takes
    its input as a keyword argument.

  Raises:
    ValueError: no SavedModel is found, or it lacks the signature.
  """
  version_path = versions.version_path(base_path)
  loaded = tf.saved_model.load(version_path)
  if signature not in loaded.signatures:
    raise ValueError(f"{version_path}: no signature {signature!r} "
                     f"(has {sorted(loaded.signatures)})")
  function = loaded.signatures[signature]
  _, input_specs = function.structured_input_signature
  name, spec = next(iter(input_specs.items()))
  # Keep the loaded object alive as long as the function is used.
  function._tfvae_loaded = loaded  # pylint: disable=protected-access
  return function, name, spec.shape[-1], version_path


def encode_file(model_path, data_path, output_path, batch_size=4096,
                overwrite=False, options=None, verbose=0):
  """Encodes a data file with an exported encoder, streaming in batches.

  Writes a CSV with columns `z_mean_0..`, `z_stddev_0..`, one row per input
  row (missing values are allowed: the encoder's posterior uses the
  observed ones). The output is written to a temporary file and renamed at
  the end, so a failure leaves no partial output.

  Args:
    model_path: the encoder's base path (newest version used) or a version.
    data_path: a data file with the model's input width.
    output_path: the CSV to write.
    batch_size: rows per batch: memory stays bounded for any file size.
    overwrite: replace an existing output file.
    options: `tfvae.data.ReadOptions` for CSV input.
    verbose: 1 shows a progress line.

  Returns:
    (number of rows encoded, version folder used).

  Raises:
    ValueError: bad data (named by file, row and column) or a width that
      does not match the model.
    FileExistsError: `output_path` exists and `overwrite` is False.
  """
  atomic.check_output_file(output_path, overwrite, protect=[data_path])
  metadata = versions.check_part(versions.version_path(model_path), "encoder")
  function, input_name, width, version_path = load_signature(model_path)
  reader = data_lib.open_table(
      data_path, data_lib.options_for_model(
          options, metadata.get("categories"),
          metadata.get("ignored_columns")),
      width, metadata.get("feature_names"))
  dtype = function.structured_input_signature[1][input_name].dtype
  progress = runtime.Progress("encoding", reader.num_rows, "rows",
                              enabled=verbose >= 1)
  rows = 0
  with atomic.atomic_file(output_path, overwrite=overwrite,
                          protect=[data_path]) as f:
    writer = csv.writer(f)
    for batch, _ in reader.iter_blocks(batch_size):
      outputs = function(**{input_name: tf.constant(batch, dtype)})
      names = sorted(outputs)  # z_mean, z_stddev
      if rows == 0:
        writer.writerow([f"{name}_{i}" for name in names
                         for i in range(outputs[name].shape[-1])])
      values = np.concatenate([outputs[name].numpy() for name in names], axis=1)
      writer.writerows(values.tolist())
      rows += len(batch)
      progress.update(rows)
  progress.close(rows)
  return rows, version_path
