"""TensorBoard monitoring: values, not just tags, read back through the real
TensorBoard server."""

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
import warnings

import numpy as np
import pytest
import tensorflow as tf

from tfvae import checkpoint
from tfvae import data as data_lib
from tfvae import monitoring
from tfvae import objectives
from tests import tb_events
from tests import helpers
from tests.helpers import small_data


def test_active_units_counts_dimensions_whose_mean_varies():
  rng = np.random.default_rng(0)
  means = np.stack([rng.normal(0, 1, 500),      # active
                    rng.normal(0, 0.05, 500),   # variance 0.0025: inactive
                    np.zeros(500),              # collapsed
                    rng.normal(3, 0.2, 500)], axis=1)  # variance 0.04: active
  assert monitoring.compute_active_units(means) == 2


def fit_with_monitor(tmp_path, epochs=4, **monitor_options):
  x = small_data(n=96, d=3)
  model = helpers.vae(input_dim=3, latent_dim=2, likelihood="student_t",
                      hidden_units=(8,), seed=0)
  model.adapt(x)
  model.compile()
  monitor = monitoring.VAEMonitor(str(tmp_path), x, **monitor_options)
  history = model.fit(x, epochs=epochs, verbose=0, callbacks=[monitor])
  return model, x, monitor, history


def test_monitor_writes_the_models_own_numbers(tmp_path):
  model, x, monitor, history = fit_with_monitor(
      tmp_path, iwae_every=2, image_every=100, time_budget=1.0)
  monitor.write_final(4)
  tags = tb_events.read_tags(str(tmp_path / "monitor"))
  assert [step for step, _ in tags["latent/kl/0"]] == [0, 1, 2, 3, 4]
  assert [step for step, _ in tags["elbo/importance_weighted"]] == [1, 3, 4]
  # The final record equals what the trained model gives, computed here.
  posterior = model.posterior_parameters(x)
  kl = np.mean(objectives.compute_gaussian_kl(posterior["loc"],
                                              posterior["scale"]), axis=0)
  for i in range(2):
    assert tags[f"latent/kl/{i}"][-1][1] == pytest.approx(kl[i], rel=1e-5)
  assert tags["latent/kl"][-1][1] == pytest.approx(kl.sum(), rel=1e-5)
  active = tags["latent/active_units"][-1][1]
  assert active == monitoring.compute_active_units(posterior["loc"].numpy())
  assert tags["elbo/importance_weighted"][-1][1] == pytest.approx(
      np.mean(model.marginal_log_likelihood(x, 64, seed=0)), rel=1e-5)
  assert tags["elbo/beta"][-1][1] == 1.0
  assert tags["optimizer/learning_rate"][-1][1] == pytest.approx(1e-3)
  # The gradient norm is the epoch mean the step measured, from the logs.
  np.testing.assert_allclose([v for _, v in tags["optimizer/gradient_norm"]],
                             history.history["gradient_norm"], rtol=1e-5)
  at_floor = tags["decoder/scale_at_floor"][-1][1]
  assert 0.0 <= at_floor <= 1.0
  for tag in ("decoder/df", "latent/posterior_mean", "latent/posterior_stddev",
              "decoder/scale/column_1", "images/reconstruction",
              "images/latent_space", "images/marginals"):
    assert tag in tags, tag


def test_images_are_pngs_of_the_expected_panels(tmp_path):
  fit_with_monitor(tmp_path, epochs=1, image_every=1, time_budget=1.0)
  panels = set()
  for path in sorted((tmp_path / "monitor").glob("events*")):
    for event in tf.compat.v1.train.summary_iterator(str(path)):
      for value in event.summary.value:
        if value.tag.startswith("images/"):
          image = tf.make_ndarray(value.tensor)
          width, height, png = int(image[0]), int(image[1]), image[2]
          assert png[:8] == b"\x89PNG\r\n\x1a\n" and width > 200 and height > 100
          panels.add(value.tag)
  assert panels == {"images/reconstruction", "images/latent_space",
                    "images/marginals"}


def test_a_failing_image_is_a_warning_not_a_lost_run(tmp_path, monkeypatch):
  def broken(self, loc, scores):
    raise RuntimeError("no display")
  monkeypatch.setattr(monitoring.VAEMonitor, "_draw_marginals", broken)
  with pytest.warns(RuntimeWarning, match="image marginals failed"):
    _, _, monitor, history = fit_with_monitor(tmp_path, epochs=2,
                                              image_every=1, time_budget=1.0)
  assert len(history.history["loss"]) == 2
  tags = tb_events.read_tags(str(tmp_path / "monitor"))
  assert "images/reconstruction" in tags and "images/marginals" not in tags
  assert monitor.model is not None  # the run went on with its model


def test_the_time_budget_bounds_the_monitors_share(tmp_path):
  # A budget of zero: the first record, then nothing until the final one.
  _, _, monitor, _ = fit_with_monitor(tmp_path, epochs=6, time_budget=0.0)
  monitor.write_final(6)
  steps = [s for s, _ in tb_events.read_tags(str(tmp_path / "monitor"))
           ["latent/kl"]]
  assert steps == [0, 6]


