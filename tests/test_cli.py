"""The command-line tools: arguments, early errors, safe outputs, full runs."""

import dataclasses
import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest

from tfvae import cli
from tfvae import data as data_lib
from tfvae import families
from tests import tb_events

BIN = os.path.dirname(sys.executable)
ENV = {**os.environ}
ENV.pop("TF_CPP_MIN_LOG_LEVEL", None)  # the tools must be quiet on their own


def run_tool(tool, *args, cwd=None, timeout=600):
  return subprocess.run([os.path.join(BIN, tool), *map(str, args)],
                        capture_output=True, text=True, timeout=timeout,
                        env=ENV, cwd=cwd)


@pytest.fixture
def few_epochs(monkeypatch):
  """`tfvae-score` / `-impute` without a checkpoint train with the defaults
  first; 5 epochs are enough to prove that the path runs."""
  import dataclasses  # pylint: disable=g-import-not-at-top
  from tfvae import training  # pylint: disable=g-import-not-at-top
  real_run = training.run
  seen = []  # the configurations the commands ran
  monkeypatch.setattr(
      training, "run", lambda config, data=None: seen.append(config) or
      real_run(dataclasses.replace(config, epochs=5), data=data))
  return seen


def assert_one_line_before_tensorflow(main, argv, message):
  """The entry point exits with status 2 and one line holding `message`
  (argparse's usage lines aside), without importing TensorFlow."""
  result = run_without_tensorflow(main, argv)
  assert result.returncode == 2, result.stderr
  lines = result.stderr.strip().splitlines()
  if lines[0].startswith("usage:"):  # argparse's own answer
    lines = lines[-1:]
  assert len(lines) == 1 and message in lines[0], result.stderr


def run_without_tensorflow(main, argv, cwd=None):
  """Runs a CLI entry point in a fresh process (in `cwd`, where relative
  paths in `argv` then point); fails if TensorFlow loads."""
  code = (f"import sys\nfrom tfvae import cli\nrc = cli.{main}({argv!r})\n"
          "assert 'tensorflow' not in sys.modules, 'tensorflow was imported'\n"
          "sys.exit(rc)\n")
  return subprocess.run([sys.executable, "-c", code], capture_output=True,
                        text=True, timeout=120, env=ENV, cwd=cwd)


def test_likelihood_choices_are_the_families():
  action = next(a for a in cli.build_train_parser()._actions  # pylint: disable=protected-access
                if a.dest == "likelihood")
  assert tuple(action.choices) == families.NAMES


def test_hidden_units_parsing():
  parser = cli.build_train_parser()
  assert parser.parse_args(["--hidden-units", "64,32"]).hidden_units == (64, 32)
  assert parser.parse_args(["--hidden-units", "linear"]).hidden_units == ()
  assert parser.parse_args([]).hidden_units is None


@pytest.mark.parametrize("argv,message", [
    (["--hidden-units", "64,x"], "--hidden-units: expected comma-separated"),
    (["--validation-split", "1.5"], "--validation-split: expected a fraction"),
    (["--likelihood", "bernoulli"], "invalid choice"),
    (["--epochs", "0"], "--epochs: expected a positive integer"),
    (["--learning-rate", "nan"], "--learning-rate: expected a finite number"),
    (["--learning-rate", "inf"], "--learning-rate: expected a finite number"),
    (["--learning-rate", "0"], "--learning-rate: expected a number > 0"),
    (["--beta", "inf"], "--beta: expected a finite number"),
    (["--patience", "-1"], "--patience: expected an integer >= 0"),
    (["--seed", "-1"], "--seed: expected an integer in [0, 2**63)"),
    (["--num-samples", "0"], "--num-samples: expected a positive integer"),
    (["--trim", "0.5"], "--trim: expected a share in [0, 0.5), got 0.5"),
    (["--epoch-budget", "0"], "--epoch-budget: expected a number > 0"),
    (["--delimiter", "ab"], "--delimiter: delimiter must be one character"),
    (["--encoding", "klingon"], "--encoding: unknown encoding"),
])
def test_bad_arguments_exit_2_naming_the_flag(argv, message, capsys):
  with pytest.raises(SystemExit) as exit_info:
    cli.train_main(argv)
  assert exit_info.value.code == 2
  assert message in capsys.readouterr().err


