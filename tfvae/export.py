"""SavedModel export for TF Serving: encoder, decoder and scorer, separately.

Layout (each of `encoder/`, `decoder/` and `scorer/` is a TF Serving model
base path; TF Serving serves the largest integer version):

    export_dir/encoder/<version>/saved_model.pb, variables/, assets.extra/
    export_dir/decoder/<version>/saved_model.pb, variables/, assets.extra/
    export_dir/scorer/<version>/saved_model.pb, variables/, assets.extra/

The graphs are plain TensorFlow ops (they need neither tfvae nor TensorFlow
Probability to load) built from the model's public `posterior_parameters`,
`likelihood_parameters` and `tfvae.inference`: the same path from x to z
and from z to x as training and scoring.

- encoder `serving_default`: x float64 [None, input_dim] (NaN marks a
  missing value) -> z_mean, z_stddev float32 [None, latent_dim];
  `serving_float32`: the same for float32 input (gRPC clients that send
  float32 tensors; float32 loses the precision of large offsets);
  `sample`: x float64, seed int64 [2] -> z, a reproducible draw from q(z|x).
  No random op runs in `serving_default`.
- decoder `serving_default`: z float32 [None, latent_dim] -> x_mean,
  x_stddev float64 [None, input_dim] in the data's units, plus the family's
  own parameters when they differ from those (x_loc, x_scale, and x_df for
  Student's t, whose x_stddev is infinite where df <= 2), and with atoms
  x_atom_probability, the chance a value sits at one of its column's atoms
  (listed in the metadata); `sample`: num_rows int32 (1 to 100,000), seed
  int64 [2] -> x float64 [num_rows, input_dim], new rows as `VAE.sample`
  draws them (within each column's training range, on its resolution;
  seed [s, 0] gives `sample(num_rows, seed=s)`'s rows).
- scorer `score`: x float64 (NaN: missing), seed int64 [2] ->
  log_likelihood (log p(x_obs), nats, data units), log_likelihood_per_feature,
  num_observed, anomaly_score (`VAE.anomaly_score`: -log p(x_obs) with
  densities per standard deviation), and percentile: the anomaly score's
  percentile among the held-out rows the model was calibrated on
  (`VAE.calibrate`; NaN for a model that was not); `serving_default` is `score` with seed [0, 0]; `impute`:
  x, seed -> x_imputed, x_stddev (0 where observed). A fixed number of
  importance samples (`num_samples`, default 100) per row; `score_k`:
  `score` with the request's own K, x, seed, num_samples int32 (1 to
  10,000; anything else is refused).
  With text columns (`VAE.categories`), the encoder also serves
  `encode_rows` (z_mean, z_stddev, unseen_levels), and the scorer
  `score_rows` and `impute_rows`
  (`ColumnInputs`): one named input per column, numbers or texts, texts
  mapped to level codes in the graph; `score`'s outputs (or each column
  filled, in its type, and x_stddev) plus `unseen_levels`, the row's texts
  that are not levels (read as gaps). Seed [0, 0].
  The scorer needs both networks, so it is its own servable rather than
  part of the encoder or the decoder, which stay x -> z and z -> x.

TF Serving's REST API parses JSON numbers (and NaN) into the signature's
dtype, so the float64 input keeps values such as Unix seconds exact.

Keras' `model.save` is not used here: the served graphs are plain functions
of the inputs, and each part carries only the variables it uses.
"""

import json
import math
import os
import re

import numpy as np
import tensorflow as tf

import tfvae
from tfvae import atomic
from tfvae import families
from tfvae import validation
from tfvae import versions
from tfvae.data import columns as columns_lib
from tfvae.data import formats
from tfvae.inference import calibration
from tfvae.inference import importance
from tfvae.inference import imputation
from tfvae.inference import levels as levels_lib
from tfvae.inference import sampling
from tfvae.inference.importance import MAX_DECODED_ROWS

# The most importance samples a `score_k` request may ask for per row.
MAX_REQUEST_SAMPLES = 10000
# The most rows a decoder `sample` request may ask for.
MAX_REQUEST_ROWS = 100000
WARMUP_FILE = "tf_serving_warmup_requests"
_GAUSSIAN_FAMILIES = (families.GAUSSIAN, families.GAUSSIAN_SHARED, families.MSE)


