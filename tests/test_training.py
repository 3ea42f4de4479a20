"""`training.run` / `training.train` end to end in process; resuming after a
kill and tf.distribute's workers in processes of their own."""

import json
import math
import os
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

import tfvae
from tfvae import checkpoint
from tfvae import cli
from tfvae import data as data_lib
from tfvae import training
from tests import helpers
from tests import tb_events


def test_train_on_the_default_data(tmp_path):
  summary = training.train(training.TrainConfig(
      epochs=15, hidden_units=(16,), num_samples=50, verbose=0,
      logdir=str(tmp_path / "runs"), checkpoint_dir=str(tmp_path / "ckpt")))
  x = data_lib.load_default().values
  train_rows, validation_rows = data_lib.split(x, 0.2, seed=0)
  assert summary.num_train == len(train_rows)
  assert summary.num_validation == len(validation_rows)
  assert summary.input_dim == 13 and summary.epochs_run == 15
  assert summary.num_train_samples == 10  # the recipe's IWAE default
  for metrics in (summary.train, summary.validation):
    assert set(metrics) == {"loss", "reconstruction_nll", "kl"}
    # With K = 10 the loss is the negative importance-weighted bound, which
    # is tighter than the ELBO that reconstruction_nll + kl make up.
    assert metrics["loss"] < metrics["reconstruction_nll"] + metrics["kl"]
  assert "loss = -importance-weighted bound, K = 10" in summary.format()
  assert summary.train["loss"] < summary.first_loss
  # The summary's log-likelihood is the model's, on the validation rows,
  # and their scores are the reference of percentiles.
  log_likelihoods = summary.model.marginal_log_likelihood(validation_rows, 50,
                                                          seed=0)
  assert summary.validation_log_likelihood == pytest.approx(
      np.mean(log_likelihoods), rel=1e-9)
  np.testing.assert_allclose(
      summary.model.score_reference,
      np.sort(summary.model.anomaly_score(validation_rows, 50, seed=0)),
      rtol=1e-9)
  assert summary.score_threshold == summary.model.anomaly_threshold(0.01)
  assert (f"1% score above {summary.score_threshold:.4f} (tfvae-score "
          "--contamination 0.01)") in summary.format()
  text = summary.format()
  assert "nats per example" in text and str(tmp_path / "runs") in text
  restored = checkpoint.load_checkpoint(summary.checkpoint_dir)
  np.testing.assert_array_equal(
      restored.posterior_parameters(x[:2])["loc"],
      summary.model.posterior_parameters(x[:2])["loc"])
  np.testing.assert_array_equal(restored.score_reference,
                                summary.model.score_reference)
  marker = checkpoint.read_metadata(summary.checkpoint_dir)
  assert "score_reference" not in marker["model"]  # in model.keras only
  assert marker["training"]["epochs"] == 15
  assert marker["results"]["validation_log_likelihood"] == pytest.approx(
      summary.validation_log_likelihood)


def test_train_without_validation(tmp_path):
  summary = training.train(training.TrainConfig(
      epochs=2, validation_split=0.0, verbose=0, logdir=str(tmp_path / "r")))
  assert summary.num_validation == 0 and summary.validation == {}
  assert "marginal" not in summary.format()


def test_train_rejects_tiny_data(tmp_path):
  path = tmp_path / "one.csv"
  path.write_text("1,2\n")
  with pytest.raises(ValueError, match="too few rows"):
    training.run(training.TrainConfig(data=str(path), logdir=None))
  path.write_text("1,2\n3,4\n")
  with pytest.raises(ValueError, match="too few rows to train on: 2 rows, 1 "
                     "left for training after the validation split \(0.2\)"):
    training.run(training.TrainConfig(data=str(path), logdir=None))


def test_the_closing_evaluation_is_capped(tmp_path, monkeypatch):
  monkeypatch.setattr(training.loop, "MAX_LOG_LIKELIHOOD_ROWS", 10)
  summary = training.train(training.TrainConfig(
      epochs=1, num_samples=5, verbose=0, logdir=None))
  assert summary.log_likelihood_rows == 10
  assert "10 random validation rows" in summary.format()
  assert math.isfinite(summary.validation_log_likelihood)


# -- Resuming after a crash, and tf.distribute ---------------------------------

TRAIN = os.path.join(os.path.dirname(sys.executable), "tfvae-train")


def write_rows(path, rows=1200, seed=0):
  rng = np.random.default_rng(seed)
  z = rng.normal(size=(rows, 2))
  x = np.tanh(z @ rng.normal(size=(2, 5))) + 0.2 * rng.normal(size=(rows, 5))
  np.save(path, x)
  return x


def backed_up_epoch(directory):
  try:
    with open(os.path.join(directory, "backup", "state.json")) as f:
      return json.load(f)["epoch"]
  except (OSError, ValueError, KeyError):
    return 0


def start(args, cwd):
  return subprocess.Popen([TRAIN, *args], cwd=cwd, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True)


def wait_for_backup(child, directory, epoch, timeout=300):
  deadline = time.monotonic() + timeout
  while backed_up_epoch(directory) < epoch:
    assert child.poll() is None, child.communicate()
    assert time.monotonic() < deadline, "no backup in time"
    time.sleep(0.05)


ARGS = ["--data", "x.npy", "--epochs", "12", "--patience", "0",
        "--hidden-units", "32,32", "--batch-size", "32", "--num-samples", "20",
        "--checkpoint-dir", "ck", "--logdir", "runs", "--export-dir", "sm",
        "--no-monitor"]  # Keras' epoch scalars are what these tests read


