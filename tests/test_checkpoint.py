"""Checkpoints: exact round trip, optimizer state, overwrite rules."""

import json
import os

import numpy as np
import pytest

import tfvae
from tfvae import checkpoint
from tests import helpers
from tests.helpers import fitted_model
from tests.helpers import small_data


def test_round_trip_keeps_weights_standardisation_and_optimizer(tmp_path):
  x = small_data() * [1, 10, 100, 1000]
  model = fitted_model(x, epochs=2, likelihood="laplace",
                       feature_names=["a", "b", "c", "d"])
  path = checkpoint.save_checkpoint(model, tmp_path / "ckpt",
                                    metadata={"note": "hello"})
  restored = tfvae.load_checkpoint(path)
  assert restored.get_config() == model.get_config()
  np.testing.assert_array_equal(restored.standardization.scale.numpy(),
                                model.standardization.scale.numpy())
  np.testing.assert_array_equal(restored.marginal_log_likelihood(x, 10, seed=1),
                                model.marginal_log_likelihood(x, 10, seed=1))
  assert int(restored.optimizer.iterations) == int(model.optimizer.iterations)
  marker = checkpoint.read_metadata(path)
  assert marker["format"] == checkpoint.FORMAT and marker["note"] == "hello"
  assert checkpoint.is_checkpoint(path)


def test_overwrite_replaces_only_tfvae_checkpoints(tmp_path):
  model = helpers.vae(input_dim=2)
  checkpoint.save_checkpoint(model, tmp_path / "ckpt")
  with pytest.raises(FileExistsError, match="refusing to overwrite"):
    checkpoint.save_checkpoint(model, tmp_path / "ckpt")
  checkpoint.save_checkpoint(model, tmp_path / "ckpt", overwrite=True)
  assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt"]
  # A folder of the user's: refused, untouched, with overwrite or without.
  mine = tmp_path / "mine"
  mine.mkdir()
  (mine / "data.csv").write_text("1,2\n")
  (mine / "sub").mkdir()
  for overwrite in (False, True):
    with pytest.raises(FileExistsError):
      checkpoint.check_checkpoint_dir(mine, overwrite=overwrite)
    with pytest.raises(FileExistsError):
      checkpoint.save_checkpoint(model, mine, overwrite=overwrite)
  assert (mine / "data.csv").read_text() == "1,2\n" and (mine / "sub").is_dir()
  # A marker that claims another format is not ours either.
  (mine / checkpoint.MARKER_FILE).write_text(json.dumps({"format": "other"}))
  assert not checkpoint.is_checkpoint(mine)
  # An empty folder may be used.
  (tmp_path / "empty").mkdir()
  checkpoint.save_checkpoint(model, tmp_path / "empty")
  assert checkpoint.is_checkpoint(tmp_path / "empty")


def test_checkpoint_dir_checks(tmp_path):
  (tmp_path / "file").write_text("x")
  with pytest.raises(ValueError, match="is a file"):
    checkpoint.check_checkpoint_dir(tmp_path / "file")
  with pytest.raises(OSError, match="is a file, not a folder"):
    checkpoint.check_checkpoint_dir(tmp_path / "file" / "ckpt")


def test_load_errors(tmp_path):
  with pytest.raises(ValueError, match="model.keras is missing"):
    checkpoint.load_checkpoint(tmp_path)
  (tmp_path / checkpoint.MODEL_FILE).write_text("not a zip")
  with pytest.raises(ValueError, match="cannot load the model"):
    checkpoint.load_checkpoint(tmp_path)


def test_save_with_overwrite_keeps_everything_that_is_not_tfvaes(tmp_path):
  model = helpers.vae(input_dim=2)
  ck = tmp_path / "ck"
  checkpoint.save_checkpoint(model, ck)
  (ck / "notes.txt").write_text("keep")
  (ck / "exp").mkdir()
  (ck / checkpoint.BACKUP_DIR).mkdir()  # a finished run's stale backup
  checkpoint.save_checkpoint(model, ck, overwrite=True, metadata={"n": 2})
  assert sorted(os.listdir(ck)) == sorted(
      ["notes.txt", "exp", checkpoint.MODEL_FILE, checkpoint.MARKER_FILE])
  assert checkpoint.read_metadata(ck)["n"] == 2
  assert checkpoint.read_metadata(ck)["model"]["input_dim"] == 2


def test_why_a_folder_is_not_a_checkpoint(tmp_path):
  assert checkpoint.why_not_a_checkpoint(tmp_path / "none").endswith(
      "no such folder")
  assert "has no tfvae_checkpoint.json" in checkpoint.why_not_a_checkpoint(
      tmp_path)
  (tmp_path / checkpoint.MARKER_FILE).write_text('{"format": "tfv')
  assert "is not valid JSON (truncated or corrupted" in (
      checkpoint.why_not_a_checkpoint(tmp_path))
  (tmp_path / checkpoint.MARKER_FILE).write_text('{"format": "other"}')
  assert "names the format 'other'" in checkpoint.why_not_a_checkpoint(
      tmp_path)
  (tmp_path / checkpoint.MARKER_FILE).write_text(
      json.dumps({"format": checkpoint.FORMAT}))
  assert checkpoint.why_not_a_checkpoint(tmp_path).endswith(
      "its model.keras is missing")


def test_a_trimmed_runs_rows_are_kept_with_its_backup(tmp_path):
  assert checkpoint.read_trim(tmp_path) is None
  keep_train = np.array([True, False, True, True])
  keep_validation = np.array([False, True])
  checkpoint.write_trim(tmp_path, keep_train, keep_validation, 3.25)
  assert os.listdir(tmp_path) == [checkpoint.BACKUP_DIR]
  train, held_out, threshold = checkpoint.read_trim(tmp_path)
  np.testing.assert_array_equal(train, keep_train)
  np.testing.assert_array_equal(held_out, keep_validation)
  assert threshold == 3.25 and train.dtype == bool
  assert not checkpoint.has_backup(tmp_path)  # rows alone are no backup