def test_bad_data_is_one_clear_line_before_tensorflow(tmp_path):
  path = tmp_path / "bad.csv"
  path.write_text("a,b\n1,2\n3,oops\n")
  result = run_without_tensorflow(
      "train_main", ["--data", str(path), "--logdir", str(tmp_path / "r")])
  assert result.returncode == 2, result.stderr
  assert result.stderr.strip() == (
      f"tfvae-train: error: {path} row 3, column 2 ('b'): 'oops' is not a "
      "number")


@pytest.mark.parametrize("problem", [
    "export_dir_is_a_file", "checkpoint_under_a_file", "logdir_is_a_file",
    "checkpoint_exists", "users_folder_with_overwrite", "missing_data"])
def test_output_and_data_problems_fail_at_once(tmp_path, problem):
  (tmp_path / "file").write_text("not a folder")
  argv = ["--logdir", str(tmp_path / "runs")]
  expected = {
      "export_dir_is_a_file": (["--export-dir", str(tmp_path / "file")],
                               "is a file"),
      "checkpoint_under_a_file": (
          ["--checkpoint-dir", str(tmp_path / "file" / "ckpt")],
          "is a file, not a folder"),
      "logdir_is_a_file": (["--logdir", str(tmp_path / "file")], "is a file"),
      "checkpoint_exists": (["--checkpoint-dir", str(tmp_path)],
                            "already exists; pass --overwrite"),
      "users_folder_with_overwrite": (
          ["--checkpoint-dir", str(tmp_path), "--overwrite"],
          "is not a tfvae checkpoint; refusing to replace it"),
      "missing_data": (["--data", str(tmp_path / "none.csv")], "no such file"),
  }[problem]
  start = time.monotonic()
  result = run_without_tensorflow("train_main", argv + expected[0])
  assert result.returncode == 2
  lines = result.stderr.strip().splitlines()
  assert len(lines) == 1 and expected[1] in lines[0], result.stderr
  assert time.monotonic() - start < 60


def test_overwrite_never_deletes_the_users_files(tmp_path):
  # The old behaviour: `--checkpoint-dir . --overwrite` removed everything.
  (tmp_path / "train.csv").write_text("a,b\n" + "1,2\n3,5\n" * 20)
  (tmp_path / "notes").mkdir()
  (tmp_path / "notes" / "n.txt").write_text("keep")
  result = run_without_tensorflow(
      "train_main", ["--data", "train.csv", "--checkpoint-dir", ".",
                     "--overwrite", "--logdir", ""], cwd=tmp_path)
  assert result.returncode == 2
  assert "is not a tfvae checkpoint; refusing to replace it" in result.stderr
  assert sorted(os.listdir(tmp_path)) == ["notes", "train.csv"]
  assert (tmp_path / "notes" / "n.txt").read_text() == "keep"


def test_default_logdir_in_a_read_only_folder(tmp_path):
  if os.geteuid() == 0:
    pytest.skip("root may write into read-only folders")
  (tmp_path / "ro").mkdir()
  (tmp_path / "ro").chmod(0o500)
  code = ("import os, sys\nfrom tfvae import cli\n"
          f"os.chdir({str(tmp_path / 'ro')!r})\n"
          "sys.exit(cli.train_main(['--epochs', '1']))\n")
  result = subprocess.run([sys.executable, "-c", code], capture_output=True,
                          text=True, timeout=120)
  assert result.returncode == 2
  assert "runs/tfvae" in result.stderr and "not writable" in result.stderr


def test_score_refuses_to_overwrite_its_input(tmp_path):
  np.savetxt(tmp_path / "x.csv", np.ones((4, 2)), delimiter=",")
  result = run_without_tensorflow(
      "score_main", ["--data", str(tmp_path / "x.csv"), "--output",
                     str(tmp_path / "x.csv"), "--overwrite"])
  assert result.returncode == 2
  assert "is also an input" in result.stderr
  np.testing.assert_array_equal(np.loadtxt(tmp_path / "x.csv", delimiter=","),
                                np.ones((4, 2)))


