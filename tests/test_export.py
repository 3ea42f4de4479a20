"""SavedModel export: layout, exact outputs, plain-TF loading, crash safety."""

import json
import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf

import tfvae
from tfvae import export

ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}


def trained_model(likelihood="gaussian", seed=0):
  rng = np.random.default_rng(seed)
  x = np.stack([rng.normal(100, 30, 200), rng.lognormal(0, 1, 200),
                rng.normal(-5, 0.01, 200)], axis=1).astype(np.float32)
  model = tfvae.VAE(input_dim=3, latent_dim=2, hidden_units=(8,),
                    likelihood=likelihood, feature_names=["a", "b", "c"])
  model.adapt(x)
  model.compile()
  model.fit(x, epochs=2, batch_size=64, verbose=0)
  return model, x


@pytest.mark.parametrize("likelihood,extra", [
    ("gaussian", set()), ("gaussian_shared", set()),
    ("laplace", {"x_loc", "x_scale"}), ("student_t", {"x_loc", "x_scale", "x_df"})])
def test_signatures_match_the_model(tmp_path, likelihood, extra):
  model, x = trained_model(likelihood)
  paths = export.export(model, tmp_path)
  assert paths == {"encoder": str(tmp_path / "encoder" / "1"),
                   "decoder": str(tmp_path / "decoder" / "1")}
  encoder = tf.saved_model.load(paths["encoder"])
  assert set(encoder.signatures) == {"serving_default", "sample"}
  out = encoder.signatures["serving_default"](x=tf.constant(x[:7]))
  posterior = model.encode(x[:7])
  np.testing.assert_allclose(out["z_mean"], posterior.mean(), atol=1e-5)
  np.testing.assert_allclose(out["z_stddev"], posterior.stddev(), atol=1e-5)
  z = np.random.default_rng(1).normal(size=(5, 2)).astype(np.float32)
  decoded = tf.saved_model.load(paths["decoder"]).signatures["serving_default"](
      z=tf.constant(z))
  assert set(decoded) == {"x_mean", "x_stddev"} | extra
  likelihood_dist = model.decode(z)
  np.testing.assert_allclose(decoded["x_mean"], likelihood_dist.mean(), rtol=1e-5)
  np.testing.assert_allclose(decoded["x_stddev"], likelihood_dist.stddev(), rtol=1e-5)


def test_sample_signature_is_seeded_and_follows_the_posterior(tmp_path):
  model, x = trained_model()
  sample = tf.saved_model.load(export.export(model, tmp_path)["encoder"]).signatures["sample"]
  rows = np.repeat(x[:1], 4000, axis=0)
  a = sample(x=tf.constant(rows), seed=tf.constant([1, 2]))["z"].numpy()
  b = sample(x=tf.constant(rows), seed=tf.constant([1, 2]))["z"].numpy()
  np.testing.assert_array_equal(a, b)
  posterior = model.encode(x[:1])
  np.testing.assert_allclose(a.mean(0), posterior.mean()[0], atol=0.1 * float(tf.reduce_max(posterior.stddev())) + 1e-3)
  np.testing.assert_allclose(a.std(0), posterior.stddev()[0], rtol=0.1)


def test_serving_graphs_have_no_random_ops(tmp_path):
  model, _ = trained_model()
  paths = export.export(model, tmp_path)
  for part in ("encoder", "decoder"):
    function = tf.saved_model.load(paths[part]).signatures["serving_default"]
    ops = {op.type for op in function.graph.get_operations()}
    for f in function.graph.as_graph_def().library.function:
      ops |= {node.op for node in f.node_def}
    assert not {op for op in ops if "Random" in op}, (part, ops)


def test_versions_metadata_and_no_overwrite(tmp_path):
  model, _ = trained_model()
  export.export(model, tmp_path)
  second = export.export(model, tmp_path)
  assert second["encoder"].endswith(os.path.join("encoder", "2"))
  assert export.integer_versions(tmp_path / "decoder") == [1, 2]
  with pytest.raises(FileExistsError, match="already exists"):
    export.export(model, tmp_path, version=2)
  export.export(model, tmp_path, version=2, overwrite=True)
  assert export.integer_versions(tmp_path / "encoder") == [1, 2]
  metadata = json.loads(
      (tmp_path / "encoder" / "2" / "assets.extra" / export.METADATA_FILE).read_text())
  assert metadata["input_dim"] == 3 and metadata["latent_dim"] == 2
  assert metadata["likelihood"] == "gaussian"
  assert metadata["feature_names"] == ["a", "b", "c"]
  assert metadata["tfvae_version"] == tfvae.__version__
  with pytest.raises(ValueError, match="positive integer"):
    export.export(model, tmp_path, version=0)


def test_warmup_records_are_valid_prediction_logs(tmp_path):
  pytest.importorskip("tensorflow_serving")
  from tensorflow_serving.apis import prediction_log_pb2  # pylint: disable=g-import-not-at-top
  model, _ = trained_model()
  paths = export.export(model, tmp_path)
  for part, name, width in (("encoder", "x", 3), ("decoder", "z", 2)):
    path = os.path.join(paths[part], "assets.extra", export.WARMUP_FILE)
    logs = [prediction_log_pb2.PredictionLog.FromString(record.numpy())
            for record in tf.data.TFRecordDataset(path)]
    assert 1 <= len(logs) <= 1000
    signature = tf.saved_model.load(paths[part]).signatures["serving_default"]
    for log in logs:
      request = log.predict_log.request
      assert request.model_spec.signature_name == "serving_default"
      rows = tf.make_ndarray(request.inputs[name])
      assert rows.shape[1] == width
      assert all(np.isfinite(v.numpy()).all()
                 for v in signature(**{name: tf.constant(rows)}).values())


