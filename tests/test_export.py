"""SavedModel export: layout, exact outputs, plain-TF loading, crash safety."""

import json
import os
import signal
import stat
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest
import tensorflow as tf

import tfvae
from tfvae import export
from tfvae.inference import importance
from tfvae import versions
from tests.helpers import fitted_model

# Its tests share trained models: one xdist worker runs them all.
pytestmark = pytest.mark.xdist_group("export")

ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}


_MODELS = {}


def trained_model(likelihood="gaussian", seed=0, num_atoms=4):
  """A small trained model and its data, trained once per setting and
  shared: tests only read it (a test that changes one trains its own with
  `_train`)."""
  key = (likelihood, seed, num_atoms)
  if key not in _MODELS:
    _MODELS[key] = _train(likelihood, seed, num_atoms)
  return _MODELS[key]


@pytest.fixture(scope="session")
def exports(tmp_path_factory):
  """`exports(likelihood, num_atoms, num_samples)`: the paths of the shared
  model's export, written once per setting (tests only read them)."""
  cache = {}

  def get(likelihood="gaussian", num_atoms=4, num_samples=100):
    key = (likelihood, num_atoms, num_samples)
    if key not in cache:
      model, _ = trained_model(likelihood, num_atoms=num_atoms)
      cache[key] = export.export_model(
          model, tmp_path_factory.mktemp("export"), num_samples=num_samples)
    return cache[key]

  return get


def _train(likelihood="gaussian", seed=0, num_atoms=4):
  rng = np.random.default_rng(seed)
  x = np.stack([rng.normal(100, 30, 200), rng.lognormal(0, 1, 200),
                rng.normal(-5, 0.01, 200)], axis=1)
  x[::3, 1] = 0.0  # an atom
  model = fitted_model(x, epochs=2, latent_dim=2, hidden_units=(8,),
                       likelihood=likelihood, feature_names=["a", "b", "c"],
                       batch_size=64, num_atoms=num_atoms)
  return model, x


@pytest.mark.parametrize("likelihood,atoms,extra,saved", [
    ("gaussian", 0, set(), False), ("gaussian_shared", 0, set(), True),
    ("gaussian", 2, {"x_loc", "x_scale", "x_atom_probability"}, False),
    ("laplace", 0, {"x_loc", "x_scale"}, False),
    ("student_t", 2, {"x_loc", "x_scale", "x_df", "x_atom_probability"},
     True)])
def test_signatures_match_the_model(exports, likelihood, atoms, extra, saved):
  # Saved and loaded for the families whose heads hold their own variables
  # (the shared scale, Student's t's df); the others' graphs are called as
  # exported, before saving (saving is the same code for every family).
  model, x = trained_model(likelihood, num_atoms=atoms)
  if saved:
    paths = exports(likelihood, atoms)
    root = os.path.dirname(os.path.dirname(paths["encoder"]))
    assert paths == {part: os.path.join(root, part, "1")
                     for part in ("encoder", "decoder", "scorer")}
    encoder = tf.saved_model.load(paths["encoder"])
    decoder = tf.saved_model.load(paths["decoder"])
  else:
    encoder, decoder = export.EncoderModule(model), export.DecoderModule(model)
  assert set(encoder.signatures) == {"serving_default", "serving_float32",
                                     "sample"}
  posterior = model.posterior_parameters(x[:7])
  out = encoder.signatures["serving_default"](x=tf.constant(x[:7]))
  np.testing.assert_array_equal(out["z_mean"], posterior["loc"])
  np.testing.assert_array_equal(out["z_stddev"], posterior["scale"])
  out32 = encoder.signatures["serving_float32"](x=tf.constant(x[:7], tf.float32))
  np.testing.assert_allclose(out32["z_mean"], posterior["loc"], atol=1e-4)
  z = np.random.default_rng(1).normal(size=(5, 2)).astype(np.float32)
  decoded = decoder.signatures["serving_default"](z=tf.constant(z))
  assert set(decoded) == {"x_mean", "x_stddev"} | extra
  assert decoded["x_mean"].dtype == tf.float64
  likelihood_dist = model.decode(z)
  # TFP's moments of the mixture, another computation: to float64 rounding.
  np.testing.assert_allclose(decoded["x_mean"], likelihood_dist.mean(), rtol=1e-9)
  np.testing.assert_allclose(decoded["x_stddev"], likelihood_dist.stddev(),
                             rtol=1e-9)


