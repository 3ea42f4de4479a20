"""Streaming files through tf.data: every training row once per epoch."""

import numpy as np
import pytest
import tensorflow as tf

import tfvae
from tfvae import data as data_lib
from tfvae import input_pipeline
from tfvae import training


def numbered_csv(path, rows, bad_row=None):
  """A CSV whose first column is the row's index, so passes can be counted."""
  rng = np.random.default_rng(0)
  with open(path, "w") as f:
    f.write("id,a,b\n")
    for i in range(rows):
      b = "oops" if i == bad_row else f"{rng.normal():.6f}"
      f.write(f"{i},{rng.normal():.6f},{b}\n")


def test_each_epoch_sees_every_training_row_once_and_no_validation_row(tmp_path):
  path = tmp_path / "rows.csv"
  numbered_csv(path, 2500)
  validation = set(np.flatnonzero(data_lib.validation_rows(
      np.arange(2500), 0.2, seed=3)))
  dataset = input_pipeline.dataset(str(path), 64, validation_fraction=0.2,
                                   seed=3, block_rows=100)
  orders = []
  for _ in range(2):
    ids = np.concatenate([batch[:, 0].numpy() for batch in dataset]).astype(int)
    assert sorted(ids) == sorted(set(range(2500)) - validation)
    orders.append(ids)
  assert not np.array_equal(orders[0], orders[1])  # reshuffled each epoch
  held_out = np.concatenate([b[:, 0].numpy() for b in input_pipeline.dataset(
      str(path), 64, split="validation", validation_fraction=0.2, seed=3)])
  assert sorted(held_out.astype(int)) == sorted(validation)
  # The same split as reading the file into memory.
  _, in_memory = data_lib.split(data_lib.load(path), 0.2, seed=3)
  np.testing.assert_array_equal(np.sort(in_memory[:, 0]), np.sort(held_out))


class Probe(tfvae.VAE):
  """Counts the rows each training step sees (column 0 holds row ids)."""

  def __init__(self, *args, **kwargs):
    super().__init__(*args, **kwargs)
    self.seen = tf.Variable(tf.zeros([3000]), trainable=False)

  def train_step(self, data):
    ids = tf.cast(data[:, 0], tf.int32)
    self.seen.scatter_nd_add(ids[:, None], tf.ones_like(ids, tf.float32))
    return super().train_step(data)


def test_streamed_training_sees_each_training_row_once_per_epoch(tmp_path):
  path = tmp_path / "rows.csv"
  numbered_csv(path, 3000)
  config = training.TrainConfig(data=str(path), stream="on", epochs=2,
                                batch_size=64, patience=0, logdir=None,
                                verbose=0, validation_split=0.2, seed=5)
  data = training.prepare_data(config)
  assert data.streamed and data.num_train + data.num_validation == 3000
  probe = Probe(input_dim=3, latent_dim=2, hidden_units=(8,), seed=0,
                num_train_samples=1, num_atoms=0, df_transform="softplus")
  probe.set_statistics(data.loc, data.scale)
  probe.compile()
  probe.fit(data.stream("train", 64, config).repeat(), epochs=2,
            steps_per_epoch=int(np.ceil(data.num_train / 64)), verbose=0)
  counts = probe.seen.numpy()
  validation = data_lib.validation_rows(np.arange(3000), 0.2, seed=5)
  np.testing.assert_array_equal(counts[~validation], 2.0)
  np.testing.assert_array_equal(counts[validation], 0.0)


def test_a_streamed_run_matches_the_in_memory_split(tmp_path):
  path = tmp_path / "rows.csv"
  numbered_csv(path, 1200)
  results = {}
  for stream in ("on", "off"):
    summary = training.train(training.TrainConfig(
        data=str(path), stream=stream, epochs=2, logdir=None, verbose=0,
        num_samples=10, hidden_units=(8,), latent_dim=2))
    results[stream] = summary
  assert results["on"].streamed and not results["off"].streamed
  assert results["on"].num_train == results["off"].num_train
  np.testing.assert_allclose(
      results["on"].model.standardization.loc.numpy(),
      results["off"].model.standardization.loc.numpy())


def test_a_bad_cell_deep_in_a_streamed_file_is_located(tmp_path):
  path = tmp_path / "rows.csv"
  numbered_csv(path, 50000, bad_row=49990)
  with pytest.raises(ValueError, match="row 49992, column 3 \\('b'\\): "
                     "'oops' is not a number"):
    input_pipeline.scan(str(path))


def test_scan_statistics_equal_the_in_memory_ones(tmp_path):
  x = np.random.default_rng(0).lognormal(size=(5000, 3))
  x[::7, 1] = np.nan
  np.save(tmp_path / "x.npy", x)
  scan = input_pipeline.scan(str(tmp_path / "x.npy"), 0.2, seed=1,
                             block_rows=777)
  train, validation = data_lib.split(x, 0.2, seed=1)
  assert scan.num_train == len(train) and scan.num_validation == len(validation)
  from tfvae import statistics  # pylint: disable=g-import-not-at-top
  loc, scale = statistics.compute_standardization(train)
  np.testing.assert_array_equal(scan.loc, loc)
  np.testing.assert_array_equal(scan.scale, scale)
  np.testing.assert_allclose(scan.missing_fraction, np.isnan(x).mean(0))
