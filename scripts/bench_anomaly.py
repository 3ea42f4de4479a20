"""Anomaly detection: tfvae's scores next to the detectors people use.

The protocol of ADBench (Han et al. 2022) on labelled public tables that
ship with installable packages (`tfvae.realdata.LABELLED`: a rare or
distinct class is the anomalies, as ODDS builds them): for each seed a
stratified 70/30 split; every method is fitted unsupervised on the training
split with its anomalies left in and scores the test split; AUROC and
AUPRC (average precision) on the test split. Baselines: PyOD's
IsolationForest, KNN, LOF, ECOD and COPOD with their defaults, and a
Gaussian mixture whose number of components (1 to 10) minimises the BIC,
all on columns min-max scaled on the training split. tfvae: `tfvae-train`'s
defaults on the training split as a CSV file, then `anomaly_score`
(-log p(x), K = 1000); its training and scoring times are reported.

    .venv/bin/pip install -e '.[bench]'
    .venv/bin/python scripts/bench_anomaly.py [--tables wdbc,pima]
        [--seeds 0,1,2] [--methods tfvae,iforest,...] [--jobs 2]

Results are cached in `--results` (one JSON line per table, seed and
method), so an interrupted run continues where it stopped.
"""

import argparse
import concurrent.futures
import json
import multiprocessing
import os
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from tfvae import realdata  # noqa: E402

BASELINES = ("iforest", "knn", "lof", "ecod", "copod", "gmm_bic")
# tfvae_trim10: `tfvae-train --trim 0.1` (a first fit's least likely 10% of
# rows left out before the scoring model is trained; what `tfvae-score`
# trains without a checkpoint); tfvae_trim20: a fifth left out.
VARIANTS = {"tfvae": {}, "tfvae_trim10": {"trim": 0.1},
            "tfvae_trim20": {"trim": 0.2}}
METHODS = tuple(VARIANTS) + BASELINES
# What tfvae's atoms are in the results written now: point masses scored by
# their probability, found as values that stand out of their column
# (tfvae 0.3). Earlier rows (spikes of a width) are read back as the method
# "tfvae_spikes", for comparison.
ATOMS = "point masses that stand out"


def split(is_anomaly, seed):
  """A stratified 70/30 split: (train rows, test rows)."""
  rng = np.random.default_rng(seed)
  train, test = [], []
  for label in (False, True):
    rows = rng.permutation(np.flatnonzero(is_anomaly == label))
    cut = int(round(0.7 * len(rows)))
    train.append(rows[:cut])
    test.append(rows[cut:])
  return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))