def test_large_offsets_survive_the_exported_graphs(tmp_path):
  rng = np.random.default_rng(0)
  x = np.stack([1.7e9 + rng.normal(0, 30, 300), 1e6 + rng.normal(0, 0.01, 300),
                -1e9 + rng.normal(0, 5, 300)], axis=1)
  model = fitted_model(x, epochs=2, latent_dim=2, hidden_units=(8,))
  paths = export.export_model(model, tmp_path)
  encoder = tf.saved_model.load(paths["encoder"]).signatures["serving_default"]
  served = encoder(x=tf.constant(x[:20]))["z_mean"].numpy()
  np.testing.assert_array_equal(served, model.posterior_parameters(x[:20])["loc"])
  # The same rows, shifted back to zero, give the same code: the offset was
  # removed in float64.
  assert np.std(served, axis=0).min() > 0.05
  decoder = tf.saved_model.load(paths["decoder"]).signatures["serving_default"]
  mean = decoder(z=tf.zeros([1, 2]))["x_mean"].numpy()[0]
  assert abs(mean[0] - 1.7e9) < 200 and abs(mean[1] - 1e6) < 0.1


def test_student_t_stddev_is_infinite_where_it_does_not_exist(tmp_path):
  model, _ = _train("student_t", num_atoms=0)  # its own: changed below
  model.likelihood_head.raw_df.assign([-50.0, 0.0, 50.0])  # df ~1, 1.7, 51
  decoded = tf.saved_model.load(export.export_model(model, tmp_path)["decoder"]
                                ).signatures["serving_default"](z=tf.zeros([2, 2]))
  df = decoded["x_df"].numpy()[0]
  assert df[0] < 2 and df[1] < 2 and df[2] > 2
  stddev = decoded["x_stddev"].numpy()[0]
  assert np.isinf(stddev[:2]).all() and np.isfinite(stddev[2])
  np.testing.assert_array_equal(decoded["x_mean"], decoded["x_loc"])
  assert np.all(np.isfinite(decoded["x_scale"]))


def test_missing_values_at_serving_time_mean_what_they_mean_in_the_model(
    exports):
  model, x = trained_model()
  encoder = tf.saved_model.load(exports()["encoder"])
  rows = x[:4].copy()
  rows[1, 0] = np.nan
  rows[2, :] = np.nan
  out = encoder.signatures["serving_default"](x=tf.constant(rows))
  posterior = model.posterior_parameters(rows)
  np.testing.assert_array_equal(out["z_mean"], posterior["loc"])
  assert np.all(np.isfinite(out["z_mean"])) and np.all(np.isfinite(out["z_stddev"]))


def test_sample_signature_is_seeded_and_follows_the_posterior(exports):
  model, x = trained_model()
  sample = tf.saved_model.load(exports()["encoder"]).signatures["sample"]
  rows = np.repeat(x[:1], 4000, axis=0)
  seed = tf.constant([1, 2], tf.int64)
  a = sample(x=tf.constant(rows), seed=seed)["z"].numpy()
  np.testing.assert_array_equal(a, sample(x=tf.constant(rows), seed=seed)["z"])
  posterior = model.posterior_parameters(x[:1])
  np.testing.assert_allclose(a.mean(0), posterior["loc"][0],
                             atol=0.1 * float(np.max(posterior["scale"])) + 1e-3)
  np.testing.assert_allclose(a.std(0), posterior["scale"][0], rtol=0.1)


def test_serving_graphs_have_no_random_ops(exports):
  paths = exports()
  for part in ("encoder", "decoder"):
    function = tf.saved_model.load(paths[part]).signatures["serving_default"]
    ops = {op.type for op in function.graph.get_operations()}
    for f in function.graph.as_graph_def().library.function:
      ops |= {node.op for node in f.node_def}
    assert not {op for op in ops if "Random" in op}, (part, ops)


def test_each_part_carries_only_its_own_variables(exports):
  paths = exports("student_t")
  def names(path):
    return [name for name, _ in tf.train.list_variables(
        os.path.join(path, "variables", "variables"))]
  encoder_vars, decoder_vars = names(paths["encoder"]), names(paths["decoder"])
  assert any(name.startswith("encoder_net/") for name in encoder_vars)
  assert not any("decoder" in name or "likelihood" in name
                 for name in encoder_vars), encoder_vars
  assert any(name.startswith("likelihood_head/raw_df") for name in decoder_vars)
  assert not any("encoder" in name for name in decoder_vars), decoder_vars


