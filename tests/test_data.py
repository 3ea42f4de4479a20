"""Readers, validation and their error messages."""

import bz2
import codecs
import gzip
import lzma
import os
import re
import warnings

import numpy as np
import pytest

from tfvae import data
from tfvae import validation


def write(tmp_path, name, text, encoding="utf-8"):
  path = tmp_path / name
  path.write_bytes(text.encode(encoding))
  return str(path)


def read_quietly(path, **kwargs):
  with warnings.catch_warnings():
    warnings.simplefilter("ignore", data.DataWarning)
    return data.read_table(path, **kwargs)


def test_csv_with_header_keeps_names_and_float64(tmp_path):
  path = write(tmp_path, "d.csv", "a, b ,c\n1,2,3\n-4.5,1e3,0.001\n")
  table = data.read_table(path)
  assert table.feature_names == ("a", "b", "c")
  assert table.values.dtype == np.float64
  np.testing.assert_array_equal(table.values, [[1, 2, 3], [-4.5, 1000, 0.001]])


def test_large_offsets_keep_their_variation(tmp_path):
  # float32 has a spacing of 0.0625 at 1e6 and 128 at 1.7e9.
  rows = [(1e6 + 0.01 * i, 1.7e9 + i) for i in range(5)]
  path = write(tmp_path, "t.csv", "\n".join(f"{a!r},{b!r}" for a, b in rows))
  values = data.load(path)
  np.testing.assert_array_equal(values, np.array(rows))
  assert len(np.unique(values[:, 0])) == 5 and len(np.unique(values[:, 1])) == 5


def test_csv_without_header_and_blank_lines(tmp_path):
  path = write(tmp_path, "d.csv", "1,2\n\n3,4\n")
  table = data.read_table(path)
  assert table.feature_names is None
  np.testing.assert_array_equal(table.values, [[1, 2], [3, 4]])


@pytest.mark.parametrize("kind", ["npy", "parquet"])
def test_binary_round_trip(tmp_path, kind):
  x = np.arange(12, dtype=np.float64).reshape(4, 3) + 1.7e9
  x[1, 2] = np.nan
  path = tmp_path / f"d.{kind}"
  if kind == "npy":
    np.save(path, x)
  else:
    import pyarrow as pa  # pylint: disable=g-import-not-at-top
    import pyarrow.parquet as pq  # pylint: disable=g-import-not-at-top
    pq.write_table(pa.table({"a": x[:, 0], "b": x[:, 1],
                             "c": pa.array([1.7e9 + 2, None, 1.7e9 + 8,
                                            1.7e9 + 11])}), path)
  table = data.read_table(path)
  np.testing.assert_array_equal(table.values, x)
  if kind == "parquet":
    assert table.feature_names == ("a", "b", "c")


def test_missing_file_directory_and_empty_file(tmp_path):
  with pytest.raises(ValueError, match="no such file"):
    data.load(tmp_path / "nope.csv")
  with pytest.raises(ValueError, match="is a directory"):
    data.load(tmp_path)
  with pytest.raises(ValueError, match=r"e\.csv: the file is empty"):
    data.load(write(tmp_path, "e.csv", ""))


def test_header_only(tmp_path):
  with pytest.raises(ValueError, match="no data rows"):
    data.load(write(tmp_path, "h.csv", "a,b\n"))


def test_non_numeric_cell_names_file_row_column_and_text(tmp_path):
  path = write(tmp_path, "p.csv", "time,pressure\n1,2\n3,high\n")
  with pytest.raises(ValueError) as error:
    data.load(path)
  message = str(error.value)
  assert path in message and "row 3" in message
  assert "'pressure'" in message and "'high' is not a number" in message


def test_missing_value_tokens_become_nan(tmp_path):
  tokens = ["", "NA", "N/A", "NaN", "nan", "null", "None", "?", "-"]
  text = "a,b\n" + "".join(f"1,{t}\n" for t in tokens) + "2,3\n"
  values = data.load(write(tmp_path, "m.csv", text))
  assert np.isnan(values[:-1, 1]).all() and values[-1, 1] == 3
  assert not np.isnan(values[:, 0]).any()