@pytest.mark.slow
def test_train_end_to_end_writes_logs_and_checkpoint(tmp_path):
  rng = np.random.default_rng(0)
  x = np.stack([rng.uniform(1e-3, 2e-3, 300), rng.uniform(0, 4000, 300),
                rng.normal(-9, 8, 300)], axis=1)
  data_path = tmp_path / "d.csv"
  np.savetxt(data_path, x, delimiter=",", header="small,large,signed",
             comments="")
  logdir = tmp_path / "runs"
  result = run_tool(
      "tfvae-train", "--data", data_path, "--epochs", "12", "--hidden-units",
      "16", "--latent-dim", "2", "--logdir", logdir, "--checkpoint-dir",
      tmp_path / "ckpt", "--num-samples", "50", "--verbose", "2",
      "--num-train-samples", "1")  # the ELBO, so that loss = nll + kl
  assert result.returncode == 0, result.stderr
  assert result.stderr == ""  # no TensorFlow start-up noise
  out = result.stdout
  train_rows, validation_rows = data_lib.split(x, 0.2, seed=0)
  assert (f"{len(train_rows)} training / {len(validation_rows)} validation "
          "examples, 3 features") in out
  assert "validation marginal log-likelihood (IWAE, K=50)" in out
  assert "Epoch 12/12" in out and "val_reconstruction_nll" in out
  summary = out[out.index("tfvae summary"):]
  metric_rows = [line.split() for line in summary.splitlines()
                 if "reconstruction_nll" in line and "loss" in line.split()]
  assert [row[0] for row in metric_rows] == ["train", "validation"]
  numbers = [float(row[i]) for row in metric_rows for i in (2, 4, 6)]
  # loss = reconstruction_nll + beta * kl, beta = 1, as the summary says.
  assert "(loss = reconstruction_nll + beta * kl, beta = 1)" in summary
  for loss, reconstruction, kl in (numbers[:3], numbers[3:]):
    assert loss == pytest.approx(reconstruction + kl, abs=2e-4)
  assert (tmp_path / "ckpt" / "model.keras").is_file()
  train_tags = tb_events.read_tags(str(logdir / "train"))
  validation_tags = tb_events.read_tags(str(logdir / "validation"))
  for tag in ("epoch_loss", "epoch_reconstruction_nll", "epoch_kl"):
    assert len(train_tags[tag]) == 12 and len(validation_tags[tag]) == 12
  losses = [value for _, value in train_tags["epoch_loss"]]
  assert losses[-1] < losses[0]


@pytest.mark.slow
def test_default_output_is_a_progress_line_and_the_summary(tmp_path):
  result = run_tool("tfvae-train", "--epochs", "3", "--num-samples", "20",
                    cwd=tmp_path)
  assert result.returncode == 0, result.stderr
  assert len(result.stdout.splitlines()) < 15
  assert "Epoch" not in result.stdout
  progress = [line for line in result.stderr.splitlines() if line]
  assert progress and all(line.startswith("training:") for line in progress)
  assert "training: 100% (3/3 epochs)" in progress[-1]
  assert (tmp_path / "runs" / "tfvae").is_dir()  # the default log directory