class _Tiny(tf.Module):
  """A servable that saves in a blink, for the version rules."""

  def __init__(self):
    super().__init__()
    self.serving_default = tf.function(
        lambda x: {"y": x + 1.0},
        input_signature=[tf.TensorSpec([None, 1], tf.float32, name="x")])

  @property
  def signatures(self):
    return {"serving_default": self.serving_default}


def tiny_export(folder, **options):
  """`export.export_servables` (what `export_model` writes with) of two
  tiny parts."""
  return export.export_servables(
      folder, {part: (_Tiny(), {"format": "tfvae-export"}, [])
               for part in ("encoder", "decoder")}, **options)


def test_export_metadata_describes_the_model(exports):
  with open(os.path.join(exports()["encoder"], "assets.extra",
                         versions.METADATA_FILE), encoding="utf-8") as f:
    metadata = json.load(f)
  assert metadata["input_dim"] == 3 and metadata["latent_dim"] == 2
  assert metadata["likelihood"] == "gaussian" and metadata["version"] == 1
  assert metadata["feature_names"] == ["a", "b", "c"]
  assert metadata["atoms"] == [[None] * 4, [0.0, None, None, None], [None] * 4]
  assert metadata["resolution"] == [0.0, 0.0, 0.0]  # full-precision floats
  assert metadata["tfvae_version"] == tfvae.__version__


def test_versions_and_overwrite_rules(tmp_path):
  model, _ = trained_model()
  tiny_export(tmp_path)
  second = tiny_export(tmp_path)
  assert second["encoder"].endswith(os.path.join("encoder", "2"))
  assert versions.integer_versions(tmp_path / "decoder") == [1, 2]
  # A taken version is refused before the model's long export starts.
  with pytest.raises(FileExistsError, match="overwrite=True"):
    export.export_model(model, tmp_path, version=2)
  tiny_export(tmp_path, version=2, overwrite=True)
  assert versions.integer_versions(tmp_path / "encoder") == [1, 2]
  with open(tmp_path / "encoder" / "2" / "assets.extra" /
            versions.METADATA_FILE, encoding="utf-8") as f:
    assert json.load(f)["version"] == 2
  for bad in (0, 2**63, 10**20, 1.5, True):
    with pytest.raises(ValueError, match="positive integer"):
      export.export_model(model, tmp_path, version=bad)
  # Folders TF Serving cannot read as a 64-bit version do not move the
  # automatic numbering.
  (tmp_path / "encoder" / str(10**20)).mkdir()
  assert versions.integer_versions(tmp_path / "encoder") == [1, 2]
  (tmp_path / "encoder" / str(10**20)).rmdir()
  # A version folder tfvae did not write is never replaced.
  (tmp_path / "decoder" / "7").mkdir()
  (tmp_path / "decoder" / "7" / "mine.txt").write_text("keep")
  with pytest.raises(FileExistsError, match="not a tfvae export"):
    export.export_model(model, tmp_path, version=7, overwrite=True)
  assert (tmp_path / "decoder" / "7" / "mine.txt").read_text() == "keep"
  assert versions.integer_versions(tmp_path / "encoder") == [1, 2]


def test_exports_get_the_umasks_permissions(tmp_path):
  model, _ = trained_model()
  old = os.umask(0o022)
  try:
    paths = export.export_model(model, tmp_path)
  finally:
    os.umask(old)
  for path in paths.values():
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o755
    for root, dirs, files in os.walk(path):
      for name in dirs:
        assert stat.S_IMODE(os.stat(os.path.join(root, name)).st_mode) == 0o755
      for name in files:
        assert stat.S_IMODE(os.stat(os.path.join(root, name)).st_mode) == 0o644


@pytest.mark.slow
def test_concurrent_exports_end_as_two_versions(tmp_path):
  model, _ = trained_model()
  from tfvae import checkpoint  # pylint: disable=g-import-not-at-top
  checkpoint.save_checkpoint(model, tmp_path / "ckpt")
  tool = os.path.join(os.path.dirname(sys.executable), "tfvae-export")
  children = [subprocess.Popen(
      [tool, "--checkpoint-dir", str(tmp_path / "ckpt"), "--export-dir",
       str(tmp_path / "m")], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
      text=True, env=ENV) for _ in range(2)]
  outputs = [child.communicate(timeout=300) for child in children]
  assert [child.returncode for child in children] == [0, 0], outputs
  reported = sorted(line.split()[-1] for out, _ in outputs
                    for line in out.splitlines() if "encoder" in line)
  assert reported == [str(tmp_path / "m" / "encoder" / v) for v in ("1", "2")]
  for part in ("encoder", "decoder"):
    assert versions.integer_versions(tmp_path / "m" / part) == [1, 2]


