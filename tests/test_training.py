"""`training.run` / `training.train`: one run end to end, in process."""

import math

import numpy as np
import pytest

from tfvae import checkpoint
from tfvae import data as data_lib
from tfvae import training


def test_train_on_the_default_data(tmp_path):
  summary = training.train(training.TrainConfig(
      epochs=15, hidden_units=(16,), num_samples=50, verbose=0,
      logdir=str(tmp_path / "runs"), checkpoint_dir=str(tmp_path / "ckpt")))
  x = data_lib.load_default().values
  train_rows, validation_rows = data_lib.split(x, 0.2, seed=0)
  assert summary.num_train == len(train_rows)
  assert summary.num_validation == len(validation_rows)
  assert summary.input_dim == 13 and summary.epochs_run == 15
  for metrics in (summary.train, summary.validation):
    assert set(metrics) == {"loss", "reconstruction_nll", "kl"}
    assert metrics["loss"] == pytest.approx(
        metrics["reconstruction_nll"] + metrics["kl"], rel=1e-5)
  assert summary.train["loss"] < summary.first_loss
  # The summary's log-likelihood is the model's, on the validation rows.
  assert summary.validation_log_likelihood == pytest.approx(
      np.mean(summary.model.marginal_log_likelihood(validation_rows, 50,
                                                    seed=0)), rel=1e-9)
  text = summary.format()
  assert "nats per example" in text and str(tmp_path / "runs") in text
  restored = checkpoint.load_checkpoint(summary.checkpoint_dir)
  np.testing.assert_array_equal(
      restored.posterior_parameters(x[:2])["loc"],
      summary.model.posterior_parameters(x[:2])["loc"])
  marker = checkpoint.read_metadata(summary.checkpoint_dir)
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


def test_the_closing_evaluation_is_capped(tmp_path, monkeypatch):
  monkeypatch.setattr(training, "MAX_LOG_LIKELIHOOD_ROWS", 10)
  summary = training.train(training.TrainConfig(
      epochs=1, num_samples=5, verbose=0, logdir=None))
  assert summary.log_likelihood_rows == 10
  assert "10 random validation rows" in summary.format()
  assert math.isfinite(summary.validation_log_likelihood)
