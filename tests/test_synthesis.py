"""Synthetic rows written to files (`tfvae.synthesis`) and `tfvae-sample`."""

import json
import runpy
import shutil
import sys

import numpy as np
import pytest

from tfvae import checkpoint
from tfvae import cli
from tfvae import data
from tfvae import synthesis

# Its tests share a trained checkpoint: one xdist worker runs them all.
pytestmark = pytest.mark.xdist_group("synthesis")


def _table(num_rows=400, seed=0):
  rng = np.random.default_rng(seed)
  visits = np.round(rng.gamma(2.0, 2.0, num_rows))
  price = np.round(20 + 3 * visits + rng.normal(0, 2, num_rows), 2)
  weight = np.round(rng.normal(70, 10, num_rows), 1)
  return np.column_stack([visits, price, weight])


@pytest.fixture(scope="session")
def trained(tmp_path_factory):
  """A checkpoint trained by tfvae-train on a CSV with a header and gaps."""
  folder = tmp_path_factory.mktemp("synthesis")
  x = _table()
  lines = ["visits,price,weight"]
  for i, row in enumerate(x):
    cells = [f"{row[0]:.0f}", f"{row[1]:.2f}", f"{row[2]:.1f}"]
    if i % 7 == 3:
      cells[2] = ""
    lines.append(",".join(cells))
  data = folder / "table.csv"
  data.write_text("\n".join(lines) + "\n")
  assert cli.train_main([
      "--data", str(data), "--epochs", "40", "--learning-rate", "0.003",
      "--hidden-units", "32",
      "--latent-dim", "2", "--logdir", "", "--checkpoint-dir",
      str(folder / "ck"), "--verbose", "0", "--num-samples", "50"]) == 0
  return folder, x


def _read(path):
  lines = path.read_text().splitlines()
  return lines[0], [line.split(",") for line in lines[1:]]


def test_rows_in_the_tables_columns_and_formats(trained, tmp_path, capsys):
  folder, x = trained
  out = tmp_path / "synth.csv"
  assert cli.sample_main(["--checkpoint-dir", str(folder / "ck"), "--rows",
                          "300", "--output", str(out), "--seed", "3"]) == 0
  assert "wrote 300 synthetic rows of 3 columns" in capsys.readouterr().out
  header, rows = _read(out)
  assert header == "visits,price,weight" and len(rows) == 300
  assert all("." not in r[0] for r in rows)  # whole numbers stay whole
  assert all(len(r[1].split(".")[1]) == 2 for r in rows)  # cents
  assert all(len(r[2].split(".")[1]) == 1 for r in rows)
  values = np.array(rows, float)
  observed = x[~np.isnan(x).any(axis=1)]
  assert np.all(values >= observed.min(0)) and np.all(values <= observed.max(0))
  # The file holds the model's rows, and its first rows are those of a
  # shorter file with the same seed.
  model = checkpoint.load_checkpoint(folder / "ck")
  np.testing.assert_allclose(values, model.sample(300, seed=3), atol=1e-9)
  short = tmp_path / "short.csv"
  cli.sample_main(["--checkpoint-dir", str(folder / "ck"), "--rows", "40",
                   "--output", str(short), "--seed", "3"])
  np.testing.assert_allclose(np.array(_read(short)[1], float), values[:40],
                             atol=0.011)
  # The visits-price trend of the table is kept.
  slope = np.polyfit(values[:, 0], values[:, 1], 1)[0]
  assert slope == pytest.approx(3.0, abs=1.0)


def test_streamed_chunks_equal_one_draw(trained, tmp_path, monkeypatch):
  folder, _ = trained
  model = checkpoint.load_checkpoint(folder / "ck")
  from tfvae.inference import sampling  # pylint: disable=g-import-not-at-top
  whole = model.sample(250, seed=1)
  monkeypatch.setattr(sampling, "CHUNK_ROWS", 64)
  result = synthesis.sample_file(model, tmp_path / "s.csv", 250, seed=1,
                                 keep_rows=100)
  assert result.rows == 250 and result.kept.shape == (100, 3)
  written = np.loadtxt(tmp_path / "s.csv", delimiter=",", skiprows=1)
  np.testing.assert_allclose(written[:64], whole[:64], atol=1e-9)
  np.testing.assert_allclose(written[:100], result.kept, atol=1e-9)


def test_given_and_complete_draw_from_the_conditional(trained, tmp_path,
                                                      capsys):
  folder, _ = trained
  out = tmp_path / "given.csv"
  assert cli.sample_main(["--checkpoint-dir", str(folder / "ck"), "--rows",
                          "400", "--output", str(out), "--given",
                          "visits=12"]) == 0
  assert "effective importance samples" in capsys.readouterr().out
  values = np.array(_read(out)[1], float)
  assert np.all(values[:, 0] == 12)
  # price ~ 20 + 3 visits: given 12 visits, about 56, not the table's 32.
  assert np.median(values[:, 1]) == pytest.approx(56, abs=6)
  partial = tmp_path / "partial.csv"
  partial.write_text("visits,price,weight\n2,,70.5\n,41.25,\n,,\n")
  completed = tmp_path / "completed.csv"
  assert cli.sample_main(["--checkpoint-dir", str(folder / "ck"), "--complete",
                          str(partial), "--output", str(completed)]) == 0
  header, rows = _read(completed)
  assert header == "visits,price,weight" and len(rows) == 3
  assert rows[0][0] == "2" and rows[0][2] == "70.5" and rows[1][1] == "41.25"
  assert all(cell != "" for row in rows for cell in row)


