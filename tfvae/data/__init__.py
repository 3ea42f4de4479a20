"""Reading and validating real-valued tables: CSV, NPY and Parquet.

This package imports neither TensorFlow nor TFP, so that the command line can
read and check a data file before paying for TensorFlow's start-up.

Values are float64 from the file to the model: a column such as
`1e6 + N(0, 0.01)` or Unix seconds (1.7e9) keeps its variation, which
float32 (spacing 0.0625 at 1e6, 128 at 1.7e9) would round away.

Missing values are NaN. In CSV files the empty cell and the tokens in
`DEFAULT_NA_VALUES` are missing (configurable with `ReadOptions.na_values`);
in `.npy` files NaN is missing; in Parquet files nulls and NaN are missing.
Infinite values and any other non-numeric text are errors naming the file,
the row and the column. Rows are the file's line numbers for CSV (1-based,
the header included, so a reported row can be opened in an editor) and
0-based data rows for NPY and Parquet.

NumPy files are read with `allow_pickle=False`: a data file never runs code.

Readers stream: `open_table(path).iter_blocks(rows)` yields float64 blocks
with memory bounded by the block, whatever the file's size. CSV is parsed by
pyarrow's multithreaded reader when the file is well formed; whenever pyarrow
finds anything it does not accept, the standard library's `csv` module takes
over from the same row, so every file is read with the same rules and every
error names its row and column.

The embedded default is the UCI Wine recognition data (178 examples, 13
real-valued features on very different scales), shipped as
`tfvae/datasets/wine.csv`.

Modules: `formats` (options, tables, numbers in text), `csv_reader`,
`readers` (opening any file, whole tables, the embedded data), `splits`.
"""

from tfvae.data.formats import DEFAULT_NA_VALUES
from tfvae.data.formats import DELIMITERS
from tfvae.data.formats import INDEX_COLUMN_CHOICES
from tfvae.data.formats import DataWarning
from tfvae.data.formats import ReadOptions
from tfvae.data.formats import Table
from tfvae.data.formats import parse_number
from tfvae.data.readers import iter_batches
from tfvae.data.readers import load
from tfvae.data.readers import load_default
from tfvae.data.readers import open_table
from tfvae.data.readers import options_for_model
from tfvae.data.readers import read_table
from tfvae.data.splits import split
from tfvae.data.splits import validation_rows

__all__ = ["DEFAULT_NA_VALUES", "DELIMITERS", "INDEX_COLUMN_CHOICES",
           "DataWarning", "ReadOptions", "Table", "parse_number",
           "iter_batches", "load", "load_default", "open_table",
           "options_for_model", "read_table", "split", "validation_rows"]