def test_warmup_records_are_valid_prediction_logs(exports):
  pytest.importorskip("tensorflow_serving")
  from tensorflow_serving.apis import prediction_log_pb2  # pylint: disable=g-import-not-at-top
  paths = exports()
  for part, name, width in (("encoder", "x", 3), ("decoder", "z", 2)):
    path = os.path.join(paths[part], "assets.extra", export.WARMUP_FILE)
    logs = [prediction_log_pb2.PredictionLog.FromString(record.numpy())
            for record in tf.data.TFRecordDataset(path)]
    assert 1 <= len(logs) <= 1000
    loaded = tf.saved_model.load(paths[part])
    for log in logs:
      request = log.predict_log.request
      signature = loaded.signatures[request.model_spec.signature_name]
      if request.model_spec.signature_name == "sample":
        inputs = {key: tf.constant(tf.make_ndarray(value))
                  for key, value in request.inputs.items()}
        drawn = signature(**inputs)["x"].numpy()
        assert drawn.shape == (inputs["num_rows"].numpy(), 3)
        assert np.isfinite(drawn).all()
        continue
      rows = tf.make_ndarray(request.inputs[name])
      assert rows.shape[1] == width
      assert all(np.isfinite(v.numpy()).all()
                 for v in signature(**{name: tf.constant(rows)}).values())


def test_wrong_width_or_dtype_fails_at_the_signature(exports):
  encoder = tf.saved_model.load(exports()["encoder"])
  function = encoder.signatures["serving_default"]
  with pytest.raises(tf.errors.InvalidArgumentError,
                     match=r"tensor x \[2,4\].*\[\?,3\]"):
    function(x=tf.zeros([2, 4], tf.float64))
  with pytest.raises(tf.errors.InvalidArgumentError, match="double tensor but is a float"):
    function(x=tf.zeros([2, 3], tf.float32))


def test_plain_tensorflow_loads_both_parts(tmp_path, exports):
  model, x = trained_model("student_t")
  paths = exports("student_t")
  z = np.random.default_rng(2).normal(size=(4, 2)).astype(np.float32)
  np.save(tmp_path / "x.npy", x[:4])
  np.save(tmp_path / "z.npy", z)
  script = textwrap.dedent(f"""
      import sys
      class Block:
        def find_spec(self, name, path=None, target=None):
          if name.split(".")[0] in ("tfvae", "tensorflow_probability", "tf_keras"):
            raise ImportError("blocked " + name)
      sys.meta_path.insert(0, Block())
      import numpy as np
      import tensorflow as tf
      enc = tf.saved_model.load({paths["encoder"]!r}).signatures["serving_default"]
      dec = tf.saved_model.load({paths["decoder"]!r}).signatures["serving_default"]
      e = enc(x=tf.constant(np.load({str(tmp_path / "x.npy")!r})))
      d = dec(z=tf.constant(np.load({str(tmp_path / "z.npy")!r})))
      sample = tf.saved_model.load({paths["decoder"]!r}).signatures["sample"]
      drawn = sample(num_rows=tf.constant(6), seed=tf.constant([5, 0], tf.int64))
      try:
        sample(num_rows=tf.constant(0), seed=tf.constant([5, 0], tf.int64))
        refused = False
      except tf.errors.InvalidArgumentError as error:
        refused = "num_rows must be 1 to" in error.message
      np.savez({str(tmp_path / "out.npz")!r}, z_mean=e["z_mean"].numpy(),
               x_mean=d["x_mean"].numpy(), x_stddev=d["x_stddev"].numpy(),
               drawn=drawn["x"].numpy(), refused=refused)
      assert not [m for m in sys.modules if m.startswith(("tfvae", "tensorflow_probability"))]
  """)
  result = subprocess.run([sys.executable, "-c", script], capture_output=True,
                          text=True, timeout=300, env=ENV)
  assert result.returncode == 0, result.stderr[-3000:]
  out = np.load(tmp_path / "out.npz")
  np.testing.assert_array_equal(out["z_mean"], model.posterior_parameters(x[:4])["loc"])
  np.testing.assert_allclose(out["x_mean"], model.decode(z).mean(), rtol=1e-9)
  np.testing.assert_allclose(out["x_stddev"], model.decode(z).stddev(), rtol=1e-9)
  # The served `sample` draws `VAE.sample`'s rows: seed [s, 0] is seed s.
  np.testing.assert_allclose(out["drawn"], model.sample(6, seed=5), rtol=1e-9)
  assert out["refused"]