def baseline_scores(method, train, test, seed):
  """Scores of the test rows (higher: stranger) from a baseline."""
  low, high = train.min(axis=0), train.max(axis=0)
  span = np.where(high > low, high - low, 1.0)
  train, test = (train - low) / span, (test - low) / span
  if method == "gmm_bic":
    from sklearn import mixture  # pylint: disable=g-import-not-at-top
    best = min((mixture.GaussianMixture(k, random_state=seed,
                                        reg_covar=1e-6).fit(train)
                for k in range(1, 11) if k < len(train) // 2),
               key=lambda model: model.bic(train))
    return -best.score_samples(test)
  from pyod.models import copod, ecod, iforest, knn, lof  # pylint: disable=g-import-not-at-top
  detector = {"iforest": lambda: iforest.IForest(random_state=seed),
              "knn": knn.KNN, "lof": lof.LOF, "ecod": ecod.ECOD,
              "copod": copod.COPOD}[method]()
  detector.fit(train)
  return detector.decision_function(test)


def tfvae_scores(train, test, names, seed, options=None):
  """(scores, training seconds, scoring seconds) of `tfvae-train`'s
  defaults (and `options`, further `TrainConfig` fields)."""
  from tfvae import training  # pylint: disable=g-import-not-at-top
  with tempfile.TemporaryDirectory() as folder:
    path = os.path.join(folder, "train.csv")
    header = ",".join(f'"{name}"' for name in names)
    np.savetxt(path, train, delimiter=",", header=header, comments="",
               fmt="%.17g")
    start = time.monotonic()
    summary = training.run(training.TrainConfig(
        data=path, seed=seed, verbose=0, logdir=None, checkpoint_dir=None,
        **(options or {})))
    trained = time.monotonic()
  scores = summary.model.anomaly_score(test, num_samples=1000, seed=seed)
  return scores, trained - start, time.monotonic() - trained


def run_one(table, seed, method):
  from sklearn import metrics  # pylint: disable=g-import-not-at-top
  values, is_anomaly, names = realdata.load_labelled(table)
  train_rows, test_rows = split(is_anomaly, seed)
  train, test = values[train_rows], values[test_rows]
  result = {"table": table, "seed": seed, "method": method}
  start = time.monotonic()
  if method in VARIANTS:
    scores, result["train_s"], result["score_s"] = tfvae_scores(
        train, test, names, seed, VARIANTS[method])
    result["atoms"] = ATOMS
  else:
    scores = baseline_scores(method, train, test, seed)
    result["train_s"] = time.monotonic() - start
  labels = is_anomaly[test_rows]
  result["auroc"] = float(metrics.roc_auc_score(labels, scores))
  result["auprc"] = float(metrics.average_precision_score(labels, scores))
  return result


def summarize(results, tables, methods):
  """A Markdown table of mean AUROC (AUPRC) per table and method."""
  def mean(table, method, key):
    values = [r[key] for r in results
              if r["table"] == table and r["method"] == method]
    return float(np.mean(values)) if values else float("nan")

  lines = ["| table | " + " | ".join(methods) + " |",
           "| --- | " + " | ".join("---" for _ in methods) + " |"]
  for table in tables:
    cells = [f"{mean(table, m, 'auroc'):.3f} ({mean(table, m, 'auprc'):.3f})"
             for m in methods]
    lines.append(f"| {table} | " + " | ".join(cells) + " |")
  for key in ("auroc", "auprc"):
    cells = [f"{np.nanmean([mean(t, m, key) for t in tables]):.3f}"
             for m in methods]
    lines.append(f"| mean {key.upper()} | " + " | ".join(cells) + " |")
  if "tfvae" in methods and "iforest" in methods:
    ahead = sum(mean(t, "tfvae", "auroc") >= mean(t, "iforest", "auroc")
                for t in tables)
    lines.append(f"\ntfvae at or above IsolationForest on {ahead} of "
                 f"{len(tables)} tables (mean AUROC over seeds).")
  times = [r for r in results if r["method"] == "tfvae"]
  if times:
    lines.append("tfvae's mean training time {:.0f} s, scoring {:.1f} s "
                 "per split.".format(np.mean([r["train_s"] for r in times]),
                                     np.mean([r["score_s"] for r in times])))
  return "\n".join(lines)


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--tables", default=",".join(realdata.LABELLED))
  parser.add_argument("--seeds", default="0,1,2")
  parser.add_argument("--methods", default=",".join(METHODS))
  parser.add_argument("--jobs", type=int, default=2)
  parser.add_argument("--results", default=os.path.join(
      ROOT, "bench_results", "anomaly.jsonl"))
  args = parser.parse_args()
  tables = args.tables.split(",")
  methods = args.methods.split(",")
  seeds = [int(s) for s in args.seeds.split(",")]
  os.makedirs(os.path.dirname(args.results), exist_ok=True)
  done = []
  if os.path.exists(args.results):
    with open(args.results, encoding="utf-8") as f:
      done = [json.loads(line) for line in f if line.strip()]
  for row in done:
    if row["method"] == "tfvae" and row.get("atoms") != ATOMS:
      row["method"] = "tfvae_spikes"
  have = {(r["table"], r["seed"], r["method"]) for r in done}
  todo = [(t, s, m) for t in tables for s in seeds for m in methods
          if (t, s, m) not in have]
  context = multiprocessing.get_context("spawn")
  with concurrent.futures.ProcessPoolExecutor(args.jobs,
                                              mp_context=context) as pool:
    futures = [pool.submit(run_one, *task) for task in todo]
    for future in concurrent.futures.as_completed(futures):
      result = future.result()
      done.append(result)
      with open(args.results, "a", encoding="utf-8") as f:
        f.write(json.dumps(result) + "\n")
      print(f"{result['table']} seed {result['seed']} {result['method']}: "
            f"AUROC {result['auroc']:.3f}", flush=True)
  print(summarize([r for r in done if r["table"] in tables
                   and r["seed"] in seeds and r["method"] in methods],
                  tables, methods))


if __name__ == "__main__":
  main()