@pytest.mark.slow
def test_train_export_then_encode(tmp_path, capsys):
  assert cli.train_main([
      "--epochs", "3", "--num-samples", "10", "--logdir", str(tmp_path / "runs"),
      "--checkpoint-dir", str(tmp_path / "ckpt"),
      "--export-dir", str(tmp_path / "models"), "--verbose", "0"]) == 0
  out = capsys.readouterr().out
  assert f"exported encoder: {tmp_path / 'models' / 'encoder' / '1'}" in out
  assert cli.export_main([
      "--checkpoint-dir", str(tmp_path / "ckpt"),
      "--export-dir", str(tmp_path / "models"), "--scorer-samples", "20"]) == 0
  assert str(tmp_path / "models" / "decoder" / "2") in capsys.readouterr().out
  for version, samples in (("1", 100), ("2", 20)):
    with open(tmp_path / "models" / "scorer" / version / "assets.extra" /
              "tfvae_metadata.json") as f:
      assert json.load(f)["num_samples"] == samples
  np.save(tmp_path / "wine.npy", data_lib.load_default().values)
  argv = ["--model", str(tmp_path / "models" / "encoder"),
          "--data", str(tmp_path / "wine.npy"), "--output", str(tmp_path / "z.csv")]
  assert cli.encode_main(argv) == 0
  assert "encoded 178 rows" in capsys.readouterr().out
  with open(tmp_path / "z.csv") as f:
    header = f.readline().strip().split(",")
  z = np.loadtxt(tmp_path / "z.csv", delimiter=",", skiprows=1)
  # The recipe's latent size for 13 columns is 8: loc and scale.
  assert header == [f"z_mean_{i}" for i in range(8)] + [
      f"z_stddev_{i}" for i in range(8)]
  assert z.shape == (178, 16) and np.isfinite(z).all()
  assert cli.encode_main(argv) == 2
  assert capsys.readouterr().err.strip().endswith(
      "already exists; pass --overwrite to replace it")


def test_score_with_a_checkpoint_flags_the_outlier(tmp_path, capsys):
  from tfvae import checkpoint  # pylint: disable=g-import-not-at-top
  from tests.helpers import fitted_model  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(0)
  x = rng.normal(size=(400, 3)) * [1, 10, 100] + [0, 5, 50]
  model = fitted_model(x, epochs=20, batch_size=64, hidden_units=(16,),
                       latent_dim=2)
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
  assert table[17, 1] > np.median(table[:, 1]) + 5
  assert cli.score_main(["--data", str(tmp_path / "test.npy"), "--checkpoint",
                         str(tmp_path / "ckpt"), "--output", str(tmp_path / "s.csv")]) == 2
  assert "already exists" in capsys.readouterr().err
  # Not calibrated: no percentile column, and no contamination to flag by.
  assert cli.score_main(["--data", str(tmp_path / "test.npy"), "--checkpoint",
                         str(tmp_path / "ckpt"), "--output",
                         str(tmp_path / "f.csv"), "--contamination", "0.1"]) == 2
  assert "call model.calibrate" in capsys.readouterr().err
  # Calibrated on held-out rows: each score's percentile among theirs, and
  # rows above a contamination's threshold (or a given one) flagged.
  held_out = rng.normal(size=(300, 3)) * [1, 10, 100] + [0, 5, 50]
  model.calibrate(held_out, num_samples=100, seed=0)
  checkpoint.save_checkpoint(model, tmp_path / "ckpt", overwrite=True)
  for flag, value in (("--contamination", "0.1"), ("--threshold", "6.5")):
    output = tmp_path / f"flagged{flag}.csv"
    assert cli.score_main(["--data", str(tmp_path / "test.npy"),
                           "--checkpoint", str(tmp_path / "ckpt"), "--output",
                           str(output), "--num-samples", "100", flag,
                           value]) == 0
    cut = (model.anomaly_threshold(0.1) if flag == "--contamination"
           else 6.5)
    flagged = int(np.sum(table[:, 1] > cut))
    assert (f"{flagged} rows flagged as anomalies (score above {cut:.4f})"
            in capsys.readouterr().out)
    with open(output) as f:
      assert f.readline().strip() == "row,score,percentile,anomaly"
    written = np.loadtxt(output, delimiter=",", skiprows=1)
    np.testing.assert_array_equal(written[:, 1], table[:, 1])
    np.testing.assert_allclose(written[:, 2],
                               model.score_percentile(table[:, 1]))
    np.testing.assert_array_equal(written[:, 3], table[:, 1] > cut)
  assert written[17, 2] == 100.0  # stranger than every held-out row
  assert_one_line_before_tensorflow(
      "score_main", ["--data", "x.npy", "--output", "o.csv",
                     "--contamination", "0.1", "--threshold", "3"],
      "not allowed with argument")
  assert_one_line_before_tensorflow(
      "score_main", ["--data", "x.npy", "--output", "o.csv",
                     "--contamination", "0.7"],
      "--contamination: expected a share in (0, 0.5]")
  assert_one_line_before_tensorflow(
      "score_main", ["--data", "x.npy", "--output", "o.csv",
                     "--checkpoint-dir", "ck", "--trim", "0.1"],
      "--trim applies to the model tfvae-score trains first")