def test_report_json_and_markdown(trained, tmp_path, capsys):
  folder, _ = trained
  report = tmp_path / "report.json"
  assert cli.sample_main([
      "--checkpoint-dir", str(folder / "ck"), "--rows", "600", "--output",
      str(tmp_path / "s.csv"), "--report", str(report), "--target",
      "price"]) == 0
  assert "report: quality" in capsys.readouterr().out
  result = json.loads(report.read_text())
  # The training run's own split (tfvae.data.split, seed 0).
  table = data.read_table(folder / "table.csv")
  train, holdout = data.split(table.values, 0.2, seed=0)
  assert result["rows"] == {"train": len(train), "holdout": len(holdout),
                            "synthetic": 600}
  assert 0.5 < result["quality_score"] <= 1.0
  assert result["ml_efficacy"]["metric"] == "r2"
  assert result["privacy"]["synthetic_rows_compared"] == 600
  assert (tmp_path / "report.md").read_text().startswith("# Synthetic")


@pytest.mark.parametrize("argv, message", [
    (["--rows", "0"], "--rows: expected a positive integer"),
    (["--rows", "5", "--given", "age=3"], "no column 'age'"),
    (["--rows", "5", "--given", "visits=1,price=2,weight=3"], "every column"),
    (["--rows", "5", "--given", "visits"], "column=value"),
    (["--rows", "5", "--given", "visits=1", "--report", "r.json"],
     "--report judges rows drawn without a condition"),
    (["--rows", "5", "--target", "price"], "go with --report"),
    ([], "--rows is required"),
])
def test_bad_requests_are_one_line(trained, tmp_path, argv, message, capsys):
  folder, _ = trained
  try:  # argparse's own errors exit; the command's return 2
    code = cli.sample_main(["--checkpoint-dir", str(folder / "ck"),
                            "--output", str(tmp_path / "o.csv"), *argv])
  except SystemExit as error:
    code = error.code
  assert code == 2
  assert message in capsys.readouterr().err
  assert not (tmp_path / "o.csv").exists()


def test_existing_output_disk_space_and_newer_checkpoints(trained, tmp_path,
                                                          monkeypatch, capsys):
  folder, _ = trained
  out = tmp_path / "mine.csv"
  out.write_text("the user's file\n")
  argv = ["--checkpoint-dir", str(folder / "ck"), "--rows", "10", "--output",
          str(out)]
  assert cli.sample_main(argv) == 2
  assert "already exists" in capsys.readouterr().err
  assert out.read_text() == "the user's file\n"
  usage = shutil.disk_usage(tmp_path)
  monkeypatch.setattr(synthesis.shutil, "disk_usage",
                      lambda path: usage._replace(free=10_000))
  assert cli.sample_main(argv[:-1] + [str(tmp_path / "big.csv"), "--rows",
                                      "100000"]) == 2
  assert "free on its disk" in capsys.readouterr().err
  monkeypatch.undo()
  newer = tmp_path / "newer"
  shutil.copytree(folder / "ck", newer)
  marker = json.loads((newer / checkpoint.MARKER_FILE).read_text())
  marker["tfvae_version"] = "9.0.0"
  (newer / checkpoint.MARKER_FILE).write_text(json.dumps(marker))
  assert cli.sample_main(["--checkpoint-dir", str(newer), "--rows", "5",
                          "--output", str(tmp_path / "n.csv")]) == 2
  assert "written by tfvae 9.0.0, newer than" in capsys.readouterr().err


def test_python_m_tfvae_dispatches_commands(monkeypatch, capsys):
  monkeypatch.setattr(sys, "argv", ["tfvae", "sample", "--help"])
  with pytest.raises(SystemExit) as exit_info:
    runpy.run_module("tfvae", run_name="__main__")
  assert exit_info.value.code == 0
  assert "usage: tfvae-sample" in capsys.readouterr().out


def test_column_formats_and_header_quoting():
  assert synthesis.column_formats([1.0, 0.01, 0.0, 100.0]) == [
      "%.0f", "%.2f", "%r", "%.0f"]
  assert synthesis.format_rows(np.array([[3.0, 0.1, 1 / 3, 200.0]]),
                               ["%.0f", "%.2f", "%r", "%.0f"]) == (
                                   "3,0.10,0.3333333333333333,200\n")
  assert synthesis.header_line(["a", "b,c", 'say "hi"']) == (
      'a,"b,c","say ""hi"""\n')
  assert synthesis.header_line(None) == ""


def test_columns_are_named_by_name_or_number():
  names = ["visits", "price", "weight"]
  assert cli._column_index("price", names, 3, "--given") == 1
  assert cli._column_index("#3", names, 3, "--given") == 2
  assert cli._column_index("1", None, 3, "--target") == 0
  with pytest.raises(ValueError, match="no column number 4"):
    cli._column_index("#4", names, 3, "--given")
  with pytest.raises(ValueError, match="is given twice"):
    cli._given_columns({"#1": "2", "visits": "3"}, names, 3)