@pytest.mark.slow
def test_a_killed_run_resumes_where_its_backup_left_off(tmp_path, monkeypatch):
  write_rows(tmp_path / "x.npy")
  child = start(ARGS, tmp_path)
  wait_for_backup(child, tmp_path / "ck", epoch=2)
  child.send_signal(signal.SIGKILL)
  child.wait()
  killed_at = backed_up_epoch(tmp_path / "ck")
  assert 2 <= killed_at < 12
  assert not (tmp_path / "ck" / "model.keras").exists()
  assert not (tmp_path / "sm").exists()
  resumed = subprocess.run([TRAIN, *ARGS], cwd=tmp_path, capture_output=True,
                           text=True, timeout=600)
  assert resumed.returncode == 0, resumed.stderr
  first_line = resumed.stdout.splitlines()[0]
  resumed_at = int(first_line.split()[3])
  assert first_line == f"resuming from epoch {resumed_at} of ck"
  assert killed_at <= resumed_at <= killed_at + 1  # the last backup
  assert "epochs run 12" in resumed.stdout
  # TensorBoard: every epoch logged exactly once across both processes.
  for run in ("train", "validation"):
    steps = [s for s, _ in tb_events.read_tags(str(tmp_path / "runs" / run))
             ["epoch_loss"]]
    assert sorted(steps) == list(range(12)), (run, steps)
  # The final checkpoint and export are whole, and the backup is gone.
  model = checkpoint.load_checkpoint(tmp_path / "ck")
  assert not (tmp_path / "ck" / "backup").exists()
  assert checkpoint.read_metadata(tmp_path / "ck")["complete"] is True
  assert sorted(n for n in os.listdir(tmp_path / "sm")
                if not n.startswith(".")) == ["decoder", "encoder", "scorer"]
  # Comparable with an uninterrupted run of the same command (in this
  # process, without the logs and export it does not need to compare).
  (tmp_path / "again").mkdir()
  (tmp_path / "again" / "x.npy").write_bytes((tmp_path / "x.npy").read_bytes())
  monkeypatch.chdir(tmp_path / "again")
  assert cli.train_main([*ARGS[:ARGS.index("--logdir")], "--logdir", "",
                         "--verbose", "0"]) == 0
  resumed_loss = checkpoint.read_metadata(tmp_path / "ck")["results"]["val_loss"]
  whole_loss = checkpoint.read_metadata(
      tmp_path / "again" / "ck")["results"]["val_loss"]
  # The same data, seed and schedule; only the epoch orders after the
  # resumption differ, which moves the validation loss by a few percent.
  assert resumed_loss == pytest.approx(whole_loss, rel=0.05)
  x = np.load(tmp_path / "x.npy")
  assert np.isfinite(model.marginal_log_likelihood(x[:10], 10, seed=0)).all()


@pytest.mark.slow
def test_sigterm_saves_a_backup_and_says_so(tmp_path):
  write_rows(tmp_path / "x.npy")
  args = ARGS[:3] + ["400"] + ARGS[4:]  # long enough to be stopped
  child = start(args, tmp_path)
  wait_for_backup(child, tmp_path / "ck", epoch=1)
  child.send_signal(signal.SIGTERM)
  out, err = child.communicate(timeout=120)
  assert child.returncode == 143, err
  message = err.strip().splitlines()[-1]
  assert message.startswith("tfvae-train: interrupted by SIGTERM; backup of "
                            "epoch ")
  assert message.endswith("saved in ck: run the same command to resume")
  saved = int(message.split("backup of epoch ")[1].split()[0])
  assert backed_up_epoch(tmp_path / "ck") == saved >= 1
  assert not (tmp_path / "ck" / "model.keras").exists()
  resumed = start(args, tmp_path)
  line = resumed.stdout.readline().strip()
  resumed.send_signal(signal.SIGKILL)
  resumed.wait()
  assert line == f"resuming from epoch {saved} of ck"
  del out


def free_ports(count):
  sockets = [socket.socket() for _ in range(count)]
  for s in sockets:
    s.bind(("127.0.0.1", 0))
  ports = [s.getsockname()[1] for s in sockets]
  for s in sockets:
    s.close()
  return ports