@pytest.mark.slow
def test_score_without_a_checkpoint_trains_first(tmp_path, few_epochs,
                                                 monkeypatch, capsys):
  x = data_lib.load_default().values.copy()
  x[np.random.default_rng(0).uniform(size=x.shape) < 0.1] = np.nan
  np.save(tmp_path / "gaps.npy", x)
  monkeypatch.chdir(tmp_path)
  assert cli.score_main(["--data", str(tmp_path / "gaps.npy"), "--output",
                         str(tmp_path / "s.csv"), "--num-samples", "20",
                         "--per-feature"]) == 0
  printed = capsys.readouterr()
  assert "scored 178 rows" in printed.out
  # No refit: the percentiles need the held-out rows. The model that scores
  # is fitted to the rows a first fit finds typical (`cli.SCORE_TRIM`).
  assert [(config.refit, config.trim) for config in few_epochs] == [
      (False, cli.SCORE_TRIM)]
  assert "(the least likely 10% of a first fit's training rows); --trim 0 " \
      "keeps them" in printed.err, printed.err
  with open(tmp_path / "s.csv") as f:
    assert f.readline().strip() == "row,score,score_per_feature,percentile"
  scores = np.loadtxt(tmp_path / "s.csv", delimiter=",", skiprows=1)
  # The per-feature score is the score over the row's observed values; the
  # percentile places it among the run's validation rows.
  assert scores.shape == (178, 4) and np.isfinite(scores).all()
  np.testing.assert_allclose(
      scores[:, 2], scores[:, 1] / (~np.isnan(x)).sum(axis=1), rtol=1e-6)
  assert 0 <= scores[:, 3].min() and scores[:, 3].max() <= 100
  assert not (tmp_path / "runs").exists()  # the run inside writes no logs


def test_score_trims_tables_in_memory_of_enough_rows_unless_told():
  import types  # pylint: disable=g-import-not-at-top
  def data(rows, streamed=False):
    return types.SimpleNamespace(num_train=rows, streamed=streamed)
  enough = cli.SCORE_TRIM_FROM_ROWS
  assert cli.score_trim(None, data(enough)) == cli.SCORE_TRIM == 0.1
  assert cli.score_trim(None, data(enough - 1)) == 0.0  # a few dozen rows
  assert cli.score_trim(None, data(10**7, streamed=True)) == 0.0
  assert cli.score_trim(0.0, data(enough)) == 0.0
  assert cli.score_trim(0.2, data(10)) == 0.2  # asked for: done


def test_help_does_not_import_tensorflow():
  code = ("import sys\nfrom tfvae import cli\n"
          "try:\n  cli.train_main(['--help'])\nexcept SystemExit:\n  pass\n"
          "assert 'tensorflow' not in sys.modules, 'tensorflow imported'\n")
  result = subprocess.run([sys.executable, "-c", code], capture_output=True,
                          text=True, timeout=60)
  assert result.returncode == 0, result.stderr
  assert "--latent-dim" in result.stdout


