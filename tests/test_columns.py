"""Tests for tfvae.data.columns and the readers' column types."""

import re
import warnings

import numpy as np
import pytest

from tfvae import data
from tfvae.data import columns


def write(tmp_path, name, text):
  path = tmp_path / name
  path.write_text(text)
  return str(path)


@pytest.mark.parametrize("cells, kind", [
    (["1", "2.5", "-3e4"], columns.REAL),
    (["M", "F", "F"], columns.CATEGORICAL),
    (["12", "13", "1e2", "oops"], columns.REAL),  # a typo: reported, not text
    (["red", "blue", "3"], columns.CATEGORICAL),
    ([], columns.REAL),
])
def test_a_column_is_text_when_most_of_its_distinct_cells_are(cells, kind):
  assert columns.infer_kind(cells) == kind


def test_booleans_in_any_case_are_one_binary_level_each(tmp_path):
  path = write(tmp_path, "b.csv",
               "x,smoker\n1,Yes\n2,no\n3,YES\n4,\n5,No\n6,yes\n")
  table = data.read_table(path)
  assert table.categories == (None, ("no", "yes"))
  np.testing.assert_array_equal(table.values[:, 1],
                                [1, 0, 1, np.nan, 0, 1])
  assert columns.type_name(table.categories[1]) == columns.BINARY


def test_text_levels_are_sorted_codes_and_quoted_delimiters_stay_in_a_level(
    tmp_path):
  path = write(tmp_path, "c.csv",
               'x,city\n1,"Paris, FR"\n2,Lyon\n3,NA\n4,"Paris, FR"\n5,Nice\n')
  table = data.read_table(path)
  assert table.categories == (None, ("Lyon", "Nice", "Paris, FR"))
  np.testing.assert_array_equal(table.values[:, 1], [2, 0, np.nan, 2, 1])
  # The pyarrow parser and the csv module give the same codes.
  reader = data.open_table(path)
  python_rows = np.concatenate(
      [b for b in reader._python_blocks(100)])  # pylint: disable=protected-access
  np.testing.assert_array_equal(python_rows, table.values)


def test_an_identifier_column_is_left_out_with_a_warning(tmp_path):
  rows = "\n".join(f"id{i},{i % 3},{'ab'[i % 2]}" for i in range(40))
  path = write(tmp_path, "i.csv", "name,x,g\n" + rows + "\n")
  with pytest.warns(data.DataWarning, match=r"'name'.*identifier"):
    table = data.read_table(path)
  assert table.feature_names == ("x", "g")
  assert table.ignored_columns == ("name",)
  assert table.categories == (None, ("a", "b"))
  # Typed by the user, it is kept (40 levels is within MAX_LEVELS).
  table = data.read_table(path, options=data.ReadOptions(
      column_types={"name": "categorical", "x": "drop"}))
  assert table.feature_names == ("name", "g")
  assert len(table.categories[0]) == 40


def test_many_distinct_texts_are_not_a_category(tmp_path):
  rows = "\n".join(f"{i},t{i % 500}" for i in range(1000))
  path = write(tmp_path, "m.csv", "x,note\n" + rows + "\n")
  with pytest.warns(data.DataWarning, match="more than 64 distinct"):
    table = data.read_table(path)
  assert table.feature_names == ("x",) and table.categories is None
  with pytest.raises(ValueError, match="too many levels"):
    data.read_table(path, options=data.ReadOptions(
        column_types={"note": "categorical"}))


def test_a_numeric_column_can_be_typed_categorical(tmp_path):
  path = write(tmp_path, "n.csv", "zip,x\n75001,1.5\n69001,2\n75001,3\n")
  table = data.read_table(path, options=data.ReadOptions(
      column_types={"zip": "categorical"}))
  assert table.categories == (("69001", "75001"), None)
  np.testing.assert_array_equal(table.values[:, 0], [1, 0, 1])


def test_all_numeric_files_are_read_as_before(tmp_path):
  path = write(tmp_path, "r.csv", "a,b\n1,2\n3,\n")
  table = data.read_table(path)
  assert table.categories is None and table.ignored_columns == ()
  np.testing.assert_array_equal(table.values, [[1, 2], [3, np.nan]])


@pytest.mark.parametrize("text, message", [
    ("age=counts", "unknown type 'counts'"),
    ("age", "is not name=type"),
    ("=real", "is not name=type"),
])
def test_bad_column_types_are_named(text, message):
  with pytest.raises(ValueError, match=message):
    columns.parse_column_types(text)