def test_na_values_are_configurable(tmp_path):
  path = write(tmp_path, "m.csv", "a,b\n1,-999\n2,\n3,4\n")
  values = data.load(path, options=data.ReadOptions(na_values=("-999", "")))
  assert np.isnan(values[:2, 1]).all()
  # An empty list: no missing value is allowed, the empty cell is an error.
  with pytest.raises(ValueError, match=r"row 3, column 2 \('b'\): an empty "
                     "cell is not a number"):
    data.load(path, options=data.ReadOptions(na_values=("-999",)))
  with pytest.raises(ValueError, match="row 3, column 2.*na_values is empty"):
    data.load(path, options=data.ReadOptions(na_values=()))


def test_rows_and_columns_with_nothing_observed(tmp_path):
  path = write(tmp_path, "r.csv", "a,b\n1,2\nNA,NA\n3,4\n,\n")
  with pytest.warns(data.DataWarning, match="2 rows with every value missing"):
    table = data.read_table(path)
  assert table.dropped_rows == 2 and table.values.shape == (2, 2)
  kept = [b for b, _ in data.iter_batches(path, 10)][0]
  assert kept.shape == (4, 2)  # streaming for scoring keeps row alignment
  with pytest.raises(ValueError, match=r"column 2 \('b'\) has no observed"):
    data.read_table(write(tmp_path, "c.csv", "a,b\n1,\n2,NA\n"))


def test_underscores_and_other_python_only_numbers_are_not_numbers(tmp_path):
  for text in ("1_000", "0x10", "1e"):
    with pytest.raises(ValueError, match=f"'{text}' is not a number"):
      data.load(write(tmp_path, "u.csv", f"a,b\n1,2\n{text},3\n"))
  assert data.parse_number(" 5 ") == 5.0 and data.parse_number("+.5e1") == 5.0
  assert data.parse_number("1_000") is None


def test_ragged_rows(tmp_path):
  with pytest.raises(ValueError, match="row 3: 3 columns, expected 2"):
    data.load(write(tmp_path, "r.csv", "1,2\n3,4\n5,6,7\n"))


@pytest.mark.parametrize("text", ["inf", "-Infinity", "1e400"])
def test_infinite_csv_value(tmp_path, text):
  path = write(tmp_path, "n.csv", f"x,y\n1,2\n3,{text}\n")
  with pytest.raises(ValueError, match=r"row 3, column 2 \('y'\): "
                     f"'{text}' is infinite"):
    data.load(path)


def test_infinite_npy_value_is_located(tmp_path):
  x = np.ones((5, 3))
  x[3, 0] = np.inf
  x[1, 2] = np.nan  # missing: fine
  np.save(tmp_path / "n.npy", x)
  with pytest.raises(ValueError, match=r"row 3 \(0-based\), column 1: inf is "
                     "infinite"):
    data.load(tmp_path / "n.npy")


def test_npy_with_objects_is_refused_without_unpickling(tmp_path):
  np.save(tmp_path / "o.npy", np.array([{"a": 1}, None], dtype=object),
          allow_pickle=True)
  with pytest.raises(ValueError, match="never unpickles"):
    data.load(tmp_path / "o.npy")


def test_a_text_file_named_npy_is_not_advised_to_unpickle(tmp_path):
  path = write(tmp_path, "t.npy", "a,b\n1,2\n")
  with pytest.raises(ValueError, match="not a NumPy .npy file") as error:
    data.load(path)
  assert "pickle" not in str(error.value)