@pytest.mark.slow
def test_impute_trains_then_fills_a_file_with_gaps(tmp_path, few_epochs,
                                                   capsys):
  # With text: an identifier (left out, and written back as it was), a
  # category and booleans in mixed case, with gaps in every column.
  x = data_lib.load_default().values.copy()
  rng = np.random.default_rng(0)
  grade = np.array(["low", "mid", "high"])[np.digitize(
      x[:, 0], np.quantile(x[:, 0], [1 / 3, 2 / 3]))]
  flag = np.where(x[:, 1] > np.median(x[:, 1]), "Yes", "no")
  text = np.stack([grade, flag], 1).astype(object)
  # A count and a skewed positive column, typed as such (the table has
  # text columns, so numeric columns are typed too).
  visits = rng.negative_binomial(2, 0.3, len(x)).astype(float)
  income = np.exp(rng.normal(10.0, 0.8, len(x))).round(2)
  x = np.concatenate([x, visits[:, None], income[:, None]], 1)
  x[rng.uniform(size=x.shape) < 0.1] = np.nan
  text[rng.uniform(size=text.shape) < 0.1] = ""
  lines = [",".join(["id"] + [f"c{i}" for i in range(13)] +
                    ["visits", "income", "grade", "ok"])]
  lines += [",".join([f"w{r}"] + ["" if np.isnan(v) else repr(float(v))
                                  for v in row] + list(text[r]))
            for r, row in enumerate(x)]
  (tmp_path / "gaps.csv").write_text("\n".join(lines) + "\n")
  assert cli.impute_main(["--data", str(tmp_path / "gaps.csv"), "--output",
                          str(tmp_path / "full.csv"), "--num-samples",
                          "50"]) == 0
  printed = capsys.readouterr()
  assert "imputed" in printed.out
  # The model that fills the file's gaps is refitted on every row.
  assert [config.refit for config in few_epochs] == [True]
  out = printed.out + printed.err
  assert "grade: categorical, 3 levels (high, low, mid)" in out
  assert "ok: binary, 2 levels (no, yes)" in out
  assert "visits: count, 0 .. " in out and "income: positive, " in out
  assert "columns not used: id" in out
  with open(tmp_path / "full.csv") as f:
    rows = [line.rstrip("\n").split(",") for line in f]
  assert rows[0] == lines[0].split(",")
  rows = rows[1:]
  assert [row[0] for row in rows] == [f"w{r}" for r in range(len(x))]
  filled = np.array([row[1:16] for row in rows], np.float64)
  assert filled.shape == x.shape and np.isfinite(filled).all()
  np.testing.assert_array_equal(filled[~np.isnan(x)], x[~np.isnan(x)])
  # Counts are filled with integers (written as such), positives above 0.
  gaps = np.isnan(x[:, 13])
  assert gaps.sum() > 5
  assert all("." not in row[14] for row, gap in zip(rows, gaps) if gap)
  assert np.all(filled[:, 13] == np.round(filled[:, 13]))
  assert np.all(filled[:, 14] > 0)
  filled_text = np.array([row[16:] for row in rows], object)
  given = text != ""
  np.testing.assert_array_equal(filled_text[given], text[given])
  assert set(filled_text[~given[:, 0], 0]) <= {"low", "mid", "high"}
  assert set(filled_text[~given[:, 1], 1]) <= {"no", "yes"}
  assert (~given).sum() > 10