def test_wrong_width_or_dtype_fails_at_the_signature(tmp_path):
  model, _ = trained_model()
  encoder = tf.saved_model.load(export.export(model, tmp_path)["encoder"])
  function = encoder.signatures["serving_default"]
  with pytest.raises(tf.errors.InvalidArgumentError, match=r"tensor x \[2,4\].*\[\?,3\]"):
    function(x=tf.zeros([2, 4]))
  with pytest.raises(tf.errors.InvalidArgumentError, match="float tensor but is a double"):
    function(x=tf.zeros([2, 3], tf.float64))


def test_plain_tensorflow_loads_both_parts(tmp_path):
  model, x = trained_model("student_t")
  paths = export.export(model, tmp_path / "m")
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
      np.savez({str(tmp_path / "out.npz")!r}, z_mean=e["z_mean"].numpy(),
               x_mean=d["x_mean"].numpy(), x_stddev=d["x_stddev"].numpy())
      assert not [m for m in sys.modules if m.startswith(("tfvae", "tensorflow_probability"))]
  """)
  result = subprocess.run([sys.executable, "-c", script], capture_output=True,
                          text=True, timeout=300, env=ENV)
  assert result.returncode == 0, result.stderr[-3000:]
  out = np.load(tmp_path / "out.npz")
  np.testing.assert_allclose(out["z_mean"], model.encode(x[:4]).mean(), atol=1e-5)
  np.testing.assert_allclose(out["x_mean"], model.decode(z).mean(), rtol=1e-5)
  np.testing.assert_allclose(out["x_stddev"], model.decode(z).stddev(), rtol=1e-5)


@pytest.mark.slow
def test_killed_export_leaves_no_version_and_the_previous_intact(tmp_path):
  script = textwrap.dedent(f"""
      import sys, time
      import tensorflow as tf
      import tfvae
      from tfvae import export
      model = tfvae.VAE(input_dim=3, latent_dim=2)
      export.export(model, {str(tmp_path)!r})  # version 1, complete
      real_save = tf.saved_model.save
      def save_then_hang(*args, **kwargs):
        real_save(*args, **kwargs)
        print("half-way", flush=True)  # one part written, in a temporary
        time.sleep(600)
      tf.saved_model.save = save_then_hang
      export.export(model, {str(tmp_path)!r})
  """)
  child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, env=ENV)
  try:
    assert child.stdout.readline().strip() == "half-way", child.stderr.read()
  finally:
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=60)
  for part in ("encoder", "decoder"):
    assert export.integer_versions(tmp_path / part) == [1]
  leftovers = [n for n in os.listdir(tmp_path / "encoder") if n != "1"]
  assert leftovers and all(n.startswith(".tmp-") for n in leftovers)
  loaded = tf.saved_model.load(str(tmp_path / "encoder" / "1"))
  assert loaded.signatures["serving_default"](x=tf.zeros([1, 3]))["z_mean"].shape == (1, 2)
  # The next export cleans the temporaries and takes version 2.
  paths = export.export(tfvae.VAE(input_dim=3, latent_dim=2), tmp_path)
  assert paths["encoder"].endswith("2")
  assert sorted(os.listdir(tmp_path / "encoder")) == ["1", "2"]


@pytest.mark.slow
def test_saved_model_cli_show_and_run(tmp_path):
  model, x = trained_model()
  paths = export.export(model, tmp_path)
  cli = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
  shown = subprocess.run([cli, "show", "--dir", paths["encoder"], "--all"],
                         capture_output=True, text=True, env=ENV, timeout=300)
  assert shown.returncode == 0, shown.stderr[-2000:]
  for text in ("signature_def['serving_default']", "signature_def['sample']",
               "inputs['x']", "shape: (-1, 3)", "outputs['z_mean']",
               "outputs['z_stddev']", "shape: (-1, 2)"):
    assert text in shown.stdout
  rows = x[:2].astype(np.float64).tolist()
  ran = subprocess.run(
      [cli, "run", "--dir", paths["encoder"], "--tag_set", "serve",
       "--signature_def", "serving_default", "--input_exprs", f"x={rows!r}",
       "--outdir", str(tmp_path / "out")],
      capture_output=True, text=True, env=ENV, timeout=300)
  assert ran.returncode == 0, ran.stderr[-2000:]
  posterior = model.encode(np.array(rows, np.float32))
  np.testing.assert_allclose(np.load(tmp_path / "out" / "z_mean.npy"),
                             posterior.mean(), atol=1e-5)
  np.testing.assert_allclose(np.load(tmp_path / "out" / "z_stddev.npy"),
                             posterior.stddev(), atol=1e-5)


def test_tfvae_export_is_callable_and_still_a_module(tmp_path):
  model, _ = trained_model()
  paths = tfvae.export(model, tmp_path, version=3)
  assert paths["decoder"] == str(tmp_path / "decoder" / "3")
  assert tfvae.export.integer_versions(tmp_path / "encoder") == [3]
  assert export.export is not tfvae.export and callable(export.export)
