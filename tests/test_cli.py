"""The command-line trainer: arguments, errors, and a full run."""

import os
import subprocess
import sys

import numpy as np
import pytest

from tfvae import cli
from tfvae import heads
from tests import tb_events


def test_likelihood_names_match_the_registry():
  assert sorted(cli.LIKELIHOOD_NAMES) == sorted(heads.LIKELIHOODS)


def test_hidden_units_parsing():
  parser = cli.build_train_parser()
  assert parser.parse_args(["--hidden-units", "64,32"]).hidden_units == (64, 32)
  assert parser.parse_args(["--hidden-units", "linear"]).hidden_units == ()
  assert parser.parse_args([]).hidden_units is None


@pytest.mark.parametrize("argv,message", [
    (["--hidden-units", "64,x"], "comma-separated integers"),
    (["--validation-split", "1.5"], "fraction"),
    (["--likelihood", "bernoulli"], "invalid choice"),
    (["--epochs", "0"], "positive"),
])
def test_bad_arguments_exit_2(argv, message, capsys):
  with pytest.raises(SystemExit) as exit_info:
    cli.train_main(argv)
  assert exit_info.value.code == 2
  assert message in capsys.readouterr().err


def test_bad_data_is_one_clear_line(tmp_path, capsys):
  path = tmp_path / "bad.csv"
  path.write_text("a,b\n1,2\n3,oops\n")
  assert cli.train_main(["--data", str(path), "--logdir", str(tmp_path / "r")]) == 2
  err = capsys.readouterr().err.strip()
  assert err.count("\n") == 0
  assert err == (f"tfvae-train: error: {path} row 3, column 2 ('b'): "
                 "'oops' is not a number")


def test_missing_data_file(tmp_path, capsys):
  assert cli.train_main(["--data", str(tmp_path / "none.csv")]) == 2
  assert "no such file" in capsys.readouterr().err


def test_existing_checkpoint_is_refused_before_training(tmp_path, capsys):
  (tmp_path / "ckpt").mkdir()
  assert cli.train_main(["--checkpoint-dir", str(tmp_path / "ckpt"),
                         "--logdir", str(tmp_path / "r")]) == 2
  assert "--overwrite" in capsys.readouterr().err


