"""Synthetic rows: tfvae's defaults against SDV's synthesizers.

For every table and seed the rows are split 70 / 30 (`tfvae.data.split`,
seeded) into training and held-out rows. Each synthesizer is trained on
the training rows with its defaults and draws as many rows as there are
training rows; the rows are judged against the held-out rows by
`tfvae.fidelity.report` (SDMetrics' quality score and logistic
detection, ML efficacy for the table's target column, and the privacy
distance ratio), and, when SDMetrics is installed, by SDMetrics' own
`QualityReport` and `LogisticDetection` as a cross-check. The training
rows themselves, judged the same way, are the ceiling.

Methods: `tfvae` (`tfvae-train`'s defaults: `training.train` with a
default `TrainConfig`, then `model.sample`), and SDV 1.x/2.x
`GaussianCopulaSynthesizer`, `CTGANSynthesizer` and `TVAESynthesizer`
with their defaults (metadata detected from the training frame), which
need the `bench` extra plus `sdv` (PyTorch, CPU).

    python scripts/bench_synthesis.py [--tables a,b] [--seeds 0,1,2]
        [--methods tfvae,copula,ctgan,tvae] [--results FILE] [--fresh]

Each cell (table, seed, method) runs in a process of its own: TensorFlow
and PyTorch in one process crash (a segfault in libc, seen here), and
each method gets a clean start. Results are cached in a JSON-lines file
(default `bench_results/synthesis.jsonl`); a run continues where one
stopped.
"""

import argparse
import json
import os
import subprocess
import sys
import time
import warnings

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from tfvae import data as data_lib  # noqa: E402
from tfvae import fidelity  # noqa: E402
from tfvae import realdata  # noqa: E402

# Each table's column to predict for ML efficacy (the column users would).
TARGETS = {"wine": "alcohol", "diabetes": "bp", "concrete": "compressive_strength",
           "boston": "medv", "quakes": "mag", "penguins": "body_mass_g",
           "bdims": "wgt", "kershaw": "Speed", "biomass": "HHV",
           "galton": "childHeight"}
TABLES = ("wine", "diabetes", "concrete", "boston", "quakes", "penguins",
          "bdims", "galton")
METHODS = ("tfvae", "copula", "ctgan", "tvae")
HOLDOUT = 0.3


def synthesize(method, train, names, seed):
  """(rows [len(train), D], training seconds, sampling seconds)."""
  start = time.perf_counter()
  if method == "tfvae":
    import tf_keras  # pylint: disable=g-import-not-at-top
    from tfvae import training  # pylint: disable=g-import-not-at-top
    tf_keras.utils.set_random_seed(seed)
    summary = training.train(
        training.TrainConfig(seed=seed, verbose=0, logdir=None),
        data_lib.Table(train, tuple(names), "benchmark"))
    trained = time.perf_counter()
    rows = summary.model.sample(len(train), seed=seed)
    return rows, trained - start, time.perf_counter() - trained
  import pandas as pd  # pylint: disable=g-import-not-at-top
  import torch  # pylint: disable=g-import-not-at-top
  from sdv import metadata as sdv_metadata  # pylint: disable=g-import-not-at-top
  from sdv import single_table  # pylint: disable=g-import-not-at-top
  torch.manual_seed(seed)
  np.random.seed(seed)
  frame = pd.DataFrame(train, columns=list(names))
  metadata = sdv_metadata.Metadata.detect_from_dataframes(
      {"table": frame}, infer_keys=None)
  synthesizer = {"copula": single_table.GaussianCopulaSynthesizer,
                 "ctgan": single_table.CTGANSynthesizer,
                 "tvae": single_table.TVAESynthesizer}[method](metadata)
  synthesizer.fit({"table": frame})  # SDV 2 takes {table name: frame}
  trained = time.perf_counter()
  rows = synthesizer.sample(num_rows=len(train))
  if isinstance(rows, dict):
    rows = rows["table"]
  rows = rows[list(names)]
  return (rows.to_numpy(np.float64), trained - start,
          time.perf_counter() - trained)


def sdmetrics_check(train, holdout, rows, names):
  """SDMetrics' own quality score and logistic detection, or None."""
  try:
    import pandas as pd  # pylint: disable=g-import-not-at-top
    from sdmetrics import reports  # pylint: disable=g-import-not-at-top
    from sdmetrics import single_table  # pylint: disable=g-import-not-at-top
  except ImportError:
    return None
  real = pd.DataFrame(holdout, columns=list(names))
  synthetic = pd.DataFrame(rows, columns=list(names))
  metadata = {"columns": {name: {"sdtype": "numerical"} for name in names}}
  report = reports.single_table.QualityReport()
  report.generate(real, synthetic, metadata, verbose=False)
  detection = single_table.LogisticDetection.compute(real, synthetic,
                                                     metadata)
  properties = report.get_properties().set_index("Property")["Score"]
  return {"quality_score": float(report.get_score()),
          "shapes": float(properties["Column Shapes"]),
          "detection": float(detection)}


