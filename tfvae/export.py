"""SavedModel export for TF Serving: the encoder and the decoder, separately.

Layout (each of `encoder/` and `decoder/` is a TF Serving model base path;
TF Serving serves the largest integer version):

    export_dir/encoder/<version>/saved_model.pb, variables/, assets.extra/
    export_dir/decoder/<version>/saved_model.pb, variables/, assets.extra/

Signatures, all returning plain tensors computed without sampling (the
serving graphs need neither tfvae nor TensorFlow Probability to load):

- encoder `serving_default`: x float32 [None, input_dim] ->
  z_mean, z_stddev float32 [None, latent_dim];
- encoder `sample`: x [None, input_dim], seed int32 [2] -> z [None, latent_dim],
  a reproducible draw from q(z|x);
- decoder `serving_default`: z float32 [None, latent_dim] ->
  x_mean, x_stddev float32 [None, input_dim] in the data's units, plus the
  family's own parameters when it is not Gaussian (x_loc, x_scale, x_df).

Keras' `model.save` is avoided on purpose: models whose outputs are TFP
distributions fail to save or reload without their distributions.
"""

import contextlib
import json
import os
import re
import sys
import types

import numpy as np
import tensorflow as tf

import tfvae
from tfvae import atomic

METADATA_FILE = "tfvae_metadata.json"
WARMUP_FILE = "tf_serving_warmup_requests"
_PARTS = ("encoder", "decoder")
_GAUSSIAN_FAMILIES = ("gaussian", "gaussian_shared", "mse")


class EncoderModule(tf.Module):
  """x -> (z_mean, z_stddev); tracks only the encoder's variables."""

  def __init__(self, model):
    super().__init__(name="tfvae_encoder")
    self.standardization = model.standardization
    self.encoder_net = model.encoder_net
    self._posterior_parameters = model.posterior_head.distribution_parameters
    x_spec = tf.TensorSpec([None, model.input_dim], tf.float32, name="x")
    self.serving_default = tf.function(
        self._moments, input_signature=[x_spec])
    self.sample = tf.function(
        self._sample,
        input_signature=[x_spec, tf.TensorSpec([2], tf.int32, name="seed")])

  def _parameters(self, x):
    # Checked at the entry, so a wrong width fails with a message naming the
    # input rather than deep inside the network.
    x = tf.ensure_shape(x, [None, self.standardization.input_dim], name="check_x")
    return self._posterior_parameters(self.encoder_net(self.standardization(x)))

  def _moments(self, x):
    p = self._parameters(x)
    return {"z_mean": p["loc"], "z_stddev": p["scale"]}

  def _sample(self, x, seed):
    p = self._parameters(x)
    noise = tf.random.stateless_normal(tf.shape(p["loc"]), seed=seed)
    return {"z": p["loc"] + p["scale"] * noise}


class DecoderModule(tf.Module):
  """z -> (x_mean, x_stddev, family parameters), in the data's units."""

  def __init__(self, model):
    super().__init__(name="tfvae_decoder")
    self.standardization = model.standardization
    self.decoder_net = model.decoder_net
    self.head_weights = list(model.likelihood_head.weights)  # shared scale, df
    self._head = model.likelihood_head
    self._gaussian = model.likelihood in _GAUSSIAN_FAMILIES
    self._latent_dim = model.latent_dim
    self.serving_default = tf.function(
        self._moments,
        input_signature=[
            tf.TensorSpec([None, model.latent_dim], tf.float32, name="z")])

  def _moments(self, z):
    z = tf.ensure_shape(z, [None, self._latent_dim], name="check_z")
    parameters = self._head.distribution_parameters(
        self.decoder_net(z), self.standardization.loc,
        self.standardization.scale)
    mean, stddev = self._head.moments(parameters)
    outputs = {"x_mean": mean, "x_stddev": stddev}
    if not self._gaussian:
      outputs.update({f"x_{name}": value for name, value in parameters.items()})
    return outputs


def integer_versions(base_path):
  """The integer-named version folders under a model base path, sorted."""
  if not os.path.isdir(base_path):
    return []
  return sorted(int(name) for name in os.listdir(base_path)
                if re.fullmatch(r"\d+", name)
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
        "saved_model.pb, as written by tfvae.export)")
  return os.path.join(base_path, str(versions[-1]))