def _check_width(tensor, width, name):
  # Checked at the entry, so a wrong width fails with a message naming the
  # input rather than deep inside the network.
  return tf.ensure_shape(tensor, [None, width], name=f"check_{name}")


def _keep_untracked(module, model):
  """Gives `module` a `_model` that SavedModel does not track. Tracked, the
  model would bring into every servable the graphs of all its traced
  `tf.function` methods (the scorer's, sampling's: 3 s of saving each,
  and unused); the servable needs only the layers it names."""
  object.__setattr__(module, "_model", model)


class EncoderModule(tf.Module):
  """x -> (z_mean, z_stddev); tracks only the encoder's variables."""

  def __init__(self, model):
    super().__init__(name="tfvae_encoder")
    self.standardization = model.standardization
    self.encoder_net = model.encoder_net
    _keep_untracked(self, model)
    x64 = tf.TensorSpec([None, model.input_dim], tf.float64, name="x")
    x32 = tf.TensorSpec([None, model.input_dim], tf.float32, name="x")
    seed = tf.TensorSpec([2], tf.int64, name="seed")
    # autograph=False here and below: the graphs hold no Python control
    # flow on tensors, and converting them would double the export's time.
    self.serving_default = tf.function(self._moments, input_signature=[x64],
                                       autograph=False)
    self.serving_float32 = tf.function(self._moments, input_signature=[x32],
                                       autograph=False)
    self.sample = tf.function(self._sample, input_signature=[x64, seed],
                              autograph=False)
    if model.categories is not None:
      # The table's own columns in, texts for categorical ones.
      self.column_inputs = ColumnInputs(model)
      self.encode_rows = tf.function(
          self._encode_rows, autograph=False,
          input_signature=self.column_inputs.specs())

  def _moments(self, x):
    p = self._model.posterior_parameters(
        _check_width(x, self._model.input_dim, "x"))
    return {"z_mean": p["loc"], "z_stddev": p["scale"]}

  def _encode_rows(self, *cells):
    x, unseen = self.column_inputs.encode(cells)
    out = self._moments(x)
    out["unseen_levels"] = unseen
    return out

  def _sample(self, x, seed):
    p = self._model.posterior_parameters(
        _check_width(x, self._model.input_dim, "x"))
    noise = tf.random.stateless_normal(tf.shape(p["loc"]), seed=seed)
    return {"z": p["loc"] + p["scale"] * noise}

  @property
  def signatures(self):
    signatures = {"serving_default": self.serving_default,
                  "serving_float32": self.serving_float32,
                  "sample": self.sample}
    if hasattr(self, "column_inputs"):
      signatures["encode_rows"] = self.encode_rows
    return signatures


class DecoderModule(tf.Module):
  """z -> (x_mean, x_stddev, family parameters), in the data's units."""

  def __init__(self, model):
    super().__init__(name="tfvae_decoder")
    self.standardization = model.standardization
    self.decoder_net = model.decoder_net
    self.likelihood_head = model.likelihood_head  # shared scale, df
    _keep_untracked(self, model)
    self._gaussian = model.likelihood in _GAUSSIAN_FAMILIES
    self.serving_default = tf.function(
        self._moments,
        autograph=False, input_signature=[
            tf.TensorSpec([None, model.latent_dim], tf.float32, name="z")])
    self.sample = tf.function(
        self._sample, autograph=False, input_signature=[
            tf.TensorSpec([], tf.int32, name="num_rows"),
            tf.TensorSpec([2], tf.int64, name="seed")])

  def _sample(self, num_rows, seed):
    """num_rows new rows as `VAE.sample` draws them (within each column's
    training range, on its resolution): `sample(n, seed=s)` of the model
    is this with seed [s, 0], for n up to `sampling.CHUNK_ROWS`."""
    check = tf.debugging.assert_less_equal(
        num_rows, MAX_REQUEST_ROWS,
        message=f"num_rows must be 1 to {MAX_REQUEST_ROWS}")
    check_positive = tf.debugging.assert_positive(
        num_rows, message=f"num_rows must be 1 to {MAX_REQUEST_ROWS}")
    with tf.control_dependencies([check, check_positive]):
      num_rows = tf.identity(num_rows)
    return {"x": sampling.draw_rows(self._model, num_rows, seed)}

  def _moments(self, z):
    p = self._model.likelihood_parameters(
        _check_width(z, self._model.latent_dim, "z"))
    outputs = {"x_mean": p["mean"], "x_stddev": p["stddev"]}
    if not self._gaussian or self._model.num_atoms:
      # The family's own parameters (for a Normal without atoms they are the
      # mean and the standard deviation already).
      outputs.update({f"x_{name}": value for name, value in p.items()
                      if name not in ("mean", "stddev")})
    return outputs

  @property
  def signatures(self):
    return {"serving_default": self.serving_default, "sample": self.sample}