@pytest.mark.slow
def test_killed_export_leaves_no_version_and_the_previous_intact(tmp_path):
  script = textwrap.dedent(f"""
      import sys, time
      import tensorflow as tf
      from tests import test_export
      test_export.tiny_export({str(tmp_path)!r})  # version 1, complete
      real_save = tf.saved_model.save
      def save_then_hang(*args, **kwargs):
        real_save(*args, **kwargs)
        print("half-way", flush=True)  # one part written, in a temporary
        time.sleep(600)
      tf.saved_model.save = save_then_hang
      test_export.tiny_export({str(tmp_path)!r})
  """)
  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, env=ENV, cwd=root)
  try:
    assert child.stdout.readline().strip() == "half-way", child.stderr.read()
  finally:
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=60)
  for part in ("encoder", "decoder"):
    assert versions.integer_versions(tmp_path / part) == [1]
  leftovers = [n for n in os.listdir(tmp_path / "encoder") if n != "1"]
  assert leftovers and all(n.startswith(".tmp-tfvae-") for n in leftovers)
  loaded = tf.saved_model.load(str(tmp_path / "encoder" / "1"))
  assert loaded.signatures["serving_default"](
      x=tf.zeros([1, 1]))["y"].numpy() == 1.0
  # The next export cleans the dead writer's temporaries and takes version 2.
  paths = tiny_export(tmp_path)
  assert paths["encoder"].endswith("2")
  assert sorted(os.listdir(tmp_path / "encoder")) == ["1", "2"]


@pytest.mark.slow
def test_saved_model_cli_show_and_run(tmp_path, exports):
  model, x = trained_model()
  paths = exports()
  cli = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
  shown = subprocess.run([cli, "show", "--dir", paths["encoder"], "--all"],
                         capture_output=True, text=True, env=ENV, timeout=300)
  assert shown.returncode == 0, shown.stderr[-2000:]
  for text in ("signature_def['serving_default']", "signature_def['sample']",
               "inputs['x']", "shape: (-1, 3)", "outputs['z_mean']",
               "outputs['z_stddev']", "shape: (-1, 2)", "DT_DOUBLE"):
    assert text in shown.stdout
  rows = x[:2].tolist()
  ran = subprocess.run(
      [cli, "run", "--dir", paths["encoder"], "--tag_set", "serve",
       "--signature_def", "serving_default", "--input_exprs", f"x={rows!r}",
       "--outdir", str(tmp_path / "out")],
      capture_output=True, text=True, env=ENV, timeout=300)
  assert ran.returncode == 0, ran.stderr[-2000:]
  posterior = model.posterior_parameters(np.array(rows))
  np.testing.assert_array_equal(np.load(tmp_path / "out" / "z_mean.npy"),
                                posterior["loc"])
  np.testing.assert_array_equal(np.load(tmp_path / "out" / "z_stddev.npy"),
                                posterior["scale"])


def test_export_model_is_a_plain_function_in_a_plain_module():
  import types  # pylint: disable=g-import-not-at-top
  assert type(export) is types.ModuleType and not callable(export)
  assert tfvae.export_model is export.export_model
  assert isinstance(export.export_model, types.FunctionType)


