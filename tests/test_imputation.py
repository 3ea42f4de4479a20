"""Imputing data files: text kept, gaps filled, streamed."""

import numpy as np
import pytest

from tfvae import data
from tfvae import imputation
from tests.helpers import fitted_model
from tests.helpers import small_data

# Its tests share trained models: one xdist worker runs them all.
pytestmark = pytest.mark.xdist_group("imputation")


@pytest.fixture(scope="session")
def model():
  x = small_data(n=400)
  x[::5, 2] = np.nan
  return fitted_model(x, epochs=3)


def test_csv_keeps_header_order_and_the_text_of_observed_cells(tmp_path, model):
  text = (",a,b,c,d\n"
          "0,4.50,5.0,NA,6\n"
          "1,3.25,?,1e1,5.00000\n"
          "2,5,4,3,2\n")
  (tmp_path / "in.csv").write_text(text)
  with pytest.warns(data.DataWarning, match="unnamed row index"):
    result = imputation.impute_file(model, tmp_path / "in.csv",
                                    tmp_path / "out.csv", num_samples=100,
                                    batch_size=2, seed=0)
  assert result.rows == 3 and result.filled == 2
  lines = (tmp_path / "out.csv").read_text().splitlines()
  assert lines[0] == ",a,b,c,d"
  assert lines[3] == "2,5,4,3,2"  # untouched row, exactly as written
  first = lines[1].split(",")
  assert first[:3] == ["0", "4.50", "5.0"] and first[4] == "6"
  second = lines[2].split(",")
  assert second[:2] == ["1", "3.25"] and second[3:] == ["1e1", "5.00000"]
  x = np.array([[4.5, 5.0, np.nan, 6.0], [3.25, np.nan, 10.0, 5.0],
                [5, 4, 3, 2]])
  expected = model.impute(x, num_samples=100, seed=0)
  assert float(first[3]) == expected[0, 2]
  assert float(second[2]) == expected[1, 1]


def test_multiple_imputations_and_npy_input(tmp_path, model):
  x = small_data(n=6, seed=3)
  x[1, 0] = np.nan
  x[4, 3] = np.nan
  np.save(tmp_path / "in.npy", x)
  imputation.impute_file(model, tmp_path / "in.npy", tmp_path / "out.csv",
                         num_samples=100, num_imputations=3, seed=1)
  table = np.loadtxt(tmp_path / "out.csv", delimiter=",", skiprows=1)
  assert table.shape == (18, 5)
  np.testing.assert_array_equal(table[:, 0], np.tile([1, 2, 3], 6))
  draws = model.impute(x, num_samples=100, seed=1, num_imputations=3)
  np.testing.assert_array_equal(table[:, 1:].reshape(6, 3, 4),
                                draws.transpose(1, 0, 2))
  assert len(np.unique(table[3:6, 1])) == 3  # the draws differ
  with pytest.raises(FileExistsError):
    imputation.impute_file(model, tmp_path / "in.npy", tmp_path / "out.csv")


def test_a_parquet_files_levels_are_written_as_text(tmp_path):
  pa = pytest.importorskip("pyarrow")
  pq = pytest.importorskip("pyarrow.parquet")
  import tfvae  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(0)
  codes = np.stack([rng.normal(size=60), rng.integers(0, 2, 60)], 1)
  model = tfvae.VAE(2, categories=[None, ("no", "yes")], hidden_units=(4,),
                    feature_names=["x", "flag"], seed=0)
  model.adapt(codes)
  pq.write_table(pa.table({"x": [0.5, None, 1.0],
                           "flag": ["YES", "no", None]}),
                 str(tmp_path / "p.parquet"))
  with pytest.warns(UserWarning, match="never trained"):
    result = imputation.impute_file(model, str(tmp_path / "p.parquet"),
                                    str(tmp_path / "out.csv"), num_samples=20)
  lines = (tmp_path / "out.csv").read_text().splitlines()
  assert lines[0] == "x,flag" and result.filled == 2
  cells = [line.split(",") for line in lines[1:]]
  assert [row[1] for row in cells[:2]] == ["yes", "no"]
  assert cells[2][1] in ("no", "yes") and cells[2][0] == "1.0"
  assert np.isfinite(float(cells[1][0]))