# Outputs of the column signatures besides one per column.
_RESERVED_OUTPUTS = ("unseen_levels", "x_stddev", "z_mean", "z_stddev")


def input_keys(names):
  """A signature input name per column name: characters TF Serving does
  not accept in a name become "_", a name starting with one of them gets a
  "c" in front, and repeats get "_2", "_3", ..."""
  keys, used = [], set(_RESERVED_OUTPUTS)
  for name in names:
    key = re.sub(r"[^A-Za-z0-9_.\-/]", "_", str(name))
    if not re.match(r"[A-Za-z0-9.]", key):
      key = "c" + key
    base, count = key, 2
    while key in used:
      key, count = f"{base}_{count}", count + 1
    used.add(key)
    keys.append(key)
  return keys


class ColumnInputs(tf.Module):
  """One served input per column, as a table has them: a real column's
  numbers (float64 [None], NaN missing), a categorical column's texts
  (string [None]) mapped to its level codes inside the graph by a
  `tf.lookup` table. A text cell is stripped; booleans match in any case;
  an empty cell or one of `formats.DEFAULT_NA_VALUES` is missing; a text
  that is not a level is read as missing and counted in `unseen_levels`."""

  def __init__(self, model):
    super().__init__(name="column_inputs")
    names = model.feature_names or [f"column_{i + 1}"
                                    for i in range(model.input_dim)]
    self.names = list(names)
    self.keys = input_keys(names)
    self._levels = list(model.categories)
    self.folds_case = []
    self.tables = []
    for levels in self._levels:
      if levels is None:
        self.folds_case.append(False)
        self.tables.append(None)
        continue
      lookup = columns_lib.Lookup(levels)
      self.folds_case.append(lookup.folds_case)
      keys = lookup.keys()
      self.tables.append(tf.lookup.StaticHashTable(
          tf.lookup.KeyValueTensorInitializer(
              tf.constant(keys, tf.string),
              tf.constant([lookup.code(k) for k in keys], tf.int64)), -1))

  def specs(self):
    return [tf.TensorSpec([None], tf.float64 if levels is None else
                          tf.string, name=key)
            for key, levels in zip(self.keys, self._levels)]

  def encode(self, cells):
    """(x float64 [N, D] with level codes, unseen_levels int32 [N])."""
    missing_texts = tf.constant(formats.DEFAULT_NA_VALUES, tf.string)
    values = []
    unseen = tf.zeros(tf.shape(cells[0])[:1], tf.int32)
    for cell, levels, table, fold in zip(cells, self._levels, self.tables,
                                         self.folds_case):
      if levels is None:
        values.append(cell)
        continue
      text = tf.strings.strip(cell)
      missing = tf.reduce_any(tf.equal(text[:, None], missing_texts[None]),
                              -1)
      code = table.lookup(tf.strings.lower(text, encoding="utf-8")
                          if fold else text)
      bad = tf.logical_and(code < 0, tf.logical_not(missing))
      values.append(tf.where(tf.logical_or(missing, bad),
                             tf.constant(math.nan, tf.float64),
                             tf.cast(code, tf.float64)))
      unseen += tf.cast(bad, tf.int32)
    return tf.stack(values, axis=1), unseen

  def decode(self, x):
    """Per input key, the column of x [N, D] in the table's types: numbers,
    or a categorical column's level texts ("" where x is NaN)."""
    out = {}
    for index, (key, levels) in enumerate(zip(self.keys, self._levels)):
      column = x[:, index]
      if levels is None:
        out[key] = column
        continue
      known = tf.logical_not(tf.math.is_nan(column))
      code = tf.cast(tf.where(known, column, 0.0), tf.int32)
      out[key] = tf.where(known, tf.gather(tf.constant(list(levels)), code),
                          tf.constant(""))
    return out