def test_demo_passes_its_arguments_to_tfvae_train_only(tmp_path):
  # demo.sh sources _venv.sh, which reads the extras to install from its
  # first argument: the demo's own arguments (--epochs 50) must not leak in.
  # A stand-in .venv whose install stamp is current and whose tfvae-train
  # echoes its arguments.
  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  (tmp_path / "scripts").mkdir()
  for name in ("demo.sh", "_venv.sh"):
    with open(os.path.join(root, "scripts", name)) as f:
      (tmp_path / "scripts" / name).write_text(f.read())
    os.chmod(tmp_path / "scripts" / name, 0o755)
  (tmp_path / "setup.cfg").write_text("")
  (tmp_path / "pyproject.toml").write_text("")
  bin_dir = tmp_path / ".venv" / "bin"
  bin_dir.mkdir(parents=True)
  for name, body in (("python", "echo 'pip ran' >&2; exit 1"),
                     ("tfvae-train", 'echo "args: $*"')):
    (bin_dir / name).write_text(f"#!/bin/sh\n{body}\n")
    os.chmod(bin_dir / name, 0o755)
  past = time.time() - 60
  for name in ("setup.cfg", "pyproject.toml"):
    os.utime(tmp_path / name, (past, past))
  (tmp_path / ".venv" / ".tfvae-installed").write_text("")
  result = subprocess.run([str(tmp_path / "scripts" / "demo.sh"), "--epochs",
                           "50"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=60)
  assert result.returncode == 0, result.stderr
  assert result.stdout.strip() == (
      "args: --logdir runs/demo --export-dir saved_models/demo "
      "--checkpoint-dir checkpoints/demo --overwrite --epochs 50")
  assert "pip ran" not in result.stderr


@pytest.mark.parametrize("version", ["0", "100000000000000000000", "9223372036854775808", "x"])
def test_export_version_outside_what_tf_serving_reads(version, capsys):
  with pytest.raises(SystemExit) as exit_info:
    cli.export_main(["--checkpoint-dir", "ck", "--export-dir", "e",
                     "--version", version])
  assert exit_info.value.code == 2
  assert "--version: expected a positive integer up to 2**63 - 1" in (
      capsys.readouterr().err)


def test_columns_are_matched_by_name_and_checked_before_tensorflow(tmp_path,
                                                                   capsys):
  from tfvae import checkpoint  # pylint: disable=g-import-not-at-top
  from tfvae import export  # pylint: disable=g-import-not-at-top
  from tests.helpers import fitted_model  # pylint: disable=g-import-not-at-top
  from tests.helpers import small_data  # pylint: disable=g-import-not-at-top
  names = ["a", "b", "c", "d", "e"]
  x = small_data(d=5) * [1, 2, 3, 4, 5]
  model = fitted_model(x, epochs=2, hidden_units=(8,), latent_dim=2,
                       feature_names=names)
  checkpoint.save_checkpoint(model, tmp_path / "ck")
  export.export_model(model, tmp_path / "models", num_samples=5)

  def write(name, columns, header=True):
    np.savetxt(tmp_path / name, x[:20, [names.index(c) for c in columns]],
               delimiter=",", header=",".join(columns) if header else "",
               comments="")
    return str(tmp_path / name)

  def score(data, output):
    argv = ["--data", data, "--checkpoint-dir", str(tmp_path / "ck"),
            "--output", str(tmp_path / output), "--num-samples", "20"]
    return cli.score_main(argv), capsys.readouterr()

  code, _ = score(write("in_order.csv", names), "s1.csv")
  assert code == 0
  code, out = score(write("reversed.csv", names[::-1]), "s2.csv")
  assert code == 0 and "matched to the model's by name" in out.err
  np.testing.assert_array_equal(
      np.loadtxt(tmp_path / "s1.csv", delimiter=",", skiprows=1),
      np.loadtxt(tmp_path / "s2.csv", delimiter=",", skiprows=1))
  # Wrong names, a wrong width, the wrong export part: one line, before
  # TensorFlow starts.
  (tmp_path / "other.csv").write_text("p,q,r,s,t\n" + "1,2,3,4,5\n" * 3)
  (tmp_path / "narrow.csv").write_text("1,2,3,4\n" * 3)
  cases = [
      ("score_main", ["--data", str(tmp_path / "other.csv"), "--checkpoint-dir",
                      str(tmp_path / "ck"), "--output", str(tmp_path / "o.csv")],
       "missing the model's columns 'a', 'b', 'c', 'd', 'e'; unknown columns"),
      ("impute_main", ["--data", str(tmp_path / "narrow.csv"),
                       "--checkpoint-dir", str(tmp_path / "ck"), "--output",
                       str(tmp_path / "o.csv")],
       "narrow.csv: 4 columns, but the model expects 5"),
      ("encode_main", ["--data", write("ok.csv", names), "--model",
                       str(tmp_path / "models" / "decoder"), "--output",
                       str(tmp_path / "o.csv")],
       "is tfvae's decoder, not its encoder"),
      ("encode_main", ["--data", str(tmp_path / "other.csv"), "--model",
                       str(tmp_path / "models" / "encoder"), "--output",
                       str(tmp_path / "o.csv")],
       "unknown columns 'p', 'q', 'r', 's', 't'"),
  ]
  for main, argv, message in cases:
    assert_one_line_before_tensorflow(main, argv, message)
  assert not (tmp_path / "o.csv").exists()


def test_clear_answers_before_tensorflow(tmp_path):
  from tfvae import checkpoint  # pylint: disable=g-import-not-at-top
  data_path = tmp_path / "x.csv"
  data_path.write_text("a,b\n1,2\n3,4\n")
  truncated = tmp_path / "truncated"
  truncated.mkdir()
  (truncated / checkpoint.MARKER_FILE).write_text('{"format": "tfvae-ch')
  # A checkpoint folder and a version folder of the user's, not tfvae's.
  good = tmp_path / "ck"
  good.mkdir()
  (good / checkpoint.MARKER_FILE).write_text(json.dumps(
      {"format": checkpoint.FORMAT, "complete": True,
       "model": {"input_dim": 2, "feature_names": ["a", "b"]}}))
  (good / checkpoint.MODEL_FILE).write_text("stand-in")
  (tmp_path / "exp" / "encoder" / "3").mkdir(parents=True)
  cases = [
      ("score_main", ["--data", str(data_path), "--checkpoint-dir",
                      str(truncated), "--output", str(tmp_path / "o.csv")],
       "is not a tfvae checkpoint: its tfvae_checkpoint.json is not valid "
       "JSON (truncated or corrupted"),
      ("export_main", ["--checkpoint-dir", str(good), "--export-dir",
                       str(tmp_path / "exp"), "--version", "3", "--overwrite"],
       "exp/encoder/3 exists but is not a tfvae export; refusing to replace"),
      ("score_main", ["--data", str(data_path), "--checkpoint-dir", str(good),
                      "--output", str(tmp_path / "o.csv"), "--num-samples",
                      "100000000000"],
       "--num-samples: expected at most 1,000,000 importance samples per row"),
      ("impute_main", ["--data", str(data_path), "--checkpoint-dir", str(good),
                       "--output", str(tmp_path / "o.csv"),
                       "--num-imputations", "1000000000"],
       "--num-imputations=1,000,000,000 for 1,024 rows needs about"),
  ]
  for main, argv, message in cases:
    assert_one_line_before_tensorflow(main, argv, message)


def test_train_flags_map_onto_the_config_fields(monkeypatch, tmp_path):
  from tfvae import training  # pylint: disable=g-import-not-at-top
  seen = []

  class Summary:
    def format(self):
      return "done"

  monkeypatch.setattr(training, "run",
                      lambda config: seen.append(config) or Summary())
  assert cli.train_main([
      "--data", "x.csv", "--latent-dim", "3", "--hidden-units", "16,8",
      "--likelihood", "laplace", "--beta", "2", "--epochs", "7",
      "--num-train-samples", "4", "--no-adapt", "--no-monitor", "--logdir", "",
      "--seed", "5", "--checkpoint-dir", str(tmp_path / "ck"), "--overwrite",
      "--delimiter", ";", "--trim", "0.1", "--refit", "--epoch-budget", "30",
      "--verbose", "0"]) == 0
  config = seen[0]
  assert config.trim == 0.1 and config.refit and config.epoch_budget == 30.0
  assert (config.data, config.latent_dim, config.hidden_units) == (
      "x.csv", 3, (16, 8))
  assert (config.likelihood, config.beta, config.epochs) == ("laplace", 2.0, 7)
  assert (config.num_train_samples, config.seed, config.verbose) == (4, 5, 0)
  assert not config.adapt and not config.monitor and config.logdir is None
  assert config.checkpoint_dir == str(tmp_path / "ck") and config.overwrite
  assert config.read_options.delimiter == ";"
  # --columns and --drop-columns become read options.
  parser = cli.build_train_parser()
  options = cli.read_options(parser.parse_args(
      ["--drop-columns", "id, note", "--column-types", "zip=categorical"]))
  assert dict(options.column_types) == {"id": "drop", "note": "drop",
                                        "zip": "categorical"}
  assert cli.read_options(parser.parse_args(
      ["--columns", "a,b"])).columns == ("a", "b")
  with pytest.raises(SystemExit):
    parser.parse_args(["--columns", "a", "--drop-columns", "b"])
  # Every field but those set another way has a flag of its own name.
  dests = {action.dest for action in cli.build_train_parser()._actions}  # pylint: disable=protected-access
  fields = {field.name for field in dataclasses.fields(training.TrainConfig)}
  assert fields - dests == {"read_options", "adapt", "monitor", "deadline",
                            "likelihood_scale_floor", "missing_train_samples"}
