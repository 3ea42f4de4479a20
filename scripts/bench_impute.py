"""Imputation quality: tfvae next to the imputers people use, on hidden values.

For each data set, missing rate (MCAR) and seed, a random set of cells is
hidden; every method sees the table with those gaps and fills them; the
errors on the hidden cells are reported in units of each column's standard
deviation (RMSE and MAE, lower is better). Methods: column means,
scikit-learn's `KNNImputer` (5 neighbours, standardised columns),
`IterativeImputer` with `BayesianRidge` and with `ExtraTreesRegressor` (the
missForest stand-in), and tfvae (`tfvae-train`'s defaults on the table with
gaps, then `VAE.impute`, the conditional mean by importance sampling).
tfvae variants measure the design choices: the single-sample ELBO instead
of the importance-weighted bound on batches with gaps (`k1`), and an
encoder without the missing-value indicator (`no_indicator`).

A second part measures what gaps cost the density: the held-out
log-likelihood of complete test rows for a model trained on the training
rows with gaps against one trained on them complete.

    .venv/bin/python scripts/bench_impute.py [--tables wine,surface]
        [--rates 0.2,0.5] [--seeds 0,1,2] [--jobs 2]
"""

import argparse
import concurrent.futures
import json
import multiprocessing
import os
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from tfvae import realdata  # noqa: E402
from tfvae import synthetic  # noqa: E402

BASELINES = ("column_mean", "knn", "iterative_bayesian_ridge",
             "iterative_extra_trees")
VARIANTS = {
    "tfvae": {},
    "tfvae_k1": {"model_options": {"missing_train_samples": 1}},
    "tfvae_no_indicator": {"model_options": {"missing_indicator": False}},
}


def load(name):
  if name == "surface":
    return synthetic.make_surface(2000, seed=0)
  values, _ = realdata.load(name)
  return values


def hide(x, rate, seed):
  mask = np.random.default_rng(seed).uniform(size=x.shape) < rate
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
  from tfvae import data as data_lib  # pylint: disable=g-import-not-at-top
  from tfvae import training  # pylint: disable=g-import-not-at-top
  options = dict(VARIANTS[variant])
  config = training.TrainConfig(seed=seed, verbose=0, logdir=None,
                                **{k: v for k, v in options.items()
                                   if k != "model_options"})
  return training.train(config, data_lib.Table(table_values, None, "bench"),
                        model_options=options.get("model_options")).model


def run_cell(cell):
  table, rate, seed, method = cell
  start = time.perf_counter()
  x = load(table)
  result = {"table": table, "rate": rate, "seed": seed, "method": method}
  if method.startswith("likelihood"):
    order = np.random.default_rng(seed).permutation(len(x))
    cut = int(0.8 * len(x))
    train_rows, test_rows = x[order[:cut]], x[order[cut:]]
    if method == "likelihood_with_gaps":
      train_rows, _ = hide(train_rows, rate, seed)
    model = train(train_rows, seed, "tfvae")
    result["log_likelihood"] = float(np.mean(
        model.marginal_log_likelihood(test_rows, 1000, seed=seed)))
  else:
    hidden, mask = hide(x, rate, seed)
    if method in BASELINES:
      filled = impute_baseline(method, hidden, seed)
    else:
      filled = train(hidden, seed, method).impute(hidden, 1000, seed=seed)
    std = x.std(axis=0)
    std = np.where(std > 0, std, 1.0)
    error = ((filled - x) / std)[mask]
    result["rmse"] = float(np.sqrt(np.mean(error**2)))
    result["mae"] = float(np.mean(np.abs(error)))
  result["seconds"] = time.perf_counter() - start
  return result


def _init_worker():
  os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
  os.environ["OMP_NUM_THREADS"] = "1"


def summarise(results, tables, rates, methods):
  for table in tables:
    for rate in rates:
      cells = [r for r in results if r["table"] == table and r["rate"] == rate]
      if not cells:
        continue
      seeds = sorted({r["seed"] for r in cells})
      print(f"\n## {table}, {rate:.0%} missing (MCAR), seeds {seeds}: error on "
            "the hidden cells, in column standard deviations")
      print(f"{'method':<26} {'RMSE':>14} {'MAE':>14}")
      for method in methods:
        mine = [r for r in cells if r["method"] == method and "rmse" in r]
        if not mine:
          continue
        rmse = np.array([r["rmse"] for r in mine])
        mae = np.array([r["mae"] for r in mine])
        print(f"{method:<26} {rmse.mean():>7.4f} ± {rmse.std():.4f} "
              f"{mae.mean():>7.4f} ± {mae.std():.4f}")
      likelihood = {m: [r["log_likelihood"] for r in cells if r["method"] == m]
                    for m in ("likelihood_complete", "likelihood_with_gaps")}
      if all(likelihood.values()):
        complete = np.array(likelihood["likelihood_complete"])
        gaps = np.array(likelihood["likelihood_with_gaps"])
        print(f"held-out log-likelihood of complete rows: trained complete "
              f"{complete.mean():.4f} ± {complete.std():.4f}, trained with "
              f"{rate:.0%} missing {gaps.mean():.4f} ± {gaps.std():.4f}")


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--tables", default="wine,surface")
  parser.add_argument("--rates", default="0.2,0.5")
  parser.add_argument("--seeds", default="0,1,2")
  parser.add_argument("--methods", default=",".join(
      BASELINES + tuple(VARIANTS) + ("likelihood_complete",
                                     "likelihood_with_gaps")))
  parser.add_argument("--jobs", type=int, default=2)
  parser.add_argument("--results", default=os.path.join(
      ROOT, "bench_results", "impute.jsonl"))
  args = parser.parse_args()
  tables = args.tables.split(",")
  rates = [float(r) for r in args.rates.split(",")]
  seeds = [int(s) for s in args.seeds.split(",")]
  methods = args.methods.split(",")
  os.makedirs(os.path.dirname(args.results), exist_ok=True)
  cached = []
  if os.path.exists(args.results):
    with open(args.results) as f:
      cached = [json.loads(line) for line in f if line.strip()]
  done = {(r["table"], r["rate"], r["seed"], r["method"]) for r in cached}
  cells = [(t, r, s, m) for t in tables for r in rates for s in seeds
           for m in methods if (t, r, s, m) not in done]
  if cells:
    print(f"{len(cells)} cells to run ({len(done)} cached)", flush=True)
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(
        args.jobs, mp_context=context, initializer=_init_worker) as pool, \
        open(args.results, "a") as out:
      futures = {pool.submit(run_cell, cell): cell for cell in cells}
      for future in concurrent.futures.as_completed(futures):
        cell = futures[future]
        try:
          result = future.result()
        except Exception as error:  # pylint: disable=broad-except
          print(f"  FAILED {cell}: {type(error).__name__}: {error}", flush=True)
          continue
        out.write(json.dumps(result) + "\n")
        out.flush()
        cached.append(result)
        print(f"  {cell}: {result.get('rmse', result.get('log_likelihood')):.4f}"
              f" ({result['seconds']:.0f} s)", flush=True)
  summarise([r for r in cached if r["table"] in tables], tables, rates, methods)


if __name__ == "__main__":
  main()
