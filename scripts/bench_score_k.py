"""How many importance samples an anomaly ranking needs.

For labelled tables (`tfvae.realdata.LABELLED`), `tfvae-train`'s defaults
are trained once on the training split of `scripts/bench_anomaly.py`
(seed 0), then the test split is scored with K = 10, 30, 100, 300 and 1000
importance samples: the AUROC at each K, the Spearman rank correlation of
the scores with K = 1000's, and the scoring time, side by side in one
process.

    .venv/bin/pip install -e '.[bench]'
    .venv/bin/python scripts/bench_score_k.py [--tables wdbc,breastw,default]
"""

import argparse
import os
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "scripts"))

import bench_anomaly  # noqa: E402
from tfvae import realdata  # noqa: E402
from tfvae import training  # noqa: E402

SAMPLES = (10, 30, 100, 300, 1000)


def ranks(values):
  order = np.argsort(values, kind="stable")
  out = np.empty(len(values))
  out[order] = np.arange(len(values))
  return out


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--tables", default="wdbc,breastw,pima,default")
  args = parser.parse_args()
  from sklearn import metrics  # pylint: disable=g-import-not-at-top
  print("| table | K | AUROC | Spearman vs K = 1000 | scoring s |")
  print("| --- | --- | --- | --- | --- |")
  for table in args.tables.split(","):
    values, is_anomaly, names = realdata.load_labelled(table)
    train_rows, test_rows = bench_anomaly.split(is_anomaly, 0)
    with tempfile.TemporaryDirectory() as folder:
      path = os.path.join(folder, "train.csv")
      np.savetxt(path, values[train_rows], delimiter=",", comments="",
                 header=",".join(f'"{n}"' for n in names), fmt="%.17g")
      model = training.run(training.TrainConfig(
          data=path, seed=0, verbose=0, logdir=None,
          checkpoint_dir=None)).model
    test, labels = values[test_rows], is_anomaly[test_rows]
    model.anomaly_score(test[:2], num_samples=10, seed=0)  # traces
    scores = {}
    for k in SAMPLES:
      start = time.perf_counter()
      scores[k] = (model.anomaly_score(test, num_samples=k, seed=0),
                   time.perf_counter() - start)
    reference = scores[1000][0]
    for k in SAMPLES:
      values_k, seconds = scores[k]
      rho = np.corrcoef(ranks(values_k), ranks(reference))[0, 1]
      auroc = metrics.roc_auc_score(labels, values_k)
      print(f"| {table} | {k} | {auroc:.3f} | {rho:.4f} | {seconds:.2f} |",
            flush=True)


if __name__ == "__main__":
  main()