def test_a_bound_skipped_for_the_budget_is_written_when_next_allowed(
    tmp_path, monkeypatch):
  # A fake clock: each epoch takes 1 s, each record 0.3 s, the budget is
  # 10%: the monitor writes at epochs 0, 2 and 5 (it waits until its share
  # is back under 10%), so the bound due at epoch 3 (iwae_every=4) comes at
  # epoch 5 instead of never, and epoch 7's waits for the next record.
  now = [0.0]
  monkeypatch.setattr(monitoring.time, "monotonic", lambda: now[0])
  x = small_data(n=96, d=3)
  model = helpers.vae(input_dim=3, latent_dim=2, hidden_units=(8,), seed=0)
  model.adapt(x)
  model.compile()
  monitor = monitoring.VAEMonitor(str(tmp_path), x, iwae_every=4,
                                  image_every=100, time_budget=0.1)
  monitor.set_model(model)
  written = []
  original = monitor.write

  def timed_write(step, **kwargs):
    written.append((step, kwargs["iwae"]))
    original(step, **kwargs)
    now[0] += 0.3

  monkeypatch.setattr(monitor, "write", timed_write)
  monitor.on_train_begin()
  for epoch in range(8):
    now[0] += 1.0
    monitor.on_epoch_end(epoch, {})
  assert [step for step, _ in written] == [0, 2, 5]
  assert [step for step, iwae in written if iwae] == [5]
  assert monitor._due_iwae  # epoch 7's bound waits for the next record


def test_tensorboard_fills_an_epoch_a_crash_kept_from_the_logs(tmp_path):
  board = monitoring.EpochTensorBoard(str(tmp_path))
  with tf.summary.create_file_writer(str(tmp_path / "train")).as_default():
    for step in range(3):
      tf.summary.scalar("epoch_loss", 10.0 - step, step=step)
  # The kill kept the validation writer's first record only.
  with tf.summary.create_file_writer(str(tmp_path / "validation")).as_default():
    tf.summary.scalar("epoch_loss", 11.0, step=0)
  history = {"loss": [10.0, 9.0, 8.0, 7.5, 7.0], "val_loss": [11, 10, 9, 8.5, 8]}
  assert monitoring.last_logged_step(str(tmp_path / "train"), "epoch_loss") == 2
  board.fill_missing(history, first=5)  # resuming at epoch 5: 3 and 4 lack
  train = tb_events.read_tags(str(tmp_path / "train"))["epoch_loss"]
  assert sorted(train) == [(0, 10.0), (1, 9.0), (2, 8.0), (3, 7.5), (4, 7.0)]
  validation = tb_events.read_tags(str(tmp_path / "validation"))["epoch_loss"]
  assert sorted(validation) == [(0, 11.0), (1, 10.0), (2, 9.0), (3, 8.5),
                                (4, 8.0)]


# -- The real TensorBoard server -------------------------------------------------


def free_port():
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def get(url, body=None):
  request = urllib.request.Request(
      url, data=None if body is None else json.dumps(body).encode(),
      headers={"Content-Type": "application/json"} if body is not None else {})
  with urllib.request.urlopen(request, timeout=60) as response:
    return json.loads(response.read())