def test_truncated_binary_files_give_clear_errors(tmp_path):
  np.save(tmp_path / "full.npy", np.ones((1000, 4)))
  raw = (tmp_path / "full.npy").read_bytes()
  (tmp_path / "cut.npy").write_bytes(raw[:len(raw) // 2])
  with pytest.raises(ValueError, match="truncated or corrupted"):
    data.load(tmp_path / "cut.npy")
  import pyarrow as pa  # pylint: disable=g-import-not-at-top
  import pyarrow.parquet as pq  # pylint: disable=g-import-not-at-top
  pq.write_table(pa.table({"a": np.arange(1000.0)}), tmp_path / "full.parquet")
  raw = (tmp_path / "full.parquet").read_bytes()
  (tmp_path / "cut.parquet").write_bytes(raw[:len(raw) // 2])
  with pytest.raises(ValueError, match="Parquet"):
    data.load(tmp_path / "cut.parquet")


def test_npy_wrong_rank(tmp_path):
  np.save(tmp_path / "v.npy", np.ones(4))
  with pytest.raises(ValueError, match="expected a 2-D array"):
    data.load(tmp_path / "v.npy")


def test_width_mismatch_against_a_model(tmp_path):
  path = write(tmp_path, "w.csv", "1,2,3\n4,5,6\n")
  with pytest.raises(ValueError, match="3 columns, but the model expects 4"):
    data.read_table(path, expected_width=4)
  with pytest.raises(ValueError, match="3 columns, but the model expects 2"):
    validation.validate_array(np.ones((2, 3)), "x", expected_width=2)


def test_unsupported_extension(tmp_path):
  with pytest.raises(ValueError, match="unsupported file type '.xlsx'"):
    data.load(write(tmp_path, "d.xlsx", "1"))


def test_numeric_header_needs_the_header_option(tmp_path):
  path = write(tmp_path, "y.csv", "2019,2020,2021\n1.5,2.5,3.5\n")
  with pytest.warns(data.DataWarning, match="pass header=True"):
    table = data.read_table(path)
  assert table.values.shape == (2, 3)
  table = data.read_table(path, options=data.ReadOptions(header=True))
  assert table.feature_names == ("2019", "2020", "2021")
  np.testing.assert_array_equal(table.values, [[1.5, 2.5, 3.5]])


def test_header_false_reads_the_first_row_as_data(tmp_path):
  path = write(tmp_path, "n.csv", "a,b\n1,2\n")
  with pytest.raises(ValueError, match=r"row 1, column 1: 'a' is not a number"):
    data.read_table(path, options=data.ReadOptions(header=False))


def test_pandas_index_column_is_dropped_with_a_warning(tmp_path):
  path = write(tmp_path, "i.csv", ",a,b\n0,1.5,2\n1,3.5,4\n2,5.5,6\n")
  with pytest.warns(data.DataWarning, match="unnamed row index"):
    table = data.read_table(path)
  assert table.feature_names == ("a", "b")
  np.testing.assert_array_equal(table.values[:, 0], [1.5, 3.5, 5.5])
  kept = data.read_table(path, options=data.ReadOptions(index_column="keep"))
  assert kept.values.shape == (3, 3)
  # An unnamed first column that is not a row count is a feature.
  table = data.read_table(write(tmp_path, "f.csv", ",a\n5,1\n3,2\n"))
  assert table.values.shape == (2, 2)


@pytest.mark.parametrize("delimiter", [";", "\t", "|"])
def test_delimiter_is_detected(tmp_path, delimiter):
  text = f"a{delimiter}b\n0.1{delimiter}-1.3\n64.0{delimiter}2\n"
  table = data.read_table(write(tmp_path, "s.csv", text))
  assert table.feature_names == ("a", "b")
  np.testing.assert_array_equal(table.values, [[0.1, -1.3], [64.0, 2.0]])


def test_wrong_delimiter_is_named_in_the_error(tmp_path):
  path = write(tmp_path, "s.csv", "a;b\n0.1;-1.3\n")
  with pytest.raises(ValueError, match="read with delimiter ','"):
    data.read_table(path, options=data.ReadOptions(delimiter=","))


def test_encodings(tmp_path):
  latin = write(tmp_path, "l.csv", "caf\u00e9,b\n1,2\n3,4\n", "latin-1")
  with pytest.raises(ValueError) as error:
    data.read_table(latin)
  assert latin in str(error.value) and "row 1" in str(error.value)
  assert "encoding=" in str(error.value)
  table = data.read_table(latin, options=data.ReadOptions(encoding="latin-1"))
  assert table.feature_names[0] == "caf\u00e9"
  utf16 = tmp_path / "u.csv"
  utf16.write_bytes(codecs.BOM_UTF16_LE + "a,b\n1,2\n".encode("utf-16-le"))
  np.testing.assert_array_equal(data.load(utf16), [[1, 2]])
  bad_late = write(tmp_path, "b.csv", "a,b\n" + "1,2\n" * 5 + "3,\u00e9\n",
                   "latin-1")
  with pytest.raises(ValueError, match="row 7: cannot decode"):
    data.load(bad_late)



@pytest.mark.parametrize("rows", [23, 1000])
def test_streamed_blocks_match_the_whole_file(tmp_path, rows):
  x = np.random.default_rng(0).normal(size=(rows, 3))
  x[::7, 1] = np.nan
  path = tmp_path / "s.csv"
  path.write_text("a,b,c\n" + "\n".join(
      ",".join("" if np.isnan(v) else repr(float(v)) for v in r) for r in x))
  blocks = list(data.open_table(str(path)).iter_blocks(5))
  assert [start for _, start in blocks] == list(range(0, rows, 5))
  np.testing.assert_array_equal(np.concatenate([b for b, _ in blocks]), x)
  np.save(tmp_path / "s.npy", x)
  streamed = np.concatenate(
      [b for b, _ in data.iter_batches(str(tmp_path / "s.npy"), 7)])
  np.testing.assert_array_equal(streamed, x)


def test_a_bad_cell_deep_in_a_large_file_names_its_row(tmp_path):
  rows = 200_000  # several pyarrow blocks before the bad one
  x = np.random.default_rng(0).normal(size=(rows, 4))
  path = tmp_path / "big.csv"
  np.savetxt(path, x, delimiter=",", header="a,b,c,d", comments="")
  with open(path, "a") as f:
    f.write("1,2,oops,4\n5,6,7,8\n")
  with pytest.raises(ValueError, match=f"row {rows + 2}, column 3 \\('c'\\): "
                     "'oops' is not a number"):
    for _ in data.open_table(str(path)).iter_blocks(4096):
      pass


def test_the_fast_and_the_reference_csv_parsers_agree(tmp_path):
  # Cells that exercise both engines: spaces, quotes, signs, exponents.
  text = ('a,b,c\n" 1.5 ",+2,-.5e1\n3.,"NA",4e-3\n  7 ,?,1E2\n'
          '5,6,7\n\n8,9,10\n')
  path = write(tmp_path, "q.csv", text)
  reader = data.open_table(path)
  reference = np.concatenate(list(reader._python_blocks(100)))  # pylint: disable=protected-access
  fast = np.concatenate([b for b, _ in reader.iter_blocks(100)])
  np.testing.assert_array_equal(fast, reference)
  assert reference.shape == (5, 3) and np.isnan(reference[1, 1])


def test_default_data_is_wine():
  table = data.load_default()
  assert table.values.shape == (178, 13)
  assert table.feature_names[0] == "alcohol" and table.feature_names[-1] == "proline"
  assert np.isfinite(table.values).all()
  assert table.values[:, -1].max() > 1000 and table.values[:, 7].max() < 1


def test_split_is_seeded_disjoint_and_stable_under_streaming():
  x = np.arange(1000, dtype=np.float64)[:, None]
  train, validation = data.split(x, 0.25, seed=3)
  assert 200 < len(validation) < 300
  assert sorted(np.concatenate([train, validation])[:, 0]) == list(range(1000))
  np.testing.assert_array_equal(data.split(x, 0.25, seed=3)[1], validation)
  # The rule is per row index, so a streamed reader makes the same split.
  mask = data.validation_rows(np.arange(1000), 0.25, seed=3)
  np.testing.assert_array_equal(x[mask], validation)
  assert not np.array_equal(data.split(x, 0.25, seed=4)[1], validation)
  with pytest.raises(ValueError, match="fraction"):
    data.split(x, 1.0)
  tiny_train, tiny_validation = data.split(x[:3], 0.01)
  assert len(tiny_validation) == 1 and len(tiny_train) == 2



# -- Columns matched by name --------------------------------------------------


def test_columns_are_matched_by_name(tmp_path):
  x = np.arange(12.0).reshape(4, 3)
  path = tmp_path / "x.csv"
  np.savetxt(path, x[:, [2, 0, 1]], delimiter=",", header="c,a,b", comments="")
  with pytest.warns(data.DataWarning, match="matched to the model's by name"):
    reader = data.open_table(path, expected_width=3,
                                 expected_names=("a", "b", "c"))
  assert reader.feature_names == ("a", "b", "c")
  blocks = [block for block, _ in reader.iter_blocks(3)]
  np.testing.assert_array_equal(np.concatenate(blocks), x)
  # The same order as the model's: no note, the reader itself.
  np.savetxt(path, x, delimiter=",", header="a,b,c", comments="")
  with warnings.catch_warnings():
    warnings.simplefilter("error")
    data.open_table(path, expected_names=("a", "b", "c"))


@pytest.mark.parametrize("header,message", [
    ("a,b", "missing the model's column 'c'"),
    ("a,b,c,d", "unknown column 'd'"),
    ("x,y,z", "missing the model's columns 'a', 'b', 'c'; unknown columns "
     "'x', 'y', 'z'"),
])
def test_missing_or_unknown_columns_are_named(tmp_path, header, message):
  path = tmp_path / "x.csv"
  width = len(header.split(","))
  np.savetxt(path, np.ones((2, width)), delimiter=",", header=header,
             comments="")
  with pytest.raises(ValueError, match=re.escape(message)):
    data.open_table(path, expected_width=3, expected_names=("a", "b", "c"))


def test_a_file_without_header_is_read_by_position_with_a_note(tmp_path):
  path = tmp_path / "x.csv"
  np.savetxt(path, np.ones((2, 3)), delimiter=",")
  with pytest.warns(data.DataWarning, match="no header: its columns are "
                    "taken by position"):
    data.open_table(path, expected_width=3, expected_names=("a", "b", "c"))


def test_duplicate_column_names_are_refused(tmp_path):
  path = tmp_path / "x.csv"
  path.write_text("a,b,a\n1,2,3\n")
  with pytest.raises(ValueError, match="columns 1 and 3 are both named 'a'"):
    data.open_table(path)



# -- Messages that say what is wrong ------------------------------------------


def test_a_fifo_or_a_device_is_not_called_empty(tmp_path):
  fifo = tmp_path / "pipe.csv"
  os.mkfifo(fifo)
  with pytest.raises(ValueError, match="is a named pipe \\(FIFO\\), not a "
                     "regular file"):
    data.open_table(fifo)
  with pytest.raises(ValueError, match="is a character device"):
    data.open_table("/dev/zero")


@pytest.mark.parametrize("compress,name", [(gzip.compress, "gzip"),
                                           (bz2.compress, "bzip2"),
                                           (lzma.compress, "xz")])
def test_compressed_bytes_are_named(tmp_path, compress, name):
  for file_name in ("x.csv", "x.csv.gz"):
    path = tmp_path / file_name
    path.write_bytes(compress(b"a,b\n1,2\n3,4\n"))
    with pytest.raises(ValueError, match=f"is {name}-compressed, not a table; "
                       "decompress it first"):
      data.open_table(path)


def test_any_spelling_of_nan_is_missing_where_missing_values_are_allowed(
    tmp_path):
  path = tmp_path / "x.csv"
  path.write_text("a,b\n1,-nan\n+NaN,2\n3,4\n")
  np.testing.assert_array_equal(
      data.read_table(path).values, [[1, np.nan], [np.nan, 2], [3, 4]])
  with pytest.raises(ValueError, match="'-nan' is not a number \\(missing "
                     "values are not allowed: na_values is empty\\)"):
    data.read_table(path, options=data.ReadOptions(na_values=()))