class ScorerModule(tf.Module):
  """x (NaN: missing) -> log p(x_obs), and x -> x with its gaps filled.

  Importance sampling with a fixed number of draws K: `score` keys its
  draws by the seed and each row's values
  (`inference.importance.keyed_noise`), `impute`
  uses the same draws for every row; either way a row's answer never
  depends on the other rows, and equals the model's
  `marginal_log_likelihood` / `impute` with `num_samples=K` and `seed=s`
  when the seed input is [s, 0]. Tracks the encoder's and the decoder's
  variables: it needs both.
  """

  def __init__(self, model, num_samples):
    super().__init__(name="tfvae_scorer")
    self.standardization = model.standardization
    self.encoder_net = model.encoder_net
    self.decoder_net = model.decoder_net
    self.likelihood_head = model.likelihood_head
    _keep_untracked(self, model)
    self.num_samples = int(num_samples)
    # Rows per step of the loop over a request: at most MAX_DECODED_ROWS
    # (row, sample) pairs decoded at once, as in the model's own chunks, so
    # a request's memory is bounded whatever its size.
    self.rows_per_chunk = max(
        1, importance.decoding_budget(self.num_samples, MAX_DECODED_ROWS)
        // self.num_samples)
    width = model.input_dim
    # The proposal of `score` and `impute`, traced once for both.
    self._proposal = tf.function(
        lambda u, observed: importance.proposal(self._model, u, observed),
        autograph=False, input_signature=[
            tf.TensorSpec([None, width], tf.float64),
            tf.TensorSpec([None, width], tf.bool)])
    x_spec = tf.TensorSpec([None, width], tf.float64, name="x")
    seed_spec = tf.TensorSpec([2], tf.int64, name="seed")
    score_specs = {"log_likelihood": tf.TensorSpec([None], tf.float64),
                   "log_likelihood_per_feature": tf.TensorSpec([None],
                                                               tf.float64),
                   "num_observed": tf.TensorSpec([None], tf.int32),
                   "anomaly_score": tf.TensorSpec([None], tf.float64),
                   "percentile": tf.TensorSpec([None], tf.float64)}
    impute_specs = {"x_imputed": tf.TensorSpec([None, width], tf.float64),
                    "x_stddev": tf.TensorSpec([None, width], tf.float64)}
    # One graph scores with any K (rows per chunk computed from it): `score`
    # calls it with the export's K, `score_k` with the request's, so the
    # importance sampler is traced once for both.
    self._score_any_k = tf.function(
        lambda x, seed, num_samples: self._in_chunks(
            lambda rows, s: self._score(rows, s, num_samples), x, seed,
            score_specs, self._rows_per_chunk_for(num_samples)),
        autograph=False, input_signature=[
            x_spec, seed_spec, tf.TensorSpec([], tf.int32, name="num_samples")])
    self.score = tf.function(
        lambda x, seed: self._score_any_k(
            x, seed, tf.constant(self.num_samples, tf.int32)),
        autograph=False, input_signature=[x_spec, seed_spec])
    # `score` with the request's K (1 to MAX_REQUEST_SAMPLES).
    self.score_k = tf.function(
        lambda x, seed, num_samples: self._score_any_k(
            x, seed, self._checked_request_samples(num_samples)),
        autograph=False, input_signature=[
            x_spec, seed_spec, tf.TensorSpec([], tf.int32, name="num_samples")])
    # `score` with seed [0, 0]: a call of score's graph, traced once.
    self.serving_default = tf.function(
        lambda x: self.score(x, tf.constant([0, 0], tf.int64)),
        autograph=False, input_signature=[x_spec])
    self.impute = tf.function(
        lambda x, seed: self._in_chunks(self._impute, x, seed, impute_specs,
                                        self.rows_per_chunk),
        autograph=False, input_signature=[x_spec, seed_spec])

    if model.categories is not None:
      # The table's own columns in, texts for categorical ones.
      self.column_inputs = ColumnInputs(model)
      specs = self.column_inputs.specs()
      self.score_rows = tf.function(self._score_rows, autograph=False,
                                    input_signature=specs)
      self.impute_rows = tf.function(self._impute_rows, autograph=False,
                                     input_signature=specs)

  def _score_rows(self, *cells):
    x, unseen = self.column_inputs.encode(cells)
    out = dict(self.score(x, tf.constant([0, 0], tf.int64)))
    out["unseen_levels"] = unseen
    return out

  def _impute_rows(self, *cells):
    x, unseen = self.column_inputs.encode(cells)
    out = self.impute(x, tf.constant([0, 0], tf.int64))
    filled = self.column_inputs.decode(out["x_imputed"])
    filled["x_stddev"] = out["x_stddev"]
    filled["unseen_levels"] = unseen
    return filled

  @staticmethod
  def _checked_request_samples(num_samples):
    """A request's K after checking 1 <= K <= MAX_REQUEST_SAMPLES (an
    InvalidArgument error naming the limits)."""
    message = f"num_samples must be between 1 and {MAX_REQUEST_SAMPLES}"
    with tf.control_dependencies([
        tf.debugging.assert_less_equal(num_samples, MAX_REQUEST_SAMPLES,
                                       message=message),
        tf.debugging.assert_positive(num_samples, message=message)]):
      return tf.identity(num_samples)

  @staticmethod
  def _rows_per_chunk_for(num_samples):
    """Rows per chunk at K = `num_samples` (int32 scalar tensor):
    `decoding_budget(K, MAX_DECODED_ROWS) // K`, at least 1."""
    samples = tf.cast(num_samples, tf.int64)
    pilots = importance.PILOT_SAMPLES * importance.ADAPTATION_ROUNDS
    budget = tf.maximum(tf.constant(1, tf.int64), MAX_DECODED_ROWS * samples
                        // (samples + pilots))  # `decoding_budget`
    return tf.cast(tf.maximum(tf.constant(1, tf.int64), budget // samples),
                   num_samples.dtype)

  def _in_chunks(self, function, x, seed, specs, rows_per_chunk):
    """`function(rows, seed)` over a request, a chunk of at most
    `rows_per_chunk` rows at a time (one after the other): a row's answer
    does not depend on the others, so chunks change no number. `specs`:
    each output's spec for one chunk."""
    x = self._model.as_data_tensor(_check_width(x, self._model.input_dim, "x"))
    rows = tf.shape(x)[0]
    num_chunks = tf.maximum(1, -(-rows // rows_per_chunk))
    chunk_rows = -(-rows // num_chunks)  # as even as can be: little padding
    padding = num_chunks * chunk_rows - rows
    padded = tf.concat(
        [x, tf.fill([padding, self._model.input_dim],
                    tf.constant(math.nan, tf.float64))], 0)
    chunks = tf.reshape(padded, [num_chunks, chunk_rows,
                                 self._model.input_dim])
    out = tf.map_fn(
        lambda rows_x: function(rows_x, seed), chunks, parallel_iterations=1,
        fn_output_signature=specs)
    return {name: tf.reshape(value, tf.concat([[-1], tf.shape(value)[2:]], 0))[
        :rows] for name, value in out.items()}

  def _sample(self, x, seed, with_moments, num_samples):
    if with_moments:  # `impute`: draws shared by every row, as in VAE.impute
      noise = tf.random.stateless_normal(
          [num_samples, self._model.latent_dim], seed=seed)
    else:  # `score`: draws keyed by each row, as in marginal_log_likelihood
      noise = importance.keyed_noise(self._model, x, seed, 0, num_samples)
    return importance.importance_sample(self._model, x, noise,
                                        with_moments=with_moments,
                                        propose=self._proposal)

  def _score(self, x, seed, num_samples):
    out = self._sample(x, seed, with_moments=False, num_samples=num_samples)
    observed = tf.reduce_sum(
        tf.cast(tf.logical_not(tf.math.is_nan(x)), tf.int32), -1)
    log_likelihood = importance.log_likelihood_estimate(out["log_weights"],
                                                        observed)
    # The anomaly score's basis: no second pass over the rows.
    score = -(log_likelihood + out["log_jacobian"])
    reference = self._model.score_reference
    if reference is None:  # not calibrated: no percentile to give
      percentile = tf.fill(tf.shape(log_likelihood),
                           tf.constant(math.nan, tf.float64))
    else:
      percentile = calibration.tf_percentile(reference, score)
    return {"log_likelihood": log_likelihood,
            "log_likelihood_per_feature": importance.per_feature(
                log_likelihood, observed),
            "num_observed": observed, "anomaly_score": score,
            "percentile": percentile}

  def _impute(self, x, seed):
    out = self._sample(x, seed, with_moments=True,
                       num_samples=self.num_samples)
    _, mean, second = imputation.weighted_moments(
        out["log_weights"], out["x_mean"], out["x_variance"])
    deviation = imputation.spread(mean, second)
    if "level_probability" in out:
      mean, deviation = imputation.fill_levels(
          self._model, mean, deviation, imputation.weighted_levels(
              out["log_weights"], out["level_probability"]))
    mean, deviation = imputation.to_data_units(self._model, mean, deviation)
    missing = tf.math.is_nan(x)
    return {"x_imputed": tf.where(missing, mean, x),
            "x_stddev": tf.where(missing, deviation, 0.0)}

  @property
  def signatures(self):
    signatures = {"serving_default": self.serving_default,
                  "score": self.score, "score_k": self.score_k,
                  "impute": self.impute}
    if hasattr(self, "column_inputs"):
      signatures.update(score_rows=self.score_rows,
                        impute_rows=self.impute_rows)
    return signatures


def _metadata(model, part, version):
  return {
      "format": "tfvae-export",
      "part": part,
      "version": version,
      "input_dim": model.input_dim,
      "latent_dim": model.latent_dim,
      "likelihood": model.likelihood,
      "feature_names": (None if model.feature_names is None
                        else list(model.feature_names)),
      # Each column's levels (None: a real column): a categorical column
      # is served as the codes 0 .. L - 1 of these levels.
      "categories": (None if model.categories is None else
                     [None if levels is None else list(levels)
                      for levels in model.categories]),
      # Each column's type (real, positive, count, categorical, binary), or
      # None: every numeric column real. A positive column's decoder
      # moments (x_mean, x_stddev, x_loc, ...) are of log x; the scorer's
      # log-likelihoods, imputations and samples are in data units.
      "column_types": (None if not isinstance(model.column_types, tuple)
                       else list(model.column_types)),
      "ignored_columns": list(model.ignored_columns or ()),
      "adapted": bool(model.is_adapted),
      "atoms": [[None if np.isnan(a) else float(a) for a in row]
                for row in model.standardization.atoms.numpy()],
      # Quantiles of held-out rows' anomaly scores (`VAE.calibrate`), or
      # None: the served percentiles' reference.
      "score_reference": (None if model.score_reference is None else
                          [float(v) for v in model.score_reference]),
      # Each categorical column's weight of the model's level
      # probabilities against its frequencies in `impute`
      # (`VAE.calibrate_levels`), or None.
      "level_calibration": levels_lib.check(
          getattr(model, "level_calibration", None), model.num_levels),
      # Each column's recording resolution (0: none); a density there is
      # a probability per resolution (docs/likelihoods.md).
      "resolution": [float(r) for r in
                     model.standardization.resolution.numpy()],
      # Each column's training range, which `sample` keeps to (None:
      # unknown, for a model saved before ranges were kept).
      "range": [[float(lo), float(hi)] if np.isfinite(lo) else None
                for lo, hi in zip(*(
                    model.standardization.from_working(bound).numpy()
                    for bound in (model.standardization.lower,
                                  model.standardization.upper)))],
      "units": "data units (standardisation is inside the graph)",
      "tfvae_version": tfvae.__version__,
      "tensorflow_version": tf.__version__,
  }


def _write_warmup(path, model_name, inputs):
  """Writes TF Serving warm-up PredictionLog records; False if unavailable.

  Args:
    path: the records file.
    model_name: the served model's name.
    inputs: list of (signature name, {input name: numpy array}).
  """
  try:
    from tensorflow_serving.apis import predict_pb2  # pylint: disable=g-import-not-at-top
    from tensorflow_serving.apis import prediction_log_pb2  # pylint: disable=g-import-not-at-top
  except ImportError:
    return False
  with tf.io.TFRecordWriter(path) as writer:
    for signature, tensors in inputs:
      request = predict_pb2.PredictRequest()
      request.model_spec.name = model_name
      request.model_spec.signature_name = signature
      for name, value in tensors.items():
        request.inputs[name].CopyFrom(tf.make_tensor_proto(value))
      log = prediction_log_pb2.PredictionLog(
          predict_log=prediction_log_pb2.PredictLog(request=request))
      writer.write(log.SerializeToString())
  return True


def write_servable(path, module, metadata, warmup_inputs):
  """Saves one servable: the SavedModel, its metadata and warm-up records.

  Args:
    path: the (temporary) version folder.
    module: a `tf.Module` with a `signatures` dict.
    metadata: a JSON-able dict, written to `assets.extra/tfvae_metadata.json`.
    warmup_inputs: list of (signature name, {input name: array}).
  """
  # Served graphs are never differentiated: leaving out the gradients of
  # TFP's custom-gradient functions (Student's t's quantile, betaincinv)
  # makes the decoder's save 6 times faster (2.75 -> 0.45 s).
  tf.saved_model.save(
      module, path, signatures=module.signatures,
      options=tf.saved_model.SaveOptions(experimental_custom_gradients=False))
  extra = os.path.join(path, "assets.extra")
  os.makedirs(extra, exist_ok=True)
  metadata = dict(metadata)
  metadata["warmup_requests"] = _write_warmup(
      os.path.join(extra, WARMUP_FILE), metadata["part"], warmup_inputs)
  with open(os.path.join(extra, versions.METADATA_FILE), "w",
            encoding="utf-8") as f:
    json.dump(metadata, f, indent=2)


def export_servables(export_dir, servables, version=None, overwrite=False):
  """Writes several servables as one new version each, atomically.

  Every part is written under a hidden temporary name first; then, holding
  a lock on `export_dir`, the version is chosen (one more than the largest
  of any part, unless given) and the parts are renamed into place. Two
  exports into the same folder at the same time therefore end as two
  versions.

  Args:
    export_dir: the folder holding one base path per part.
    servables: dict part name -> (module, metadata dict, warm-up inputs).
    version: integer version, or None for the next one.
    overwrite: replace an existing version that tfvae wrote.

  Returns:
    dict part name -> written version folder.

  Raises:
    ValueError: `version` is not a positive integer.
    FileExistsError: the version exists and may not be replaced.
  """
  export_dir = os.path.abspath(os.fspath(export_dir))
  if version is not None:
    version = validation.check_version(version)
  check_export_dir(export_dir)
  bases = {part: os.path.join(export_dir, part) for part in servables}
  if version is not None:  # before the long work of writing the parts
    versions.check_version_free(export_dir, version, overwrite, servables)
  staged = {}
  try:
    for part, (module, metadata, warmup) in servables.items():
      os.makedirs(bases[part], exist_ok=True)
      atomic.remove_stale_temporaries(bases[part])
      temp = atomic.make_temp_dir(bases[part], "version")
      staged[part] = temp
      write_servable(temp, module, dict(metadata, part=part), warmup)
    with atomic.folder_lock(export_dir):
      if version is None:
        version = 1 + max((v for base in bases.values()
                           for v in versions.integer_versions(base)), default=0)
        if version > validation.MAX_VERSION:
          raise ValueError(
              f"{export_dir}: version {validation.MAX_VERSION} exists, the "
              "largest TF Serving reads; pass version=... to choose a free "
              "one")
      paths = {part: os.path.join(base, str(version))
               for part, base in bases.items()}
      versions.check_version_free(export_dir, version, overwrite, servables)
      for part, temp in staged.items():
        _set_version(temp, version)
        atomic.finish_directory(temp, paths[part])
      staged = {}
    return paths
  finally:
    for temp in staged.values():
      atomic.discard_directory(temp)


def _set_version(path, version):
  metadata_path = os.path.join(path, "assets.extra", versions.METADATA_FILE)
  with open(metadata_path, encoding="utf-8") as f:
    metadata = json.load(f)
  metadata["version"] = version
  with open(metadata_path, "w", encoding="utf-8") as f:
    json.dump(metadata, f, indent=2)


def check_export_dir(export_dir):
  """Raises `OSError` / `ValueError` unless exports can be written there."""
  export_dir = os.path.abspath(os.fspath(export_dir))
  if os.path.lexists(export_dir) and not os.path.isdir(export_dir):
    raise ValueError(f"{export_dir} is a file; expected a folder for exports")
  atomic.check_writable_folder(export_dir)
  return export_dir


def _typical_row(inputs, model):
  """A warm-up request of the column signatures: each real column's
  centre, each text column's first level."""
  typical_x = model.standardization.loc.numpy()
  return {key: (np.array([typical_x[index]]) if levels is None else
                np.array([levels[0].encode()], dtype=object))
          for index, (key, levels) in enumerate(zip(inputs.keys,
                                                    model.categories))}


def encoder_servable(model, version):
  """(`EncoderModule`, its metadata, its warm-up requests)."""
  typical_x = model.standardization.loc.numpy()[None, :]
  encoder = EncoderModule(model)
  metadata = _metadata(model, "encoder", version)
  warmup = [("serving_default", {"x": typical_x}),
            ("serving_default", {"x": np.repeat(typical_x, 64, 0)}),
            ("serving_float32", {"x": typical_x.astype(np.float32)})]
  if hasattr(encoder, "column_inputs"):
    metadata["column_inputs"] = dict(zip(encoder.column_inputs.names,
                                         encoder.column_inputs.keys))
    warmup.append(("encode_rows", _typical_row(encoder.column_inputs, model)))
  return encoder, metadata, warmup


def scorer_servable(model, num_samples, version):
  """(`ScorerModule`, its metadata, its warm-up requests)."""
  typical_x = model.standardization.loc.numpy()[None, :]
  gappy_x = typical_x.copy()
  gappy_x[0, 0] = np.nan
  seed = np.zeros([2], np.int64)
  scorer = ScorerModule(model, num_samples)
  metadata = dict(_metadata(model, "scorer", version),
                  num_samples=int(num_samples))
  warmup = [("serving_default", {"x": typical_x}),
            ("score", {"x": np.repeat(typical_x, 64, 0), "seed": seed}),
            ("impute", {"x": gappy_x, "seed": seed})]
  if hasattr(scorer, "column_inputs"):
    inputs = scorer.column_inputs
    # Each column's input name in score_rows and impute_rows.
    metadata["column_inputs"] = dict(zip(inputs.names, inputs.keys))
    row = _typical_row(inputs, model)
    warmup += [("score_rows", row), ("impute_rows", row)]
  return scorer, metadata, warmup


def export_model(model, export_dir, version=None, overwrite=False,
                 num_samples=100):
  """Exports `model` as SavedModels for TF Serving: encoder, decoder, scorer.

  Args:
    model: a `tfvae.VAE`.
    export_dir: the folder holding `encoder/`, `decoder/` and `scorer/`.
    version: integer version; default one more than the largest existing
      version of any part (1 for a new folder).
    overwrite: replace an existing version folder that tfvae wrote;
      anything else is refused.
    num_samples: the scorer's importance samples per row.

  Returns:
    dict mapping "encoder", "decoder" and "scorer" to the written version
    folders.

  Raises:
    ValueError: `version` is not a positive integer.
    FileExistsError: the version exists and may not be replaced.
  """
  seed = np.zeros([2], np.int64)
  zeros = np.zeros([1, model.latent_dim], np.float32)
  servables = {
      "encoder": encoder_servable(model, version),
      "decoder": (DecoderModule(model), _metadata(model, "decoder", version),
                  [("serving_default", {"z": zeros}),
                   ("serving_default", {"z": np.repeat(zeros, 64, 0)}),
                   ("sample", {"num_rows": np.int32(64), "seed": seed})]),
      "scorer": scorer_servable(model, num_samples, version),
  }
  return export_servables(export_dir, servables, version, overwrite)
