"""`training.train`: one run end to end, in process."""

import math

import numpy as np
import pytest

from tfvae import checkpoint
from tfvae import training


def test_train_on_the_default_data(tmp_path):
  summary = training.train(training.TrainConfig(
      epochs=15, hidden_units=(16,), num_samples=50, verbose=0,
      logdir=str(tmp_path / "runs"), checkpoint_dir=str(tmp_path / "ckpt")))
  assert summary.num_train == 142 and summary.num_validation == 36
  assert summary.input_dim == 13 and summary.epochs_run == 15
  for metrics in (summary.train, summary.validation):
    assert set(metrics) == {"loss", "reconstruction_nll", "kl"}
    assert all(math.isfinite(v) for v in metrics.values())
  assert summary.train["loss"] < summary.first_loss
  assert math.isfinite(summary.validation_log_likelihood)
  text = summary.format()
  assert "nats per example" in text and str(tmp_path / "runs") in text
  restored = checkpoint.load_checkpoint(summary.checkpoint_dir)
  x = np.ones((2, 13), np.float32) * 5
  np.testing.assert_array_equal(restored.encode(x).mean(),
                                summary.model.encode(x).mean())


def test_train_without_validation(tmp_path):
  summary = training.train(training.TrainConfig(
      epochs=2, validation_split=0.0, verbose=0, logdir=str(tmp_path / "r")))
  assert summary.num_validation == 0 and summary.validation == {}
  assert "marginal" not in summary.format()


def test_train_rejects_tiny_data(tmp_path):
  path = tmp_path / "one.csv"
  path.write_text("1,2\n")
  with pytest.raises(ValueError, match="too few rows"):
    training.train(training.TrainConfig(data=str(path), logdir=str(tmp_path / "r")))