def run_cell(table, seed, method):
  values, names = realdata.load(table)
  train, holdout = data_lib.split(values, HOLDOUT, seed=seed)
  target = names.index(TARGETS[table]) if TARGETS.get(table) in names else (
      len(names) - 1)
  rows, train_seconds, sample_seconds = synthesize(method, train, names, seed)
  report = fidelity.report(train, holdout, rows, names, target, seed=seed)
  return {
      "table": table, "seed": seed, "method": method,
      "rows": int(len(values)), "columns": int(values.shape[1]),
      "quality": report["quality_score"],
      "shapes": report["column_shapes"]["score"],
      "trends": report["column_pair_trends"]["score"],
      "detection": report["detection"]["score"],
      "efficacy": report["ml_efficacy"]["value"],
      "efficacy_metric": report["ml_efficacy"]["metric"],
      "dcr_ratio": report["privacy"]["dcr_ratio"],
      "copies": report["privacy"]["exact_copies"],
      "ceiling_quality": report["ceiling"]["quality_score"],
      "ceiling_detection": report["ceiling"]["detection"]["score"],
      "ceiling_efficacy": report["ceiling"]["ml_efficacy"]["value"],
      "train_seconds": train_seconds, "sample_seconds": sample_seconds,
      "sdmetrics": sdmetrics_check(train, holdout, rows, names),
  }


def summarize(results, tables, methods):
  """Prints one table per measure: mean over seeds, per table and method."""
  measures = (("quality", "quality score (SDMetrics measures; higher is "
               "better)"), ("detection", "detection score (1 = real and "
               "synthetic indistinguishable)"),
              ("efficacy", "ML efficacy (R^2 on held-out real rows, trained "
               "on synthetic)"),
              ("dcr_ratio", "privacy: median distance to the closest "
               "training row, synthetic / held-out real"),
              ("train_seconds", "training seconds (2 CPU cores)"))
  for key, title in measures:
    print(f"\n{title}\n")
    ceiling = {"quality": "ceiling_quality", "detection": "ceiling_detection",
               "efficacy": "ceiling_efficacy"}.get(key)
    header = ["table"] + list(methods) + (["training rows"] if ceiling else [])
    print("| " + " | ".join(header) + " |")
    print("|" + " --- |" * len(header))
    for table in tables:
      cells = [table]
      for method in methods:
        got = [r[key] for r in results if r["table"] == table and
               r["method"] == method and r[key] is not None]
        cells.append(f"{np.mean(got):.3f} (n={len(got)})" if got else "-")
      if ceiling:
        got = [r[ceiling] for r in results if r["table"] == table]
        cells.append(f"{np.mean(got):.3f}" if got else "-")
      print("| " + " | ".join(cells) + " |")
  checks = [(r["shapes"], r["sdmetrics"]["shapes"], r["detection"],
             r["sdmetrics"]["detection"], r["quality"],
             r["sdmetrics"]["quality_score"]) for r in results
            if (r.get("sdmetrics") or {}).get("shapes") is not None]
  if checks:
    checks = np.array(checks)
    differences = np.abs(checks[:, 0::2] - checks[:, 1::2])
    print(f"\nagainst SDMetrics itself ({len(checks)} cells): column shapes "
          f"differ by at most {differences[:, 0].max():.4f}, detection by "
          f"{np.median(differences[:, 1]):.3f} in the median (its folds are "
          f"shuffled without a seed), quality scores by "
          f"{np.median(differences[:, 2]):.3f} in the median (SDMetrics "
          "0.32 leaves a pair out of its trends when the two tables differ "
          "in length)")


def main():
  warnings.simplefilter("ignore", FutureWarning)
  warnings.filterwarnings("ignore", message=".*save_to_json.*")
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--tables", default=",".join(TABLES))
  parser.add_argument("--seeds", default="0,1,2")
  parser.add_argument("--methods", default=",".join(METHODS))
  parser.add_argument("--results", default=os.path.join(
      ROOT, "bench_results", "synthesis.jsonl"))
  parser.add_argument("--fresh", action="store_true")
  parser.add_argument("--summary-only", action="store_true")
  parser.add_argument("--cell", help=argparse.SUPPRESS)  # table,seed,method
  args = parser.parse_args()
  if args.cell:
    table, seed, method = args.cell.split(",")
    print("RESULT " + json.dumps(run_cell(table, int(seed), method)))
    return
  tables = args.tables.split(",")
  seeds = [int(s) for s in args.seeds.split(",")]
  methods = args.methods.split(",")
  os.makedirs(os.path.dirname(args.results), exist_ok=True)
  results = []
  if os.path.exists(args.results) and not args.fresh:
    with open(args.results, encoding="utf-8") as f:
      results = [json.loads(line) for line in f if line.strip()]
  done = {(r["table"], r["seed"], r["method"]) for r in results}
  if not args.summary_only:
    for seed in seeds:
      for table in tables:
        for method in methods:
          if (table, seed, method) in done:
            continue
          done_run = subprocess.run(
              [sys.executable, os.path.abspath(__file__), "--cell",
               f"{table},{seed},{method}"], capture_output=True, text=True,
              env={**os.environ, "CUDA_VISIBLE_DEVICES": ""})
          lines = [line for line in done_run.stdout.splitlines()
                   if line.startswith("RESULT ")]
          if not lines:
            print(f"{table} seed {seed} {method}: failed\n"
                  f"{done_run.stderr[-2000:]}", flush=True)
            continue
          result = json.loads(lines[-1][len("RESULT "):])
          results.append(result)
          with open(args.results, "a", encoding="utf-8") as f:
            f.write(json.dumps(result) + "\n")
          print(f"{table} seed {seed} {method}: quality "
                f"{result['quality']:.3f}, detection {result['detection']:.3f}"
                f", efficacy {result['efficacy']:.3f}, dcr ratio "
                f"{result['dcr_ratio']:.2f}, {result['train_seconds']:.0f} s "
                f"(sdmetrics: {result['sdmetrics']})", flush=True)
  results = [r for r in results if r["table"] in tables and
             r["method"] in methods and r["seed"] in seeds]
  summarize(results, tables, methods)


if __name__ == "__main__":
  main()
