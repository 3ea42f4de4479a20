"""Readers, validation and their error messages."""

import numpy as np
import pytest

from tfvae import data


def write(tmp_path, name, text):
  path = tmp_path / name
  path.write_text(text)
  return str(path)


def test_csv_with_header_keeps_names(tmp_path):
  path = write(tmp_path, "d.csv", "a, b ,c\n1,2,3\n-4.5,1e3,0.001\n")
  table = data.read_table(path)
  assert table.feature_names == ("a", "b", "c")
  np.testing.assert_array_equal(
      table.values, np.array([[1, 2, 3], [-4.5, 1000, 0.001]], np.float32))
  assert table.values.dtype == np.float32


def test_csv_without_header_and_blank_lines(tmp_path):
  path = write(tmp_path, "d.csv", "1,2\n\n3,4\n")
  table = data.read_table(path)
  assert table.feature_names is None
  np.testing.assert_array_equal(table.values, [[1, 2], [3, 4]])


def test_npy_round_trip(tmp_path):
  x = np.arange(12, dtype=np.float64).reshape(4, 3)
  np.save(tmp_path / "d.npy", x)
  np.testing.assert_array_equal(data.load(tmp_path / "d.npy"), x)


def test_missing_file(tmp_path):
  with pytest.raises(ValueError, match="no such file"):
    data.load(tmp_path / "nope.csv")


def test_empty_file(tmp_path):
  with pytest.raises(ValueError, match=r"e\.csv: the file is empty"):
    data.load(write(tmp_path, "e.csv", ""))


def test_header_only(tmp_path):
  with pytest.raises(ValueError, match="no data rows"):
    data.load(write(tmp_path, "h.csv", "a,b\n"))


def test_non_numeric_cell_names_file_row_column_and_text(tmp_path):
  path = write(tmp_path, "p.csv", "time,pressure\n1,2\n3,n/a\n")
  with pytest.raises(ValueError) as error:
    data.load(path)
  message = str(error.value)
  assert path in message and "row 3" in message
  assert "'pressure'" in message and "'n/a' is not a number" in message


def test_empty_cell(tmp_path):
  with pytest.raises(ValueError, match="row 2, column 2: an empty cell"):
    data.load(write(tmp_path, "p.csv", "1,2\n3,\n"))


def test_ragged_rows(tmp_path):
  with pytest.raises(ValueError, match="row 3: 3 columns, expected 2"):
    data.load(write(tmp_path, "r.csv", "1,2\n3,4\n5,6,7\n"))


@pytest.mark.parametrize("text,what", [("nan", "NaN"), ("inf", "infinite"),
                                       ("-Infinity", "infinite"),
                                       ("1e39", "infinite")])
def test_non_finite_csv_value(tmp_path, text, what):
  path = write(tmp_path, "n.csv", f"x,y\n1,2\n3,{text}\n")
  with pytest.raises(ValueError, match=f"row 3, column 2 \\('y'\\): '{text}' is {what}"):
    data.load(path)


def test_non_finite_npy_values_are_counted_and_located(tmp_path):
  x = np.ones((5, 3))
  x[1, 2] = np.nan
  x[3, 0] = np.inf
  x[4, 1] = np.nan
  np.save(tmp_path / "n.npy", x)
  with pytest.raises(ValueError) as error:
    data.load(tmp_path / "n.npy")
  message = str(error.value)
  assert "3 non-finite values (2 NaN, 1 infinite" in message
  assert "row 1 (0-based), column 2" in message


def test_npy_with_objects_is_refused_without_unpickling(tmp_path):
  np.save(tmp_path / "o.npy", np.array([{"a": 1}, None], dtype=object),
          allow_pickle=True)
  with pytest.raises(ValueError, match="without pickle"):
    data.load(tmp_path / "o.npy")


def test_npy_wrong_rank(tmp_path):
  np.save(tmp_path / "v.npy", np.ones(4))
  with pytest.raises(ValueError, match="expected a 2-D array"):
    data.load(tmp_path / "v.npy")


def test_width_mismatch_against_a_model(tmp_path):
  path = write(tmp_path, "w.csv", "1,2,3\n4,5,6\n")
  with pytest.raises(ValueError, match="3 columns, but the model expects 4"):
    data.read_table(path, expected_width=4)
  with pytest.raises(ValueError, match="3 columns, but the model expects 2"):
    data.validate_array(np.ones((2, 3)), "x", expected_width=2)


def test_unsupported_extension(tmp_path):
  with pytest.raises(ValueError, match="unsupported file type '.xlsx'"):
    data.load(write(tmp_path, "d.xlsx", "1"))


def test_validate_array_rejects_strings_and_empty():
  with pytest.raises(TypeError, match="numeric"):
    data.validate_array(np.array([["a", "b"]]))
  with pytest.raises(ValueError, match="empty"):
    data.validate_array(np.zeros((0, 3)))


def test_iter_batches_matches_load(tmp_path):
  rows = np.random.default_rng(0).normal(size=(23, 3))
  path = tmp_path / "s.csv"
  path.write_text("a,b,c\n" + "\n".join(",".join(repr(float(v)) for v in r) for r in rows))
  batches = list(data.iter_batches(str(path), batch_size=5))
  assert [len(b) for b, _ in batches] == [5, 5, 5, 5, 3]
  assert batches[0][1] == ("a", "b", "c")
  np.testing.assert_array_equal(np.concatenate([b for b, _ in batches]),
                                data.load(str(path)))
  np.save(tmp_path / "s.npy", rows)
  streamed = np.concatenate(
      [b for b, _ in data.iter_batches(str(tmp_path / "s.npy"), batch_size=7)])
  np.testing.assert_array_equal(streamed, rows.astype(np.float32))


def test_iter_batches_reports_the_bad_row(tmp_path):
  path = write(tmp_path, "s.csv", "1,2\n" * 10 + "1,oops\n")
  with pytest.raises(ValueError, match="row 11, column 2: 'oops'"):
    list(data.iter_batches(path, batch_size=4))


def test_default_data_is_wine():
  table = data.load_default()
  assert table.values.shape == (178, 13)
  assert table.feature_names[0] == "alcohol" and table.feature_names[-1] == "proline"
  assert np.isfinite(table.values).all()
  # Columns on very different scales: the point of the default data.
  assert table.values[:, -1].max() > 1000 and table.values[:, 7].max() < 1


def test_split_is_seeded_and_disjoint():
  x = np.arange(20, dtype=np.float32)[:, None]
  train, validation = data.split(x, 0.25, seed=3)
  assert len(train) == 15 and len(validation) == 5
  assert sorted(np.concatenate([train, validation])[:, 0]) == list(range(20))
  np.testing.assert_array_equal(data.split(x, 0.25, seed=3)[1], validation)
  with pytest.raises(ValueError, match="fraction"):
    data.split(x, 1.0)


def test_make_dataset_yields_x_only():
  x = np.ones((10, 2), np.float32)
  batches = list(data.make_dataset(x, batch_size=4, shuffle=False))
  assert [b.shape[0] for b in batches] == [4, 4, 2]