def test_scorer_equals_the_model_and_ignores_the_other_rows(exports):
  model, x = trained_model("student_t")
  paths = exports("student_t", num_samples=64)
  assert set(paths) == {"encoder", "decoder", "scorer"}
  scorer = tf.saved_model.load(paths["scorer"])
  assert set(scorer.signatures) == {"serving_default", "score", "score_k",
                                    "impute"}
  rows = x[:30].copy()
  rows[::4, 1] = np.nan
  rows[7] = np.nan
  seed = tf.constant([11, 0], tf.int64)
  served = scorer.signatures["score"](x=tf.constant(rows), seed=seed)
  expected = model.marginal_log_likelihood(rows, num_samples=64, seed=11)
  np.testing.assert_allclose(served["log_likelihood"], expected, rtol=1e-9,
                             atol=1e-9)
  observed = (~np.isnan(rows)).sum(1)
  np.testing.assert_array_equal(served["num_observed"], observed)
  np.testing.assert_allclose(served["log_likelihood_per_feature"],
                             np.where(observed > 0, expected / np.maximum(
                                 observed, 1), 0.0), rtol=1e-9, atol=1e-12)
  # Alone, the same draws: equal up to the float32 rounding of the networks
  # and mixture weights, which vectorised kernels round by a value's place
  # in the batch (as `test_model.py` allows for the model itself).
  alone = scorer.signatures["score"](x=tf.constant(rows[3:4]), seed=seed)
  assert float(alone["log_likelihood"][0]) == pytest.approx(expected[3],
                                                            rel=1e-6)
  default = scorer.signatures["serving_default"](x=tf.constant(rows))
  np.testing.assert_allclose(default["log_likelihood"],
                             model.marginal_log_likelihood(rows, 64, seed=0),
                             rtol=1e-9, atol=1e-9)
  imputed = scorer.signatures["impute"](x=tf.constant(rows), seed=seed)
  mean, std = model.impute(rows, num_samples=64, seed=11, return_std=True)
  np.testing.assert_allclose(imputed["x_imputed"], mean, rtol=1e-7)
  np.testing.assert_allclose(imputed["x_stddev"], std, rtol=1e-6)
  assert not np.isnan(imputed["x_imputed"].numpy()).any()
  assert np.isnan(served["percentile"].numpy()).all()  # not calibrated


def test_the_scorer_gives_each_scores_percentile(monkeypatch):
  model, x = trained_model("student_t")
  reference = np.sort(model.anomaly_score(x[100:], 64, seed=1))
  # Calibrated for this test only: the shared model stays as it was.
  monkeypatch.setattr(model, "score_reference", reference)
  scorer = export.ScorerModule(model, num_samples=64)
  rows = np.concatenate([x[:40], x[:2] * 100])  # two far outliers
  rows[::5, 0] = np.nan
  served = scorer.score(x=tf.constant(rows), seed=tf.constant([3, 0], tf.int64))
  scores = model.anomaly_score(rows, 64, seed=3)
  np.testing.assert_allclose(served["anomaly_score"], scores, rtol=1e-9)
  np.testing.assert_allclose(served["percentile"],
                             model.score_percentile(scores), rtol=1e-9)
  np.testing.assert_array_equal(served["percentile"][-2:], [100.0, 100.0])
  assert 0 < np.median(served["percentile"][:40]) < 100


def test_a_request_chooses_its_number_of_importance_samples(monkeypatch):
  monkeypatch.setattr(export, "MAX_DECODED_ROWS", 8 * 100)  # chunks at K=100
  model, x = trained_model("student_t")
  scorer = export.ScorerModule(model, num_samples=64)
  rows = x[:20].copy()
  rows[::3, 2] = np.nan
  seed = tf.constant([5, 0], tf.int64)
  for k in (10, 100):
    served = scorer.score_k(x=tf.constant(rows), seed=seed,
                            num_samples=tf.constant(k, tf.int32))
    # (Chunks of other sizes: equal to the networks' float32 rounding.)
    np.testing.assert_allclose(served["log_likelihood"],
                               model.marginal_log_likelihood(rows, k, seed=5),
                               rtol=1e-6)
    np.testing.assert_allclose(served["anomaly_score"],
                               model.anomaly_score(rows, k, seed=5), rtol=1e-6)
  for k in (0, export.MAX_REQUEST_SAMPLES + 1):
    with pytest.raises(tf.errors.InvalidArgumentError,
                       match="num_samples must be between 1 and 10000"):
      scorer.score_k(x=tf.constant(rows), seed=seed,
                     num_samples=tf.constant(k, tf.int32))