@pytest.mark.slow
def test_train_end_to_end_writes_logs_and_checkpoint(tmp_path):
  rng = np.random.default_rng(0)
  x = np.stack([rng.uniform(1e-3, 2e-3, 300), rng.uniform(0, 4000, 300),
                rng.normal(-9, 8, 300)], axis=1)
  data_path = tmp_path / "d.csv"
  np.savetxt(data_path, x, delimiter=",", header="small,large,signed",
             comments="")
  logdir = tmp_path / "runs"
  result = subprocess.run(
      [sys.executable, "-m", "tfvae", "--data", str(data_path),
       "--epochs", "12", "--hidden-units", "16", "--latent-dim", "2",
       "--logdir", str(logdir), "--checkpoint-dir", str(tmp_path / "ckpt"),
       "--num-samples", "50", "--verbose", "2"],
      capture_output=True, text=True, timeout=300,
      env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
  assert result.returncode == 0, result.stderr
  out = result.stdout
  assert "240 training / 60 validation examples, 3 features" in out
  assert "validation marginal log-likelihood (IWAE, K=50)" in out
  assert "Epoch 12/12" in out and "val_reconstruction_nll" in out
  summary = out[out.index("tfvae summary"):]
  metric_rows = [line.split() for line in summary.splitlines()
                 if "reconstruction_nll" in line and "loss" in line.split()]
  assert [row[0] for row in metric_rows] == ["train", "validation"]
  summary_numbers = [float(row[i]) for row in metric_rows for i in (2, 4, 6)]
  assert len(summary_numbers) == 6 and np.all(np.isfinite(summary_numbers))
  assert (tmp_path / "ckpt" / "config.json").is_file()
  train_tags = tb_events.read_tags(str(logdir / "train"))
  validation_tags = tb_events.read_tags(str(logdir / "validation"))
  for tag in ("epoch_loss", "epoch_reconstruction_nll", "epoch_kl"):
    assert len(train_tags[tag]) == 12 and len(validation_tags[tag]) == 12
  losses = [value for _, value in train_tags["epoch_loss"]]
  assert losses[-1] < losses[0]
  monitor_tags = tb_events.read_tags(str(logdir / "monitor"))
  assert "latent/active_units" in monitor_tags
  assert "elbo/importance_weighted" in monitor_tags


@pytest.mark.slow
def test_train_export_then_encode(tmp_path):
  env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
  bin_dir = os.path.dirname(sys.executable)
  def run(tool, *args):
    result = subprocess.run([os.path.join(bin_dir, tool), *args],
                            capture_output=True, text=True, timeout=300, env=env)
    return result
  trained = run("tfvae-train", "--epochs", "3", "--num-samples", "10",
                "--logdir", str(tmp_path / "runs"),
                "--checkpoint-dir", str(tmp_path / "ckpt"),
                "--export-dir", str(tmp_path / "models"))
  assert trained.returncode == 0, trained.stderr
  assert f"exported encoder: {tmp_path / 'models' / 'encoder' / '1'}" in trained.stdout
  exported = run("tfvae-export", "--checkpoint-dir", str(tmp_path / "ckpt"),
                 "--export-dir", str(tmp_path / "models"))
  assert exported.returncode == 0, exported.stderr
  assert str(tmp_path / "models" / "decoder" / "2") in exported.stdout
  from tfvae import data  # pylint: disable=g-import-not-at-top
  np.save(tmp_path / "wine.npy", data.load_default().values)
  encoded = run("tfvae-encode", "--model", str(tmp_path / "models" / "encoder"),
                "--data", str(tmp_path / "wine.npy"), "--output", str(tmp_path / "z.csv"))
  assert encoded.returncode == 0, encoded.stderr
  assert "encoded 178 rows" in encoded.stdout
  z = np.loadtxt(tmp_path / "z.csv", delimiter=",", skiprows=1)
  assert z.shape == (178, 10) and np.isfinite(z).all()
  again = run("tfvae-encode", "--model", str(tmp_path / "models" / "encoder"),
              "--data", str(tmp_path / "wine.npy"), "--output", str(tmp_path / "z.csv"))
  assert again.returncode == 2
  assert again.stderr.strip().endswith("already exists; pass --overwrite")


def test_score_with_a_checkpoint_flags_the_outlier(tmp_path, capsys):
  import tfvae  # pylint: disable=g-import-not-at-top
  from tfvae import checkpoint  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(0)
  x = rng.normal(size=(400, 3)).astype(np.float32) * [1, 10, 100] + [0, 5, 50]
  model = tfvae.VAE(input_dim=3, hidden_units=(16,), latent_dim=2)
  model.adapt(x)
  model.compile()
  model.fit(x, epochs=20, batch_size=64, verbose=0)
  checkpoint.save_checkpoint(model, tmp_path / "ckpt")
  test = x[:50].copy()
  test[17] = [8, 5, 50]  # 8 standard deviations out in column 0
  np.save(tmp_path / "test.npy", test)
  assert cli.score_main(["--data", str(tmp_path / "test.npy"), "--checkpoint",
                         str(tmp_path / "ckpt"), "--output", str(tmp_path / "s.csv"),
                         "--num-samples", "100", "--batch-size", "16"]) == 0
  assert "scored 50 rows" in capsys.readouterr().out
  table = np.loadtxt(tmp_path / "s.csv", delimiter=",", skiprows=1)
  np.testing.assert_array_equal(table[:, 0], np.arange(50))
  assert int(np.argmax(table[:, 1])) == 17
  # The same numbers as the Python API, batch seeds included.
  np.testing.assert_allclose(table[:16, 1], model.score(test[:16], 100, seed=0))
  assert cli.score_main(["--data", str(tmp_path / "test.npy"), "--checkpoint",
                         str(tmp_path / "ckpt"), "--output", str(tmp_path / "s.csv")]) == 2
  assert "already exists" in capsys.readouterr().err


@pytest.mark.slow
def test_score_without_a_checkpoint_trains_first(tmp_path, capsys):
  from tfvae import data  # pylint: disable=g-import-not-at-top
  np.save(tmp_path / "wine.npy", data.load_default().values)
  assert cli.score_main(["--data", str(tmp_path / "wine.npy"), "--output",
                         str(tmp_path / "s.csv"), "--num-samples", "20"]) == 0
  scores = np.loadtxt(tmp_path / "s.csv", delimiter=",", skiprows=1)[:, 1]
  assert scores.shape == (178,) and np.isfinite(scores).all()
  assert not (tmp_path / "runs").exists()


def test_help_does_not_import_tensorflow():
  code = ("import sys\nfrom tfvae import cli\n"
          "try:\n  cli.train_main(['--help'])\nexcept SystemExit:\n  pass\n"
          "assert 'tensorflow' not in sys.modules, 'tensorflow imported'\n")
  result = subprocess.run([sys.executable, "-c", code], capture_output=True,
                          text=True, timeout=60)
  assert result.returncode == 0, result.stderr
  assert "--latent-dim" in result.stdout
