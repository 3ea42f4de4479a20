"""Checkpoints: exact round trip, no silent overwrite, clear errors."""

import json

import numpy as np
import pytest

import tfvae
from tfvae import checkpoint


def test_round_trip_keeps_weights_and_standardisation(tmp_path):
  x = np.random.default_rng(0).normal(100, 30, size=(64, 3)).astype(np.float32)
  model = tfvae.VAE(input_dim=3, likelihood="laplace", feature_names=["a", "b", "c"])
  model.adapt(x)
  path = checkpoint.save_checkpoint(model, tmp_path / "ckpt")
  restored = checkpoint.load_checkpoint(path)
  assert restored.get_config() == model.get_config()
  np.testing.assert_array_equal(restored.standardization.scale.numpy(),
                                model.standardization.scale.numpy())
  np.testing.assert_array_equal(restored.marginal_log_likelihood(x, 10, seed=1),
                                model.marginal_log_likelihood(x, 10, seed=1))


def test_no_silent_overwrite(tmp_path):
  model = tfvae.VAE(input_dim=2)
  checkpoint.save_checkpoint(model, tmp_path / "ckpt")
  with pytest.raises(FileExistsError, match="refusing to overwrite"):
    checkpoint.save_checkpoint(model, tmp_path / "ckpt")
  checkpoint.save_checkpoint(model, tmp_path / "ckpt", overwrite=True)
  assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt"]


def test_load_errors(tmp_path):
  with pytest.raises(ValueError, match="config.json is missing"):
    checkpoint.load_checkpoint(tmp_path)
  (tmp_path / "config.json").write_text("{not json")
  (tmp_path / "weights.h5").write_text("")
  with pytest.raises(ValueError, match="not valid JSON"):
    checkpoint.load_checkpoint(tmp_path)
  (tmp_path / "config.json").write_text(json.dumps({"input_dim": 2}))
  with pytest.raises((ValueError, OSError)):
    checkpoint.load_checkpoint(tmp_path)