def test_the_scorer_answers_large_requests_in_chunks(monkeypatch):
  # 4 rows a chunk: 64 samples and the proposal's pilots per row.
  monkeypatch.setattr(export, "MAX_DECODED_ROWS", 4 * (
      64 + importance.PILOT_SAMPLES * importance.ADAPTATION_ROUNDS))
  model, x = trained_model("student_t")
  # The served graphs are these functions (saving only serialises them).
  scorer = export.ScorerModule(model, num_samples=64)
  assert scorer.rows_per_chunk == 4
  rows = x[:30].copy()  # 8 chunks, the last one padded
  rows[::4, 1] = np.nan
  seed = tf.constant([5, 0], tf.int64)
  served = scorer.score(tf.constant(rows), seed)
  assert served["log_likelihood"].shape == [30]
  np.testing.assert_allclose(
      served["log_likelihood"],
      model.marginal_log_likelihood(rows, num_samples=64, seed=5), rtol=1e-6)
  imputed = scorer.impute(tf.constant(rows), seed)
  mean, std = model.impute(rows, num_samples=64, seed=5, return_std=True)
  np.testing.assert_allclose(imputed["x_imputed"], mean, rtol=1e-6)
  np.testing.assert_allclose(imputed["x_stddev"], std, rtol=1e-5)
  empty = scorer.score(tf.zeros([0, 3], tf.float64), seed)
  assert empty["log_likelihood"].shape == [0]


def test_infinite_values_are_refused_by_every_signature(exports):
  model, x = trained_model()
  paths = exports()
  encoder, decoder, scorer = (tf.saved_model.load(paths[part]) for part in
                              ("encoder", "decoder", "scorer"))
  bad = x[:3].copy()
  bad[1, 2] = -np.inf
  seed = tf.constant([0, 0], tf.int64)
  calls = [
      lambda: encoder.signatures["serving_default"](x=tf.constant(bad)),
      lambda: encoder.signatures["serving_float32"](
          x=tf.constant(bad, tf.float32)),
      lambda: encoder.signatures["sample"](x=tf.constant(bad), seed=seed),
      lambda: scorer.signatures["serving_default"](x=tf.constant(bad)),
      lambda: scorer.signatures["score"](x=tf.constant(bad), seed=seed),
      lambda: scorer.signatures["impute"](x=tf.constant(bad), seed=seed),
  ]
  for call in calls:
    with pytest.raises(tf.errors.InvalidArgumentError,
                       match="infinite values; tfvae needs finite values"):
      call()
  with pytest.raises(tf.errors.InvalidArgumentError,
                     match="z holds a NaN or infinite value"):
    decoder.signatures["serving_default"](
        z=tf.constant([[0.0, np.inf]], tf.float32))
  # The same rule as the Python API, for arrays and tensors alike.
  for value in (bad, tf.constant(bad)):
    with pytest.raises(ValueError, match="1 infinite values, the first at row "
                       "1 \\(0-based\\), column 2"):
      model.posterior_parameters(value)