def test_column_types_naming_a_missing_column_is_an_error(tmp_path):
  path = write(tmp_path, "r.csv", "a,b\n1,2\n")
  with pytest.raises(ValueError, match="names 'c', which is not a column"):
    data.read_table(path, options=data.ReadOptions(
        column_types={"c": "real"}))


def test_columns_are_chosen_or_dropped_by_name(tmp_path):
  path = write(tmp_path, "c.csv", "a,b,c,d\n1,x,2,3\n4,y,5,6\n")
  table = data.read_table(path, options=data.ReadOptions(columns=("d", "b")))
  # The file's order, the others left out.
  assert table.feature_names == ("b", "d")
  assert table.ignored_columns == ("a", "c")
  assert table.categories == (("x", "y"), None)
  np.testing.assert_array_equal(table.values, [[0, 3], [1, 6]])
  table = data.read_table(path, options=data.ReadOptions(
      column_types={"b": "drop", "c": "drop"}))
  assert table.feature_names == ("a", "d")
  with pytest.raises(ValueError, match=r"--columns names 'e', not a column"):
    data.read_table(path, options=data.ReadOptions(columns=("a", "e")))
  with pytest.raises(ValueError, match="'a' both chosen and dropped"):
    data.read_table(path, options=data.ReadOptions(
        columns=("a",), column_types={"a": "drop"}))
  headless = write(tmp_path, "h.csv", "1,2\n3,4\n")
  with pytest.raises(ValueError, match="only in a file with a header"):
    data.read_table(headless, options=data.ReadOptions(columns=("a",)))
  np.save(tmp_path / "n.npy", np.ones((3, 2)))
  with pytest.raises(ValueError, match="is for CSV and Parquet files"):
    data.read_table(str(tmp_path / "n.npy"), options=data.ReadOptions(
        columns=("a",)))


def test_a_text_cell_in_a_column_typed_real_is_named(tmp_path):
  path = write(tmp_path, "t.csv", "a,b\n1,x\n2,y\n")
  with pytest.raises(ValueError, match=r"row 2, column 2 \('b'\): 'x' is not "
                     "a number"):
    data.read_table(path, options=data.ReadOptions(column_types={"b": "real"}))


def test_unseen_levels_at_scoring_are_missing_with_a_warning(tmp_path):
  path = write(tmp_path, "s.csv", "g,x\nb,1\nz,2\na,3\nz,4\n")
  options = data.options_for_model(None, [("a", "b"), None])
  with pytest.warns(data.DataWarning) as caught:
    reader = data.open_table(path, options, 2, ("g", "x"))
    values = np.concatenate([b for b, _ in reader.iter_blocks()])
  np.testing.assert_array_equal(values[:, 0], [1, np.nan, 0, np.nan])
  messages = [str(w.message) for w in caught]
  assert len(messages) == 1 and "row 3, column 1 ('g'): 'z'" in messages[0]
  # Columns in another order are matched by name, with their levels.
  path = write(tmp_path, "o.csv", "x,g\n1,b\n2,a\n")
  with warnings.catch_warnings():
    warnings.simplefilter("ignore", data.DataWarning)
    reader = data.open_table(path, options, 2, ("g", "x"))
    values = np.concatenate([b for b, _ in reader.iter_blocks()])
  np.testing.assert_array_equal(values, [[1, 1], [0, 2]])


def test_tables_of_texts_encode_and_decode():
  categories = (None, ("no", "yes"), ("a", "b", "c"))
  frame = np.array([[1.5, True, "c"], [None, "No", "a"], [2.0, "yes", None]],
                   dtype=object)
  codes = columns.encode_frame(frame, categories)
  np.testing.assert_array_equal(codes, [[1.5, 1, 2], [np.nan, 0, 0],
                                        [2.0, 1, np.nan]])
  decoded = columns.decode(codes, categories)
  assert decoded[0].tolist() == [1.5, "yes", "c"]
  assert decoded[2, 2] is None
  with pytest.raises(ValueError, match=r"row 1, column 3: 'd' is not one of"):
    columns.encode_frame(np.array([[1.0, "no", "a"], [1.0, "no", "d"]],
                                  dtype=object), categories)
  with pytest.raises(ValueError, match=r"row 0, column 2: 2\.0 is not a level "
                     "code"):
    columns.check_codes(np.array([[0.0, 2.0, 1.0]]), categories)


