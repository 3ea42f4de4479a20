"""Imputation quality: tfvae next to the imputers people use, on hidden values.

For each table, missingness pattern and seed, a random set of cells is
hidden; every method sees the table with those gaps and fills them; the
errors on the hidden cells are reported in units of each column's standard
deviation (RMSE and MAE, lower is better), with the seconds each method
took (training included). Patterns: `mcar20` and `mcar50` hide each cell
with probability 0.2 / 0.5 (completely at random); `mar20` leaves the first
column whole and hides the other cells of a row with probability
0.4 * (the row's rank in the first column) / N, 20% on average: missing at
random, the gaps depending on an observed value.

Methods: column means, scikit-learn's `KNNImputer` (5 neighbours,
standardised columns), `IterativeImputer` with `BayesianRidge` (MICE) and
with `ExtraTreesRegressor` (the missForest stand-in), and tfvae with its
defaults: `tfvae` is what `tfvae-impute --data gappy.csv` runs
(`tfvae.training.train` with `tfvae-train`'s defaults and `refit=True`,
then `VAE.impute`; since tfvae 0.12), `tfvae_train` the model
`tfvae-train` keeps (no refit; before 0.12 `tfvae-impute` used it), and
`tfvae_api` the README's Python route (`VAE(input_dim=D)`, `adapt`,
`compile`, `fit` with a validation split, `impute`), which gives
`tfvae_train`'s numbers. Variants measure
design choices (`tfvae_k1`: the single-sample ELBO on batches with gaps;
`tfvae_gap_cond`: `tfvae` with the two bounds of batches with and without
gaps traced under a `tf.cond`, as up to 0.12.1;
`tfvae_ens3`: three refitted models of different seeds, their conditional
means averaged, with each member's own error kept for a paired
comparison).
`likelihood_complete` / `likelihood_with_gaps` measure what gaps cost the
density (held-out log-likelihood of complete rows).

    .venv/bin/python scripts/bench_impute.py [--tables wine,usmacro]
        [--patterns mcar20,mcar50,mar20] [--seeds 0,1,2] [--jobs 2]

Results are cached in bench_results/impute.jsonl (delete it to rerun).
"""

import argparse
import json
import os
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import _bench  # noqa: E402  (scripts/_bench.py, next to this file)

from tfvae import realdata  # noqa: E402
from tfvae import synthetic  # noqa: E402

TABLES = ("wine", "diabetes", "bdims", "concrete", "boston", "usmacro",
          "commodities", "kershaw", "weather")
PATTERNS = ("mcar20", "mcar50", "mar20")
BASELINES = ("column_mean", "knn", "iterative_bayesian_ridge",
             "iterative_extra_trees")