@pytest.mark.slow
def test_the_real_tensorboard_serves_what_the_run_logged(tmp_path):
  bin_dir = os.path.dirname(sys.executable)
  logdir = tmp_path / "runs" / "first"
  result = subprocess.run(
      [os.path.join(bin_dir, "tfvae-train"), "--epochs", "10", "--latent-dim",
       "3", "--hidden-units", "16,16", "--likelihood", "student_t",
       "--logdir", str(logdir), "--checkpoint-dir", str(tmp_path / "ckpt"),
       "--num-samples", "50"], capture_output=True, text=True, timeout=600)
  assert result.returncode == 0, result.stderr
  port = free_port()
  server = subprocess.Popen(
      [os.path.join(bin_dir, "tensorboard"), "--logdir", str(tmp_path / "runs"),
       "--host", "127.0.0.1", "--port", str(port), "--load_fast", "false"],
      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
  base = f"http://127.0.0.1:{port}"
  try:
    deadline = time.monotonic() + 120
    while True:
      try:
        runs = get(f"{base}/data/runs")
        if "first/monitor" in runs and "first/train" in runs:
          break
      except OSError:
        pass
      assert time.monotonic() < deadline, "TensorBoard did not start"
      time.sleep(0.5)

    def scalars(run, tag):
      return get(f"{base}/data/plugin/scalars/scalars?run={run}&tag={tag}")

    marker = checkpoint.read_metadata(tmp_path / "ckpt")
    # Keras' epoch scalars are the run's history.
    logged = [point[2] for point in scalars("first/train", "epoch_loss")]
    np.testing.assert_allclose(logged, marker["history"]["loss"], rtol=1e-6)
    # Active units: an integer between 0 and the latent size.
    for point in scalars("first/monitor", "latent/active_units"):
      assert point[2] == int(point[2]) and 0 <= point[2] <= 3
    # The last per-dimension KLs sum to the analytic KL of the saved model on
    # the monitored rows (the validation split's), computed here.
    model = checkpoint.load_checkpoint(tmp_path / "ckpt")
    _, validation = data_lib.split(data_lib.load_default().values, 0.2, seed=0)
    posterior = model.posterior_parameters(validation)
    expected = float(np.sum(np.mean(objectives.compute_gaussian_kl(
        posterior["loc"], posterior["scale"]), axis=0)))
    last = [scalars("first/monitor", f"latent/kl/{i}")[-1][2] for i in range(3)]
    assert sum(last) == pytest.approx(expected, rel=1e-4)
    # Images: at least three tags, each with a PNG.
    images = get(f"{base}/data/plugin/images/tags")["first/monitor"]
    assert {"images/reconstruction", "images/latent_space",
            "images/marginals"} <= set(images)
    listing = get(f"{base}/data/plugin/images/images?run=first/monitor&tag="
                  "images/marginals&sample=0")
    assert listing and listing[-1]["step"] == len(marker["history"]["loss"])
    # HParams: the session lists the flags the run was started with.
    experiment = get(f"{base}/data/plugin/hparams/experiment",
                     {"experimentName": ""})
    names = {info["name"] for info in experiment["hparamInfos"]}
    assert {"likelihood", "latent_dim", "hidden_units", "beta",
            "learning_rate", "batch_size", "adapt"} <= names
    groups = get(f"{base}/data/plugin/hparams/session_groups",
                 {"experimentName": "", "allowedStatuses": [
                     "STATUS_UNKNOWN", "STATUS_SUCCESS", "STATUS_FAILURE",
                     "STATUS_RUNNING"], "colParams": [], "startIndex": 0,
                  "sliceSize": 10})
    session = groups["sessionGroups"][0]
    assert session["hparams"]["latent_dim"] == 3
    assert session["hparams"]["hidden_units"] == "16-16"
    assert session["hparams"]["likelihood"] == "student_t"
    metrics = {value["name"]["tag"]: value["value"]
               for value in session["metricValues"]}
    assert metrics["hparams/best_val_loss"] == pytest.approx(
        min(marker["history"]["val_loss"]), rel=1e-6)
    assert metrics["hparams/validation_log_likelihood"] == pytest.approx(
        marker["results"]["validation_log_likelihood"], rel=1e-6)
  finally:
    server.terminate()
    server.wait(timeout=30)


def test_crowded_figures_draw_without_a_layout_warning():
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  import matplotlib.figure  # pylint: disable=g-import-not-at-top
  fig = matplotlib.figure.Figure(figsize=(2, 1.5))
  axis = fig.add_subplot(1, 1, 1)
  axis.set_xticks(range(5))
  axis.set_xticklabels(["a very long feature name " * 4] * 5, rotation=45)
  axis.set_ylabel("y" * 200)  # no room: matplotlib would warn
  with warnings.catch_warnings():
    warnings.simplefilter("error")
    monitoring._tight_layout(fig)  # pylint: disable=protected-access


def test_reconstruction_by_column_type(tmp_path):
  """Text columns get an accuracy, every type its nats per value."""
  rng = np.random.default_rng(0)
  z = rng.normal(size=300)
  x = np.stack([z + 0.3 * rng.normal(size=300),
                np.digitize(z, [-0.5, 0.5]).astype(float),
                (z > 0).astype(float)], 1)
  x[::7, 1] = np.nan
  model = helpers.vae(input_dim=3, latent_dim=1, hidden_units=(16,), seed=0,
                      categories=[None, ("a", "b", "c"), ("no", "yes")])
  model.adapt(x)
  model.compile()
  monitor = monitoring.VAEMonitor(str(tmp_path), x, iwae_every=100,
                                  image_every=100, time_budget=1.0)
  model.fit(x, epochs=1, batch_size=32, verbose=0, callbacks=[monitor])
  tags = tb_events.read_tags(str(tmp_path / "monitor"))
  # Independently: each level's log-probability at the posterior mean,
  # the most probable one against the value.
  loc = model.posterior_parameters(x)["loc"]
  standard = model.standard_likelihood_parameters(loc)
  def column_log_prob(values):
    u, observed = model.standardize(tf.constant(values))
    return model.column_log_prob(standard, u, observed, tf.float64,
                                 model.atom_index(u)).numpy()
  for column, kind, count in ((1, "categorical", 3), (2, "binary", 2)):
    per_level = []
    for level in range(count):
      candidate = x.copy()
      candidate[:, column] = level
      per_level.append(column_log_prob(candidate)[:, column])
    best = np.argmax(np.stack(per_level, 1), axis=1)
    seen = ~np.isnan(x[:, column])
    assert tags[f"reconstruction/accuracy/{kind}"][-1][1] == pytest.approx(
        np.mean(best[seen] == x[seen, column]), abs=1e-6)
  nats = -column_log_prob(x)
  assert tags["reconstruction/nats/real"][-1][1] == pytest.approx(
      np.mean(nats[:, 0]), rel=1e-5)
  seen = ~np.isnan(x[:, 1])
  assert tags["reconstruction/nats/categorical"][-1][1] == pytest.approx(
      np.mean(nats[seen, 1]), rel=1e-5)