def test_parquet_text_columns_are_typed_as_in_csv(tmp_path):
  pa = pytest.importorskip("pyarrow")
  pq = pytest.importorskip("pyarrow.parquet")
  table = pa.table({
      "age": [30, 40, None, 50] * 30,
      "city": pa.array(["Paris", " Lyon", None, "NA"] * 30).dictionary_encode(),
      "smoker": ["yes", "NO", "no", None] * 30,
      "id": [f"x{i}" for i in range(120)],
      "score": ["1.5", "2", "NA", "3"] * 30})
  path = str(tmp_path / "m.parquet")
  pq.write_table(table, path)
  with pytest.warns(data.DataWarning, match=r"'id'.*identifier"):
    read = data.read_table(path)
  # The same types and codes as the CSV rules give.
  assert read.feature_names == ("age", "city", "smoker", "score")
  assert read.ignored_columns == ("id",)
  assert read.categories == (None, ("Lyon", "Paris"), ("no", "yes"), None)
  np.testing.assert_array_equal(read.values[:4], [
      [30, 1, 1, 1.5], [40, 0, 0, 2], [np.nan, np.nan, 0, np.nan],
      [50, np.nan, np.nan, 3]])
  # Read with a model's types, in the model's column order: an unseen
  # level is missing, with a warning naming it.
  other = pa.table({"smoker": ["yes", "no"], "city": ["Rome", "Paris"],
                    "age": [1.0, 2.0], "id": ["a", "b"],
                    "score": ["4", "5"]})
  pq.write_table(other, str(tmp_path / "o.parquet"))
  options = data.options_for_model(None, read.categories, read.ignored_columns)
  with pytest.warns(data.DataWarning, match="'Rome' is not one of the levels"):
    reader = data.open_table(str(tmp_path / "o.parquet"), options, 4,
                             read.feature_names)
    values = np.concatenate([b for b, _ in reader.iter_blocks()])
  np.testing.assert_array_equal(values, [[1, np.nan, 1, 4], [2, 1, 0, 5]])
  with pytest.raises(ValueError, match=r"'x' is not a number"):
    pq.write_table(pa.table({"a": [1.0, 2.0], "b": ["1", "x"]}),
                   str(tmp_path / "b.parquet"))
    data.read_table(str(tmp_path / "b.parquet"), options=data.ReadOptions(
        column_types={"b": "real"}))


def test_numeric_columns_are_typed_real_positive_or_count():
  rng = np.random.default_rng(0)
  income = np.exp(rng.normal(10.0, 0.8, 500))
  visits = rng.negative_binomial(2, 0.3, 500).astype(float)
  values = np.stack([income, visits, rng.normal(size=500),
                     rng.uniform(1.0, 2.0, 500),  # positive, not skewed
                     rng.integers(0, 2, 500).astype(float),  # two values
                     np.round(rng.normal(5, 2, 500), 1),
                     25.0 * rng.integers(0, 100, 500),  # grams by 25
                     rng.integers(172, 232, 500).astype(float)], 1)  # mm
  values[::10, 0] = np.nan  # gaps do not change a type
  assert [columns.infer_numeric_type(values[:, i]) for i in range(8)] == [
      "positive", "count", "real", "real", "real", "real", "real", "real"]
  values = values[:, :6]
  # A categorical column keeps its levels' type; overrides win; without
  # inference every numeric column is real.
  categories = [None, None, ("a", "b", "c"), None, None, None]
  assert columns.column_types_of(
      values, categories, list("abcdef"), {"d": "positive"}) == (
          "positive", "count", "categorical", "positive", "real", "real")
  assert columns.column_types_of(values, categories, list("abcdef"),
                                 {"b": "real"}, infer=False) == (
      "real", "real", "categorical", "real", "real", "real")
  lines = columns.describe(categories, list("abcdef"), values,
                           ("positive", "count", "categorical", "real",
                            "real", "real"))
  assert lines[0].startswith("a: positive, ") and "10% missing" in lines[0]
  assert lines[1].startswith("b: count, 0 .. ")


@pytest.mark.parametrize("kind, value, rule", [
    ("positive", 0.0, "a positive column holds values above 0"),
    ("positive", -2.5, "a positive column holds values above 0"),
    ("count", -1.0, "a count column holds non-negative integers"),
    ("count", 2.5, "a count column holds non-negative integers"),
])
def test_a_value_its_type_rules_out_is_named_by_row_and_column(kind, value,
                                                               rule):
  values = np.array([[1.0, 2.0], [np.nan, 3.0], [4.0, value]])
  with pytest.raises(ValueError, match=re.escape(
      f"t.csv row 3, column 2 ('n'): {value!r} ({rule}")):
    columns.check_numeric_values(values, ("real", kind), ["m", "n"], "t.csv",
                                 first_row=1)
  # NaN is a gap, never an error.
  columns.check_numeric_values(values[:2], ("real", kind), ["m", "n"])