def test_the_scorer_takes_a_tables_columns_with_text_and_gaps(tmp_path):
  """score_rows / impute_rows: one input per column, texts mapped to levels
  inside the graph; an unseen level is a gap, counted in unseen_levels."""
  rng = np.random.default_rng(0)
  x = np.stack([rng.normal(size=200), rng.integers(0, 3, 200),
                rng.integers(0, 2, 200), rng.normal(size=200)], 1)
  categories = [None, ("hi", "lo", "mid"), ("false", "true"), None]
  model = tfvae.VAE(4, categories=categories, hidden_units=(8,),
                    feature_names=["x 1", "grade", "smoker?", "unseen_levels"],
                    seed=0)
  model.adapt(x)
  # Imputation of `grade` recalibrated to its frequencies alone
  # (`VAE.calibrate_levels`): the graph fills its gaps with "mid".
  model.level_calibration = {"weights": [0.0, 1.0],
                             "frequencies": [[0.1, 0.2, 0.7], [0.5, 0.5]]}
  # The scorer alone (what export_model writes as scorer/1/).
  module, metadata, warmup = export.scorer_servable(model, 32, 1)
  assert metadata["level_calibration"] == model.level_calibration
  export.write_servable(str(tmp_path / "1"), module, metadata, warmup)
  keys = metadata["column_inputs"]
  assert keys == {"x 1": "x_1", "grade": "grade", "smoker?": "smoker_",
                  "unseen_levels": "unseen_levels_2"}
  scorer = tf.saved_model.load(str(tmp_path / "1"))
  request = {
      "x_1": tf.constant([0.5, np.nan, 1.0, 0.2], tf.float64),
      "grade": tf.constant(["mid", " hi ", "", "NA"]),
      "smoker_": tf.constant(["TRUE", "false", "maybe", "False"]),
      "unseen_levels_2": tf.constant([0.1, np.nan, -0.3, 2.0], tf.float64)}
  codes = np.array([[0.5, 2, 1, 0.1], [np.nan, 0, 0, np.nan],
                    [1.0, np.nan, np.nan, -0.3], [0.2, np.nan, 0, 2.0]])
  served = scorer.signatures["score_rows"](**request)
  np.testing.assert_array_equal(served["unseen_levels"], [0, 0, 1, 0])
  np.testing.assert_allclose(served["anomaly_score"],
                             model.anomaly_score(codes, 32, seed=0),
                             rtol=1e-9)
  filled = scorer.signatures["impute_rows"](**request)
  expected = model.impute(codes, num_samples=32, seed=0)
  assert [v.decode() for v in filled["grade"].numpy()] == [
      categories[1][int(c)] for c in expected[:, 1]] == [
          "mid", "hi", "mid", "mid"]
  assert [v.decode() for v in filled["smoker_"].numpy()][:2] == ["true",
                                                                 "false"]
  np.testing.assert_allclose(filled["x_1"], expected[:, 0], rtol=1e-7,
                             atol=1e-8)
  np.testing.assert_array_equal(filled["unseen_levels"], [0, 0, 1, 0])
  # The encoder's encode_rows (in memory, inputs in column order; saved,
  # it takes them by name as the scorer's do).
  encoder, metadata, warmup = export.encoder_servable(model, 1)
  assert metadata["column_inputs"] == keys
  assert warmup[-1][0] == "encode_rows"
  encoded = encoder.encode_rows(*[request[key] for key in keys.values()])
  posterior = model.posterior_parameters(codes)
  np.testing.assert_allclose(encoded["z_mean"], posterior["loc"], rtol=1e-6)
  np.testing.assert_allclose(encoded["z_stddev"], posterior["scale"],
                             rtol=1e-6)
  np.testing.assert_array_equal(encoded["unseen_levels"], [0, 0, 1, 0])


def test_the_scorer_of_positive_and_count_columns_equals_the_model(tmp_path):
  """A positive column (log scale inside the graph) and a count column
  (binned logistic): served scores, imputations and draws are the model's,
  in data units; the metadata names the types and gives the range in data
  units."""
  rng = np.random.default_rng(0)
  x = np.stack([np.exp(rng.normal(2.0, 0.8, 200)).round(2),
                rng.negative_binomial(2, 0.4, 200).astype(float),
                rng.normal(size=200)], 1)
  model = tfvae.VAE(3, column_types=("positive", "count", "real"),
                    hidden_units=(8,), latent_dim=1, seed=0)
  model.adapt(x)
  module, metadata, warmup = export.scorer_servable(model, 32, 1)
  assert metadata["column_types"] == ["positive", "count", "real"]
  assert metadata["range"][0] == pytest.approx([x[:, 0].min(),
                                                x[:, 0].max()])
  assert metadata["resolution"][0] == pytest.approx(0.01)
  export.write_servable(str(tmp_path / "1"), module, metadata, warmup)
  scorer = tf.saved_model.load(str(tmp_path / "1"))
  rows = x[:12].copy()
  rows[::3, 0] = np.nan
  rows[1::3, 1] = np.nan
  seed = tf.constant([4, 0], tf.int64)
  with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # untrained
    served = scorer.signatures["score"](x=tf.constant(rows), seed=seed)
    np.testing.assert_allclose(
        served["log_likelihood"],
        model.marginal_log_likelihood(rows, num_samples=32, seed=4),
        rtol=1e-7)
    # float32 mixture weights round by a value's place in the batch.
    np.testing.assert_allclose(served["anomaly_score"],
                               model.anomaly_score(rows, 32, seed=4),
                               rtol=1e-7)
    imputed = scorer.signatures["impute"](x=tf.constant(rows), seed=seed)
    mean, std = model.impute(rows, num_samples=32, seed=4, return_std=True)
  np.testing.assert_allclose(imputed["x_imputed"], mean, rtol=1e-7)
  np.testing.assert_allclose(imputed["x_stddev"], std, rtol=1e-6)
  filled = imputed["x_imputed"].numpy()
  assert np.all(filled[:, 0] > 0)
  np.testing.assert_array_equal(filled[:, 1], np.round(filled[:, 1]))