def _metadata(model, part, version):
  return {
      "part": part,
      "version": version,
      "input_dim": model.input_dim,
      "latent_dim": model.latent_dim,
      "likelihood": model.likelihood,
      "feature_names": (None if model.feature_names is None
                        else list(model.feature_names)),
      "adapted": bool(model.is_adapted),
      "units": "data units (standardisation is inside the graph)",
      "tfvae_version": tfvae.__version__,
      "tensorflow_version": tf.__version__,
  }


def _write_warmup(path, model_name, input_name, rows):
  """Writes TF Serving warm-up PredictionLog records; False if unavailable."""
  try:
    from tensorflow_serving.apis import predict_pb2  # pylint: disable=g-import-not-at-top
    from tensorflow_serving.apis import prediction_log_pb2  # pylint: disable=g-import-not-at-top
  except ImportError:
    return False
  with tf.io.TFRecordWriter(path) as writer:
    for batch in rows:
      request = predict_pb2.PredictRequest()
      request.model_spec.name = model_name
      request.model_spec.signature_name = "serving_default"
      request.inputs[input_name].CopyFrom(
          tf.make_tensor_proto(batch, dtype=tf.float32))
      log = prediction_log_pb2.PredictionLog(
          predict_log=prediction_log_pb2.PredictLog(request=request))
      writer.write(log.SerializeToString())
  return True


def _write_part(path, module, model, part, version, warmup_rows, input_name):
  signatures = {"serving_default": module.serving_default}
  if part == "encoder":
    signatures["sample"] = module.sample
  tf.saved_model.save(module, path, signatures=signatures)
  extra = os.path.join(path, "assets.extra")
  os.makedirs(extra, exist_ok=True)
  metadata = _metadata(model, part, version)
  metadata["warmup_requests"] = _write_warmup(
      os.path.join(extra, WARMUP_FILE), part, input_name, warmup_rows)
  with open(os.path.join(extra, METADATA_FILE), "w", encoding="utf-8") as f:
    json.dump(metadata, f, indent=2)


def export(model, export_dir, version=None, overwrite=False):
  """Exports `model`'s encoder and decoder as SavedModels for TF Serving.

  Both version folders are first written under hidden temporary names and
  renamed into place only when both are complete; temporaries left by a
  killed export are removed at the next one.

  Args:
    model: a `tfvae.VAE`.
    export_dir: the folder holding `encoder/` and `decoder/`.
    version: integer version; default one more than the largest existing
      version of either part (1 for a new folder).
    overwrite: replace an existing version folder. Otherwise an existing one
      is an error and nothing is written.

  Returns:
    dict mapping "encoder" and "decoder" to the written version folders.

  Raises:
    ValueError: `version` is not a positive integer.
    FileExistsError: the version exists and `overwrite` is False.
  """
  bases = {part: os.path.join(os.fspath(export_dir), part) for part in _PARTS}
  for base in bases.values():
    atomic.remove_stale_temporaries(base)
  if version is None:
    existing = [v for base in bases.values() for v in integer_versions(base)]
    version = max(existing, default=0) + 1
  if isinstance(version, bool) or int(version) != version or int(version) < 1:
    raise ValueError(f"version must be a positive integer, got {version!r}")
  version = int(version)
  paths = {part: os.path.join(base, str(version)) for part, base in bases.items()}
  for path in paths.values():
    if os.path.exists(path) and not overwrite:
      raise FileExistsError(
          f"{path} already exists; pass overwrite=True (--overwrite) or "
          "another version")

  typical_x = model.standardization.loc.numpy()[None, :]
  warmup = {
      "encoder": [typical_x, np.repeat(typical_x, 64, axis=0)],
      "decoder": [np.zeros([1, model.latent_dim], np.float32),
                  np.zeros([64, model.latent_dim], np.float32)],
  }
  modules = {"encoder": EncoderModule(model), "decoder": DecoderModule(model)}
  inputs = {"encoder": "x", "decoder": "z"}
  with contextlib.ExitStack() as stack:
    for part in _PARTS:
      temp = stack.enter_context(
          atomic.atomic_directory(paths[part], overwrite=overwrite))
      _write_part(temp, modules[part], model, part, version, warmup[part],
                  inputs[part])
  return paths


class _CallableModule(types.ModuleType):
  """Makes `tfvae.export(model, export_dir)` call `export` while this module
  stays importable as `tfvae.export` (for `integer_versions`, the module
  classes and constants)."""

  def __call__(self, model, export_dir, version=None, overwrite=False):
    return export(model, export_dir, version=version, overwrite=overwrite)


sys.modules[__name__].__class__ = _CallableModule