VARIANTS = {
    "tfvae": {"refit": True},
    "tfvae_train": {},
    "tfvae_k1": {"model_options": {"missing_train_samples": 1}},
    "tfvae_gaussian": {"likelihood": "gaussian"},
    "tfvae_latent_full": lambda columns: {"latent_dim": columns},
    # The recipe's latent size before tfvae 0.10.
    "tfvae_latent_half": lambda columns: {"latent_dim": max(2, columns // 2)},
    "tfvae_k50": {"num_train_samples": 50},
    "tfvae_patience200": {"patience": 200},
    "tfvae_no_atoms": {"num_atoms": 0},
    "tfvae_snippet": {"hidden_units": "snippet"},
    "tfvae_epochs300": {"patience": 0, "epochs": 300},
    "tfvae_atoms16": {"num_atoms": 16},
    "tfvae_atoms32": {"num_atoms": 32},
    "tfvae_refit_latent_full": lambda columns: {"refit": True,
                                                "latent_dim": columns},
    "tfvae_epochs1000": {"patience": 0, "epochs": 1000},
    # `tfvae`, with the bounds of batches with and without gaps under a
    # `tf.cond` (`VAE.gap_bound_in_one_graph = False`), as up to 0.12.1.
    "tfvae_gap_cond": {"refit": True},
}
# Rows kept of a larger table (a fixed random subset): the tree imputer's
# time grows with them, and the comparison does not need more.
MAX_ROWS = 2000


def load(name):
  if name == "surface":
    return synthetic.make_surface(2000, seed=0)
  values, _ = realdata.load(name)
  if len(values) > MAX_ROWS:
    keep = np.random.default_rng(0).choice(len(values), MAX_ROWS,
                                           replace=False)
    values = values[np.sort(keep)]
  return values


def hide(x, pattern, seed):
  """(x with NaN in the hidden cells, the mask of hidden cells)."""
  rng = np.random.default_rng(seed)
  uniforms = rng.uniform(size=x.shape)
  if pattern.startswith("mcar"):
    mask = uniforms < int(pattern[4:]) / 100
  elif pattern.startswith("mar"):
    rate = int(pattern[3:]) / 100
    rank = np.argsort(np.argsort(x[:, 0], kind="stable")) / len(x)
    mask = uniforms < 2 * rate * rank[:, None]
    mask[:, 0] = False
  else:
    raise ValueError(f"unknown pattern {pattern!r}")
  mask[mask.all(axis=1), 0] = False  # every row keeps one value
  hidden = x.copy()
  hidden[mask] = np.nan
  return hidden, mask


def impute_baseline(name, hidden, seed):
  from sklearn import ensemble  # pylint: disable=g-import-not-at-top
  from sklearn.experimental import enable_iterative_imputer  # noqa: F401  pylint: disable=g-import-not-at-top,unused-import
  from sklearn import impute  # pylint: disable=g-import-not-at-top
  from sklearn import linear_model  # pylint: disable=g-import-not-at-top
  if name == "column_mean":
    return np.where(np.isnan(hidden), np.nanmean(hidden, axis=0), hidden)
  mean, std = np.nanmean(hidden, axis=0), np.nanstd(hidden, axis=0)
  std = np.where(std > 0, std, 1.0)
  standard = (hidden - mean) / std
  if name == "knn":
    filled = impute.KNNImputer(n_neighbors=5).fit_transform(standard)
  elif name == "iterative_bayesian_ridge":
    filled = impute.IterativeImputer(
        estimator=linear_model.BayesianRidge(), max_iter=20,
        random_state=seed).fit_transform(standard)
  else:
    filled = impute.IterativeImputer(
        estimator=ensemble.ExtraTreesRegressor(n_estimators=100,
                                               random_state=seed, n_jobs=1),
        max_iter=10, random_state=seed).fit_transform(standard)
  return filled * std + mean


def train(table_values, seed, variant):
  """`tfvae-train`'s run on the table, as `tfvae-impute` starts one."""
  from tfvae import data as data_lib  # pylint: disable=g-import-not-at-top
  from tfvae import training  # pylint: disable=g-import-not-at-top
  options = VARIANTS[variant]
  options = dict(options(table_values.shape[1]) if callable(options)
                 else options)
  config = training.TrainConfig(seed=seed, verbose=0, logdir=None,
                                **{k: v for k, v in options.items()
                                   if k != "model_options"})
  return training.train(config, data_lib.Table(table_values, None, "bench"),
                        model_options=options.get("model_options")).model


def train_api(table_values, seed):
  """The README's Python route, with the constructor's and `fit`'s
  defaults (held-out rows split as `tfvae.data.split` does)."""
  import tf_keras  # pylint: disable=g-import-not-at-top
  import tfvae  # pylint: disable=g-import-not-at-top
  from tfvae import data as data_lib  # pylint: disable=g-import-not-at-top
  tf_keras.utils.set_random_seed(seed)
  train_rows, held_out = data_lib.split(table_values, 0.2, seed=seed)
  model = tfvae.VAE(input_dim=table_values.shape[1], seed=seed)
  model.adapt(train_rows)
  model.compile()
  model.fit(train_rows, validation_data=held_out, verbose=0)
  return model


def run_cell(cell):
  table, pattern, seed, method = cell
  start = time.perf_counter()
  x = load(table)
  result = {"table": table, "pattern": pattern, "seed": seed,
            "method": method}
  if method.startswith("likelihood"):
    order = np.random.default_rng(seed).permutation(len(x))
    cut = int(0.8 * len(x))
    train_rows, test_rows = x[order[:cut]], x[order[cut:]]
    if method == "likelihood_with_gaps":
      train_rows, _ = hide(train_rows, pattern, seed)
    model = train(train_rows, seed, "tfvae_train")
    result["log_likelihood"] = float(np.mean(
        model.marginal_log_likelihood(test_rows, 1000, seed=seed)))
  else:
    hidden, mask = hide(x, pattern, seed)
    if method in BASELINES:
      filled = impute_baseline(method, hidden, seed)
    elif method == "tfvae_api":
      filled = train_api(hidden, seed).impute(hidden, seed=seed)
    elif method.startswith("tfvae_ens"):
      # M refitted models of seeds seed, seed + 1000, ...; their
      # conditional means averaged. Each member's own error is kept, so
      # the gain over one model is paired on the same mask.
      members = [train(hidden, seed + 1000 * m, "tfvae").impute(
          hidden, seed=seed) for m in range(int(method[len("tfvae_ens"):]))]
      result["member_rmse"] = [_rmse(member, x, mask) for member in members]
      filled = np.mean(members, axis=0)
    else:
      import tfvae  # pylint: disable=g-import-not-at-top
      one_graph = tfvae.VAE.gap_bound_in_one_graph
      tfvae.VAE.gap_bound_in_one_graph = method != "tfvae_gap_cond"
      try:
        filled = train(hidden, seed, method).impute(hidden, seed=seed)
      finally:
        tfvae.VAE.gap_bound_in_one_graph = one_graph
    result["rmse"] = _rmse(filled, x, mask)
    result["mae"] = float(np.mean(np.abs(_errors(filled, x, mask))))
  result["seconds"] = time.perf_counter() - start
  return result


def _errors(filled, x, mask):
  """The hidden cells' errors in units of each column's standard deviation."""
  std = x.std(axis=0)
  return ((filled - x) / np.where(std > 0, std, 1.0))[mask]


def _rmse(filled, x, mask):
  return float(np.sqrt(np.mean(_errors(filled, x, mask)**2)))


def _init_worker():
  os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
  os.environ["OMP_NUM_THREADS"] = "1"


def _mean(results, table, pattern, method, field="rmse"):
  values = [r[field] for r in results if r["table"] == table
            and r["pattern"] == pattern and r["method"] == method
            and field in r]
  return (np.mean(values), np.std(values), len(values)) if values else None


def summarise(results, tables, patterns, methods):
  """A Markdown table of mean RMSE per (table, pattern), the seconds each
  method took, and how often each tfvae route is at or below MICE and
  the missForest stand-in."""
  shown = [m for m in methods if not m.startswith("likelihood")]
  print("\n| table, pattern | " + " | ".join(shown) + " |")
  print("| --- " * (len(shown) + 1) + "|")
  cells = []
  for table in tables:
    for pattern in patterns:
      row = {m: _mean(results, table, pattern, m) for m in shown}
      if not any(row.values()):
        continue
      cells.append((table, pattern, row))
      best = min(v[0] for v in row.values() if v)
      text = []
      for m in shown:
        if row[m] is None:
          text.append("")
        else:
          figure = f"{row[m][0]:.3f}"
          text.append(f"**{figure}**" if row[m][0] == best else figure)
      print(f"| {table}, {pattern} | " + " | ".join(text) + " |")
  print("\nseconds per run (training included), mean over cells:")
  for m in shown:
    seconds = [r["seconds"] for r in results if r["method"] == m
               and r["table"] in tables and r["pattern"] in patterns]
    if seconds:
      print(f"  {m:<26} {np.mean(seconds):8.1f} s (max {np.max(seconds):.0f})")
  for m in shown:
    runs = [r for r in results if r["method"] == m and "member_rmse" in r
            and r["table"] in tables and r["pattern"] in patterns]
    for name, of in (("its first member", lambda r: r["member_rmse"][0]),
                     ("its members' mean", lambda r: np.mean(r["member_rmse"]))):
      if len(runs) > 1:  # the ensemble against one model, paired
        gains = np.array([r["rmse"] - of(r) for r in runs])
        print(f"{m} minus {name}: {gains.mean():+.4f} RMSE (SE "
              f"{gains.std(ddof=1) / np.sqrt(len(gains)):.4f}, lower in "
              f"{int((gains < 0).sum())} of {len(gains)} runs)")
  for mine in ("tfvae", "tfvae_api"):
    for anchor in ("iterative_bayesian_ridge", "iterative_extra_trees"):
      pairs = [(row[mine][0], row[anchor][0]) for _, _, row in cells
               if row.get(mine) and row.get(anchor)]
      if pairs:
        wins = sum(a <= b for a, b in pairs)
        print(f"{mine} at or below {anchor}: {wins} of {len(pairs)} cells")
  for table in tables:
    for pattern in patterns:
      complete = _mean(results, table, pattern, "likelihood_complete",
                       "log_likelihood")
      gaps = _mean(results, table, pattern, "likelihood_with_gaps",
                   "log_likelihood")
      if complete and gaps:
        print(f"{table}, {pattern}: held-out log-likelihood of complete rows, "
              f"trained complete {complete[0]:.3f}, with gaps {gaps[0]:.3f}")


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--tables", default=",".join(TABLES))
  parser.add_argument("--patterns", default=",".join(PATTERNS))
  parser.add_argument("--seeds", default="0,1,2")
  parser.add_argument("--methods", default=",".join(
      BASELINES + ("tfvae", "tfvae_api")))
  parser.add_argument("--jobs", type=int, default=2)
  parser.add_argument("--summary", action="store_true",
                      help="summarise the cached results only")
  parser.add_argument("--results", default=os.path.join(
      ROOT, "bench_results", "impute.jsonl"))
  args = parser.parse_args()
  tables = args.tables.split(",")
  patterns = args.patterns.split(",")
  seeds = [int(s) for s in args.seeds.split(",")]
  methods = args.methods.split(",")
  os.makedirs(os.path.dirname(args.results), exist_ok=True)
  cached = []
  if os.path.exists(args.results):
    with open(args.results) as f:
      cached = [json.loads(line) for line in f if line.strip()]
    unique = {}
    for r in cached:
      if "pattern" in r:
        unique.setdefault((r["table"], r["pattern"], r["seed"], r["method"]), r)
    cached = list(unique.values())
  done = {(r["table"], r["pattern"], r["seed"], r["method"]) for r in cached}
  cells = [(t, p, s, m) for t in tables for p in patterns for s in seeds
           for m in methods if (t, p, s, m) not in done]
  if cells and not args.summary:
    print(f"{len(cells)} cells to run ({len(done)} cached)", flush=True)
    for cell, result in _bench.run_cells(cells, run_cell, args.jobs,
                                         args.results, _init_worker):
      cached.append(result)
      print(f"  {cell}: {result.get('rmse', result.get('log_likelihood')):.4f}"
            f" ({result['seconds']:.0f} s)", flush=True)
  summarise([r for r in cached if r["table"] in tables], tables, patterns,
            methods)


if __name__ == "__main__":
  main()