@pytest.mark.slow
def test_two_workers_train_together_and_only_the_chief_writes(tmp_path,
                                                              monkeypatch):
  write_rows(tmp_path / "x.npy", rows=1000)
  args = ["--data", "x.npy", "--epochs", "6", "--patience", "0",
          "--hidden-units", "32,32", "--batch-size", "64", "--num-samples",
          "20", "--lr-patience", "0"]
  ports = free_ports(2)
  cluster = {"worker": [f"127.0.0.1:{port}" for port in ports]}
  workers = []
  for index in range(2):
    directory = tmp_path / f"worker{index}"
    directory.mkdir()
    (directory / "x.npy").write_bytes((tmp_path / "x.npy").read_bytes())
    env = {**os.environ, "TF_CONFIG": json.dumps(
        {"cluster": cluster, "task": {"type": "worker", "index": index}})}
    workers.append(subprocess.Popen(
        [TRAIN, *args, "--strategy", "multi_worker", "--checkpoint-dir", "ck",
         "--export-dir", "sm", "--logdir", "runs", "--no-monitor"],
        cwd=directory, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
  outputs = [worker.communicate(timeout=900) for worker in workers]
  assert [w.returncode for w in workers] == [0, 0], outputs
  # Worker 0 is the chief: it alone writes logs, checkpoint and export.
  chief, other = tmp_path / "worker0", tmp_path / "worker1"
  assert (chief / "ck" / "model.keras").is_file()
  assert sorted(n for n in os.listdir(chief / "sm")
                if not n.startswith(".")) == ["decoder", "encoder", "scorer"]
  assert (chief / "runs" / "train").is_dir()
  assert sorted(os.listdir(other)) == ["x.npy"]
  # Metrics are aggregated over the workers: both report the same losses.
  def summary_rows(text):
    return [line for line in text.splitlines() if "loss" in line and
            "reconstruction_nll" in line]
  assert summary_rows(outputs[0][0]) == summary_rows(outputs[1][0])
  # A single process with the same global batch size reaches the same
  # validation loss within 5%: the two runs see the same rows per epoch in
  # different batches (each worker takes every other row). After 6 epochs
  # that moves the loss by about 1% on this data (3.488 vs 3.525 measured
  # with tfvae 0.12; 3.075 vs 3.045 after 12). In this process: only the
  # workers need processes of their own.
  monkeypatch.chdir(tmp_path)
  assert cli.train_main([*args, "--checkpoint-dir", "ck", "--logdir", "",
                         "--verbose", "0"]) == 0
  together = checkpoint.read_metadata(chief / "ck")["results"]["val_loss"]
  alone = checkpoint.read_metadata(tmp_path / "ck")["results"]["val_loss"]
  assert together == pytest.approx(alone, rel=0.05)


def test_search_respects_a_tiny_time_budget(tmp_path):
  budget_minutes = 0.1
  start = time.monotonic()
  summary = training.run(training.TrainConfig(
      search=True, time_budget=budget_minutes, hidden_units=(16,),
      num_samples=20, verbose=0, logdir=None,
      checkpoint_dir=str(tmp_path / "ckpt")))
  elapsed = time.monotonic() - start
  # Training stops at the deadline; what follows is one closing
  # evaluation, the checkpoint and TensorFlow's start-up, not another
  # candidate (untimed, the nine candidates take minutes).
  assert elapsed < 60 * budget_minutes + 20, elapsed
  tried = summary.search_table
  assert 1 <= len(tried) < len(training.search_candidates(147, 13))
  assert [row["chosen"] for row in tried].count(True) == 1
  marker = checkpoint.read_metadata(tmp_path / "ckpt")
  assert marker["results"]["search"] == tried


def test_search_keeps_the_best_candidate_and_stores_its_settings(
    tmp_path, monkeypatch):
  candidates = [("defaults", {}), ("linear", {"hidden_units": ()}),
                ("tiny_latent", {"latent_dim": 1})]
  monkeypatch.setattr(training.recipe, "search_candidates",
                      lambda n, d: candidates)
  summary = training.run(training.TrainConfig(
      search=True, time_budget=5, epochs=2, hidden_units=(16,),
      num_samples=20, verbose=0, logdir=None,
      checkpoint_dir=str(tmp_path / "ckpt")))
  tried = summary.search_table
  assert [row["name"] for row in tried] == ["defaults", "linear", "tiny_latent"]
  best = max(tried, key=lambda row: row["score"])
  assert best["chosen"] and summary.validation_log_likelihood == best["score"]
  # The summary and the checkpoint say which configuration won.
  assert best["name"] in summary.format()
  restored = checkpoint.load_checkpoint(tmp_path / "ckpt")
  expected_latent = 1 if best["name"] == "tiny_latent" else 8
  assert restored.latent_dim == expected_latent
  x = data_lib.load_default().values
  _, validation_rows = data_lib.split(x, 0.2, seed=0)
  assert np.mean(restored.marginal_log_likelihood(
      validation_rows, 20, seed=0)) == pytest.approx(best["score"], rel=1e-9)


def test_the_model_has_room_for_the_atoms_the_data_hold_and_no_more(tmp_path):
  rng = np.random.default_rng(0)
  x = rng.normal(size=(400, 3))
  continuous = training.train(training.TrainConfig(
      epochs=1, hidden_units=(8,), num_samples=10, verbose=0, logdir=None),
      data_lib.Table(x, None, "continuous"))
  assert continuous.model.num_atoms == 0
  assert continuous.recipe["num_atoms"] == 0
  assert "num_atoms 0" in continuous.format()
  # Column 1 holds three repeated values (a 0/1/2 code), column 2 one.
  x[:, 1] = rng.integers(0, 3, size=400)
  x[:150, 2] = 5.0
  coded = training.train(training.TrainConfig(
      epochs=1, hidden_units=(8,), num_samples=10, verbose=0, logdir=None),
      data_lib.Table(x, None, "coded"))
  assert coded.model.num_atoms == 3
  atoms = coded.model.standardization.atoms.numpy()
  np.testing.assert_array_equal(np.sort(atoms[1]), [0.0, 1.0, 2.0])
  assert atoms[2][np.isfinite(atoms[2])].tolist() == [5.0]
  assert not np.isfinite(atoms[0]).any()


def test_the_python_route_with_its_defaults_trains_what_tfvae_train_trains():
  # One source of defaults: `VAE(input_dim=D)` adapted, compiled and fitted
  # with nothing chosen by hand (the README's route) is `tfvae-train`'s
  # model on the same rows and seed: same architecture, same atom slots,
  # same batches, early stopping and learning-rate halving, so the same
  # held-out log-likelihood.
  import tf_keras  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(3)
  x = rng.normal(size=(160, 3)) @ rng.normal(size=(3, 5))
  x[:, 4] = np.round(x[:, 4])  # a column with atoms
  summary = training.train(
      training.TrainConfig(seed=4, verbose=0, logdir=None, patience=8),
      data_lib.Table(x, None, "table"))
  tf_keras.utils.set_random_seed(4)
  train_rows, held_out = data_lib.split(x, 0.2, seed=4)
  model = tfvae.VAE(input_dim=5, seed=4)
  assert model.latent_dim == 5 and "hidden_units" in model.unresolved_settings
  model.adapt(train_rows)
  model.compile()
  history = model.fit(train_rows, validation_data=held_out, patience=8,
                      verbose=0)
  trained = summary.model
  for name in ("hidden_units", "latent_dim", "num_train_samples",
               "num_atoms", "df_transform", "missing_train_samples"):
    assert getattr(model, name) == getattr(trained, name), name
  assert model.num_atoms > 0 and model.hidden_units == (128, 128)
  assert len(history.history["loss"]) == summary.epochs_run
  assert summary.epochs_run < training.TrainConfig.epochs  # stopped early
  log_px = model.marginal_log_likelihood(held_out, 1000, seed=4)
  assert np.mean(log_px) == pytest.approx(summary.validation_log_likelihood,
                                          rel=1e-6)
  # Saved, its config holds the resolved settings and reloads unchanged.
  clone = tfvae.VAE.from_config(model.get_config())
  assert not clone.unresolved_settings and clone.num_atoms == model.num_atoms


def test_refit_in_python_is_tfvae_train_refit():
  # The imputation route of the Python API: fit with validation rows, then
  # `refit` on every row, is `TrainConfig(refit=True)` (`tfvae-impute`'s
  # model): the same epoch count, learning rates, batches and weights.
  import tf_keras  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(5)
  x = rng.normal(size=(120, 2)) @ rng.normal(size=(2, 4))
  summary = training.train(
      training.TrainConfig(seed=6, verbose=0, logdir=None, patience=5,
                           lr_patience=2, epochs=40, num_samples=20,
                           refit=True),
      data_lib.Table(x, None, "table"))
  tf_keras.utils.set_random_seed(6)
  train_rows, held_out = data_lib.split(x, 0.2, seed=6)
  model = tfvae.VAE(input_dim=4, seed=6)
  model.adapt(train_rows)
  model.compile()
  history = model.fit(train_rows, validation_data=held_out, patience=5,
                      lr_patience=2, epochs=40, verbose=0)
  assert len(set(history.history["lr"])) > 1  # the schedule to replay
  with pytest.raises(ValueError, match="refit needs the history of a fit "
                     "with validation rows"):
    model.refit(x, history={"loss": [1.0]})
  tf_keras.utils.set_random_seed(6)
  everything = np.concatenate([train_rows, held_out])
  full = model.refit(everything)
  assert full is not model and model.history is history
  best = int(np.argmin(history.history["val_loss"])) + 1
  assert len(full.history.history["loss"]) == best
  assert best == summary.best_epoch
  np.testing.assert_allclose(
      full.marginal_log_likelihood(x[:20], 100, seed=0),
      summary.model.marginal_log_likelihood(x[:20], 100, seed=0), rtol=1e-6)
  gappy = x[:20].copy()
  gappy[np.arange(20), np.arange(20) % 4] = np.nan
  np.testing.assert_allclose(full.impute(gappy, seed=0),
                             summary.model.impute(gappy, seed=0), rtol=1e-6)


def test_unset_settings_are_chosen_from_the_data_as_tfvae_train_chooses():
  model = tfvae.VAE(input_dim=6, seed=0)
  # The latent width needs only D; the rest waits for the rows.
  assert model.latent_dim == 6
  assert set(model.unresolved_settings) == {
      "hidden_units", "num_train_samples", "df_transform", "num_atoms"}
  with pytest.raises(ValueError, match="call adapt"):
    model.posterior_parameters(np.zeros((1, 6)))
  assert tfvae.VAE.from_config(model.get_config()).unresolved_settings
  # A large table gets the large recipe; atom slots as the data need.
  rng = np.random.default_rng(0)
  x = rng.normal(size=(training.LARGE_FROM_ROWS, 6))
  x[:, 2] = rng.integers(0, 3, size=len(x))
  model.adapt(x)
  recipe = training.default_recipe(len(x), 6)
  assert (model.hidden_units, model.num_train_samples, model.df_transform) == (
      recipe["hidden_units"], recipe["num_train_samples"], "exp")
  assert model.num_atoms == 3 and model.missing_train_samples == 50
  assert model.standardization.atoms.shape == (6, 3)
  # Values passed are kept; the snippet is there by name.
  snippet = tfvae.VAE(input_dim=6, hidden_units="snippet",
                      num_train_samples=3, num_atoms=0, df_transform="exp")
  assert (snippet.hidden_units, snippet.latent_dim) == ((6,), 5)
  assert not snippet.unresolved_settings and snippet.num_train_samples == 3
  # Rows with gaps get at least 20 draws, within the epoch's budget too.
  small = tfvae.VAE(input_dim=256, seed=0).resolve(500)
  huge = tfvae.VAE(input_dim=256, seed=0).resolve(2_000_000)
  assert (small.num_train_samples, small.missing_train_samples) == (10, 20)
  assert (huge.num_train_samples, huge.missing_train_samples) == (5, 5)
  # Free bits need the single-sample ELBO, which "auto" then gives.
  assert tfvae.VAE(input_dim=6, free_bits=0.5).num_train_samples == 1
  with pytest.raises(ValueError, match="hidden_units"):
    tfvae.VAE(input_dim=6, hidden_units="wide")


def test_fit_without_adapt_chooses_for_its_training_rows():
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  x = helpers.small_data(n=100)
  model = tfvae.VAE(input_dim=4, seed=0)
  model.compile()
  model.fit(x, validation_split=0.2, epochs=1, verbose=0)
  assert model.hidden_units == (128, 128) and model.num_train_samples == 10
  assert model.num_atoms == 0  # no atoms without adapt
  dataset = tf.data.Dataset.from_tensor_slices(x).batch(10)
  with pytest.raises(ValueError, match="call adapt"):
    tfvae.VAE(input_dim=4).fit(dataset, epochs=1, verbose=0)


def test_a_config_saved_before_auto_loads_as_it_was_built():
  config = helpers.vae(input_dim=4).get_config()
  for name in ("latent_dim", "hidden_units", "num_train_samples", "num_atoms",
               "df_transform"):
    config.pop(name)
  old = tfvae.VAE.from_config(config)
  assert (old.hidden_units, old.latent_dim, old.num_train_samples,
          old.num_atoms, old.df_transform) == ((4,), 5, 1, 8, "softplus")


def test_the_recipe_follows_the_tables_shape():
  small, large = (training.default_recipe(500, 4),
                  training.default_recipe(training.LARGE_FROM_ROWS, 24))
  # The latent: as wide as the data up to 8 columns, then 8, then half
  # the columns; at least 2.
  assert small["latent_dim"] == 4 and large["latent_dim"] == 12
  assert [training.default_recipe(500, d)["latent_dim"]
          for d in (1, 2, 8, 9, 13, 16, 17, 18, 64)] == [
              2, 2, 8, 8, 8, 8, 8, 9, 32]
  # `--search` never tries the defaults twice: each other candidate
  # changes at least one setting of the recipe.
  for columns in (2, 4, 13, 24):
    recipe = training.default_recipe(500, columns)
    for name, overrides in training.search_candidates(500, columns)[1:]:
      assert any(recipe.get(key) != value
                 for key, value in overrides.items()), (columns, name)
  # Large tables get wider layers, a tighter bound and df on the log scale.
  assert min(large["hidden_units"]) > max(small["hidden_units"])
  assert large["num_train_samples"] > small["num_train_samples"] > 1
  assert (small["df_transform"], large["df_transform"]) == ("softplus", "exp")
  # Batches grow with the table so that an epoch stays a few hundred steps,
  # within 32 to 1024 rows.
  for rows in (300, 5000, 100000, 10**6, 10**8):
    batch = training.default_recipe(rows, 8)["batch_size"]
    assert 32 <= batch <= 1024 and batch & (batch - 1) == 0
    assert batch in (32, 1024) or 128 <= rows / batch <= 512
  # K is lowered only where an epoch would outgrow the budget: 2 million
  # rows of 256 columns train with K = 5 (the largest choice whose work,
  # at the measured rate, fits), tables of the benchmarks keep 10 and 50.
  from tfvae.training import recipe  # pylint: disable=g-import-not-at-top
  assert recipe.multiply_adds_per_row(3, (4,), 2, 2) == (6 * 4 + 4 * 4) + 2 * (
      2 * 4 + 4 * 6)
  huge = training.default_recipe(2_000_000, 256)
  assert huge["num_train_samples"] == 5

  def epoch_seconds(rows, k):
    return rows * recipe.multiply_adds_per_row(
        256, huge["hidden_units"], huge["latent_dim"],
        k) / recipe.MULTIPLY_ADDS_PER_SECOND

  assert epoch_seconds(2_000_000, 5) <= recipe.EPOCH_BUDGET_SECONDS
  assert epoch_seconds(2_000_000, 10) > recipe.EPOCH_BUDGET_SECONDS
  assert recipe.epoch_seconds(2_000_000, 256, huge["hidden_units"],
                              huge["latent_dim"], 5) == epoch_seconds(
                                  2_000_000, 5)
  # A budget of the user's (`--epoch-budget`, minutes) moves K with it: an
  # hour fits K = 50 (the recipe's), 13 minutes K = 20, the default 4 K = 5.
  assert 20 * 60 < epoch_seconds(2_000_000, 50) <= 60 * 60
  for minutes, k in ((60, 50), (13, 20), (4, 5), (1e-6, 1)):
    config = training.TrainConfig(epoch_budget=minutes).resolve(2_000_000,
                                                                256)
    assert config.num_train_samples == k
    assert config.lowered_train_samples(2_000_000) == (None if k == 50
                                                       else 50)
  # Batches with gaps: as the model's rule chooses, within the same budget.
  assert training.TrainConfig(epoch_budget=1e-6).resolve(
      2_000_000, 256).missing_train_samples == 1
  assert training.TrainConfig().resolve(2_000_000,
                                        256).missing_train_samples is None
  with pytest.raises(ValueError, match="epoch_budget must be a positive"):
    training.TrainConfig(epoch_budget=0.0).resolve(100, 3)
  assert [training.default_recipe(rows, d)["num_train_samples"] for rows, d in
          ((500, 13), (16000, 4), (284_807, 30), (10**9, 256))] == [
              10, 50, 50, 1]
  ks = [training.default_recipe(rows, 256)["num_train_samples"]
        for rows in (10**4, 10**5, 10**6, 10**7)]
  assert ks == sorted(ks, reverse=True) and ks[0] == 50
  # --search offers the other width, never the defaults' own a second time.
  for rows, other in ((500, (256, 256)), (training.LARGE_FROM_ROWS, (128, 128))):
    widths = [c["hidden_units"] for _, c in training.search_candidates(rows, 4)
              if "hidden_units" in c]
    assert other in widths
    assert training.default_recipe(rows, 4)["hidden_units"] not in widths


# -- What a checkpoint folder keeps ------------------------------------------


def _tiny_run(tmp_path, **options):
  options = {"epochs": 2, "hidden_units": (8,), "num_samples": 5,
             "num_train_samples": 1, "verbose": 0, "logdir": None, **options}
  return training.train(training.TrainConfig(**options))


def test_a_refit_model_keeps_no_reference_of_rows_it_trained_on(tmp_path):
  summary = _tiny_run(tmp_path, refit=True)
  assert summary.model.score_reference is None
  assert summary.score_threshold is None
  assert "kept for percentiles" not in summary.format()


def test_overwrite_replaces_only_what_tfvae_wrote(tmp_path):
  ck = tmp_path / "ck"
  rows = data_lib.load_default().values
  first = _tiny_run(tmp_path, checkpoint_dir=str(ck),
                    export_dir=str(ck / "exp"), logdir=str(ck / "runs"),
                    monitor=False)  # Keras' own logs are enough here
  # Logs and the export inside the checkpoint folder survive the run.
  assert os.listdir(ck / "runs") and os.listdir(ck / "exp" / "encoder")
  (ck / "notes.txt").write_text("keep me")
  np.savetxt(ck / "data.csv", rows, delimiter=",")
  data_text = (ck / "data.csv").read_text()
  old_model = first.model.posterior_parameters(rows[:3])["loc"].numpy()
  second = _tiny_run(tmp_path, data=str(ck / "data.csv"),
                     checkpoint_dir=str(ck), overwrite=True, seed=7,
                     logdir=str(ck / "runs"), monitor=False)
  assert (ck / "notes.txt").read_text() == "keep me"
  assert (ck / "data.csv").read_text() == data_text
  assert os.path.isfile(ck / "exp" / "encoder" / "1" / "saved_model.pb")
  assert not (ck / checkpoint.BACKUP_DIR).exists()
  assert not [n for n in os.listdir(ck) if n.startswith(".tmp-tfvae-")]
  marker = checkpoint.read_metadata(ck)
  assert marker["complete"] and marker["training"]["seed"] == 7
  restored = checkpoint.load_checkpoint(ck)
  new = restored.posterior_parameters(rows[:3])["loc"].numpy()
  np.testing.assert_array_equal(
      new, second.model.posterior_parameters(rows[:3])["loc"].numpy())
  assert not np.array_equal(new, old_model)


def test_a_checkpoint_folder_behind_a_symlink_is_written_where_it_is(tmp_path):
  real = tmp_path / "real"
  link = tmp_path / "link"
  _tiny_run(tmp_path, checkpoint_dir=str(real))
  link.symlink_to(real, target_is_directory=True)
  summary = _tiny_run(tmp_path, checkpoint_dir=str(link), overwrite=True,
                      seed=3)
  assert link.is_symlink() and summary.checkpoint_dir == str(real)
  marker = checkpoint.read_metadata(real)
  assert marker["complete"] and marker["training"]["seed"] == 3
  assert not (real / checkpoint.BACKUP_DIR).exists()
  assert sorted(os.listdir(real)) == [checkpoint.MODEL_FILE,
                                      checkpoint.MARKER_FILE]


def test_the_summary_splits_a_mixed_tables_likelihood_by_column_type():
  rng = np.random.default_rng(0)
  z = rng.normal(size=300)
  x = np.stack([z + 0.3 * rng.normal(size=300), (z > 0).astype(float),
                rng.normal(size=300)], 1)
  table = data_lib.Table(x, ("a", "flag", "b"), "mixed",
                         categories=(None, ("no", "yes"), None))
  summary = training.train(training.TrainConfig(
      epochs=2, hidden_units=(8,), num_samples=20, verbose=0, logdir=None),
      table)
  # log p(x) = log p(x_real) + log p(x_text | x_real): the first factor is
  # the model's likelihood of the validation rows with the text blanked.
  _, validation_rows = data_lib.split(x, 0.2, seed=0)
  blanked = validation_rows.copy()
  blanked[:, 1] = np.nan
  real = np.mean(summary.model.marginal_log_likelihood(blanked, 20, seed=0))
  assert summary.validation_log_likelihood_real == pytest.approx(real,
                                                                 rel=1e-9)
  text_part = summary.validation_log_likelihood - real
  assert text_part < 0  # the log of the levels' probabilities
  assert f"= real columns {real:.4f}" in summary.format()
  assert f"text columns given them {text_part:.4f}" in summary.format()
  # The imputation of `flag` is calibrated on the validation rows with the
  # frequencies of every row (`VAE.calibrate_levels`).
  kept = summary.model.level_calibration
  assert summary.level_weights == {"flag": kept["weights"][0]}
  assert (f"imputed levels calibrated on them (weight of the model against "
          f"the column's frequencies; 0: its mode): flag "
          f"{kept['weights'][0]:.2f}") in summary.format()
  assert kept["frequencies"] == [pytest.approx(
      [np.mean(x[:, 1] == 0), np.mean(x[:, 1] == 1)])]
  summary.model.calibrate_levels(validation_rows, frequency_rows=x, seed=0)
  assert summary.model.level_calibration["weights"] == pytest.approx(
      kept["weights"])


def test_numeric_columns_are_typed_on_mixed_tables_and_when_asked():
  from tfvae.training import inputs  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(0)
  values = np.stack([np.exp(rng.normal(size=300)),
                     rng.poisson(3.0, 300).astype(float),
                     rng.integers(0, 2, 300).astype(float)], 1)
  names = ["income", "visits", "flag"]
  numeric = [None, None, None]
  mixed = [None, None, ("no", "yes")]

  def types(numeric_types, categories, overrides=None):
    return inputs.column_types_for(
        training.TrainConfig(numeric_types=numeric_types), values, categories,
        names, "t.csv", data_lib.ReadOptions(column_types=overrides or {}))

  # An all-numeric table is read as before: every column real (None).
  assert types(None, numeric) is None
  assert types(None, mixed) == ("positive", "count", "binary")
  assert types("real", mixed) is None
  assert types("auto", numeric) == ("positive", "count", "real")
  # --column-types wins, also on an all-numeric table.
  assert types(None, numeric, {"visits": "count"}) == ("real", "count",
                                                        "real")
  bad = values.copy()
  bad[7, 1] = 1.5
  with pytest.raises(ValueError, match=r"t.csv row 8, column 2 \('visits'\)"):
    inputs.column_types_for(training.TrainConfig(), bad, numeric, names,
                            "t.csv", data_lib.ReadOptions(
                                column_types={"visits": "count"}))


def test_run_steps_runs_each_step_in_order_and_traces_it_once():
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from tfvae.training import steps  # pylint: disable=g-import-not-at-top
  done = tf.Variable(0, dtype=tf.int64)
  num_steps = tf.Variable(5, dtype=tf.int64)
  traced = []

  def step():
    traced.append(1)
    done.assign_add(1)
    return {"done": tf.cast(done, tf.float32), "twice": tf.cast(2 * done,
                                                                tf.float32)}

  run = tf.function(lambda: steps.run_steps(step, num_steps,
                                            steps.zero_logs(["done", "twice"])))
  assert {k: float(v) for k, v in run().items()} == {"done": 5.0, "twice": 10.0}
  # The count is read when the loop runs, as Keras lowers it for an
  # epoch's last steps; no retrace.
  num_steps.assign(2)
  assert float(run()["done"]) == 7.0
  assert len(traced) == 1


@pytest.mark.slow
def test_trim_leaves_out_the_least_likely_rows_and_fits_the_rest_better():
  # Normal rows near a plane in 4 dimensions and 8% anomalies spread over a
  # wide box. Trimmed, the run's model is fitted to the normal rows only:
  # fresh normal rows are more likely under it than under the model fitted
  # to everything (which spends mass on the box), and the anomalies less.
  rng = np.random.default_rng(0)
  plane = rng.normal(size=(2, 4))

  def normal_rows(n):
    return (rng.normal(size=(n, 2)) @ plane + 0.3 * rng.normal(size=(n, 4)) +
            5.0)

  anomalies = rng.uniform(-4.0, 14.0, size=(80, 4))
  table = np.concatenate([normal_rows(920), anomalies])[rng.permutation(1000)]
  settings = dict(epochs=30, batch_size=64, patience=0, lr_patience=0,
                  hidden_units=(32, 32), latent_dim=2, num_samples=50,
                  verbose=0, logdir=None)
  plain = training.train(training.TrainConfig(**settings),
                         data_lib.Table(table, None, "table"))
  trimmed = training.train(training.TrainConfig(trim=0.1, **settings),
                           data_lib.Table(table, None, "table"))
  assert plain.trimmed is None
  left_out = trimmed.trimmed
  assert left_out["fraction"] == 0.1
  # Above the 0.9 quantile of n distinct scores (interpolated between the
  # sorted scores at (n - 1) 0.9): n - 1 - floor(0.9 (n - 1)) rows.
  n = plain.num_train
  assert left_out["train"] == n - 1 - math.floor(0.9 * (n - 1)) == 80
  assert trimmed.num_train == n - 80
  assert trimmed.num_validation == plain.num_validation - left_out["validation"]
  assert 10 <= left_out["validation"] <= 30  # ~16 anomalies among 200
  assert (f"trimmed: 80 training and {left_out['validation']} validation rows "
          "left out, scoring above") in trimmed.format()
  held_out = normal_rows(300)
  gain = (trimmed.model.marginal_log_likelihood(held_out, 200, seed=0).mean() -
          plain.model.marginal_log_likelihood(held_out, 200, seed=0).mean())
  assert gain > 0.05, gain  # 0.28 nats per row measured
  # The anomalies score above the trimmed model's threshold.
  scores = trimmed.model.anomaly_score(anomalies, seed=0)
  assert np.mean(scores > left_out["threshold"]) > 0.9
  with pytest.raises(ValueError, match=r"trim must be a share in \[0, 0.5\)"):
    training.train(training.TrainConfig(trim=0.5, **settings),
                   data_lib.Table(table, None, "table"))


def _small_trimmed_config(tmp_path, **overrides):
  return training.TrainConfig(**{
      "trim": 0.1, "epochs": 2, "hidden_units": (8,), "latent_dim": 1,
      "num_samples": 10, "patience": 0, "lr_patience": 0, "verbose": 0,
      "logdir": None, "checkpoint_dir": str(tmp_path / "ck"), **overrides})


def test_a_trimmed_run_resumes_on_the_rows_its_start_kept(tmp_path,
                                                          monkeypatch):
  from tfvae.training import loop  # pylint: disable=g-import-not-at-top
  x = np.random.default_rng(1).normal(size=(300, 3))
  table = data_lib.Table(x, None, "table")
  config = _small_trimmed_config(tmp_path, export_dir=str(tmp_path / "sm"))
  n, n_validation = (len(rows) for rows in data_lib.split(x, 0.2, seed=0))

  def crash(*unused_args, **unused_kwargs):
    raise RuntimeError("the machine went down")

  # The run dies after its last epoch, writing its outputs: the export is
  # written, the checkpoint is not, and the run is still unfinished.
  with monkeypatch.context() as patched:
    patched.setattr(checkpoint, "save_checkpoint", crash)
    with pytest.raises(RuntimeError, match="went down"):
      training.train(config, table)
  assert sorted(os.listdir(tmp_path / "sm" / "scorer")) == ["1"]
  assert checkpoint.is_unfinished(tmp_path / "ck")
  keep_train, keep_validation, threshold = checkpoint.read_trim(
      tmp_path / "ck")
  assert (len(keep_train), len(keep_validation)) == (n, n_validation)
  left_out = n - 1 - math.floor(0.9 * (n - 1))
  assert np.sum(~keep_train) == left_out
  # Resumed with another share, the run is refused before any work.
  with pytest.raises(ValueError, match="unfinished run with other settings"):
    training.train(_small_trimmed_config(tmp_path, trim=0.2), table)
  # Resumed as it was, it fits no first model again and keeps its rows.
  fitted = []
  fit = loop._fit  # pylint: disable=protected-access
  monkeypatch.setattr(loop, "_fit", lambda job, model, on_resume: (
      fitted.append(job.config.checkpoint_dir), fit(job, model, on_resume))[1])
  resumed = training.train(config, table)
  assert fitted == [config.checkpoint_dir]
  assert resumed.epochs_run == 2
  assert resumed.num_train == int(np.sum(keep_train)) == n - left_out
  assert resumed.num_validation == int(np.sum(keep_validation))
  assert resumed.trimmed == {"fraction": 0.1, "threshold": threshold,
                             "train": left_out,
                             "validation": int(np.sum(~keep_validation))}
  # Resumed to no epoch left, it wrote both outputs (the export again, as
  # the next version); a finished run keeps no backup, and so no rows.
  assert sorted(os.listdir(tmp_path / "sm" / "scorer")) == ["1", "2"]
  assert not checkpoint.is_unfinished(tmp_path / "ck")
  assert checkpoint.read_trim(tmp_path / "ck") is None
  assert checkpoint.read_metadata(tmp_path / "ck")["training"]["trim"] == 0.1


def test_search_trims_once_and_compares_its_candidates_on_the_same_rows(
    tmp_path, monkeypatch):
  from tfvae.training import loop  # pylint: disable=g-import-not-at-top
  monkeypatch.setattr(training.recipe, "search_candidates", lambda n, d: [
      ("defaults", {}), ("linear", {"hidden_units": ()})])
  rows = []
  train = loop.train
  monkeypatch.setattr(loop, "train", lambda config, data: (
      rows.append((config.trim, data.num_train, data.num_validation)),
      train(config, data))[1])
  summary = training.run(_small_trimmed_config(tmp_path, search=True,
                                               time_budget=5))
  n, n_validation = (len(part) for part in data_lib.split(
      data_lib.load_default().values, 0.2, seed=0))
  left_out = n - 1 - math.floor(0.9 * (n - 1))
  assert summary.trimmed["train"] == left_out
  kept = (0.0, n - left_out, n_validation - summary.trimmed["validation"])
  assert rows == [kept, kept]
  assert f"trimmed: {left_out} training and" in summary.format()
  assert checkpoint.read_metadata(tmp_path / "ck")["training"]["trim"] == 0.1


def test_the_summary_says_when_the_epoch_budget_lowered_k():
  summary = training.train(training.TrainConfig(
      epoch_budget=1e-7, epochs=1, hidden_units=(8,), num_samples=10,
      verbose=0, logdir=None))
  # The default data's 118 training rows: K = 10 wanted, and no choice's
  # epoch fits 6 microseconds.
  assert summary.num_train_samples == 1
  assert summary.model.missing_train_samples == 1
  assert ("K = 1 (num_train_samples) keeps an epoch within 1e-07 minutes on "
          "2 cores; the recipe's K = 10 fits a denser model") in (
              summary.format())
  given = training.train(training.TrainConfig(
      epoch_budget=1e-7, num_train_samples=2, epochs=1, hidden_units=(8,),
      num_samples=10, verbose=0, logdir=None))
  assert given.num_train_samples == 2 and "keeps an epoch" not in (
      given.format())
