"""Anomalies made of values that are common alone: sensors idle at exactly 0.

`tfvae.synthetic.make_sensor_zeros`: each normal row has at most one of
three sensors idle (reading exactly 0, 10% of the rows each); an anomaly
has all three idle at once. `tfvae-train`'s defaults are trained on 3,000
normal rows recorded at a given resolution, then 1,000 normal and 30
anomalous held-out rows are scored (`anomaly_score`, K = 200). Prints the
AUROC (the chance that an anomaly scores above a normal row) for each
resolution. `--no-resolution` gives every column resolution 0 (atoms then
match values to float rounding rather than within half a resolution).

    .venv/bin/python scripts/bench_sensor_zeros.py [--decimals 2,1,0]
        [--no-resolution]
"""

import argparse
import os
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tfvae import statistics  # noqa: E402
from tfvae import synthetic  # noqa: E402
from tfvae import training  # noqa: E402


def auroc(is_anomaly, scores):
  """P(an anomaly scores above a normal row), ties counting one half."""
  above = scores[is_anomaly][:, None]
  below = scores[~is_anomaly][None, :]
  return float(np.mean((above > below) + 0.5 * (above == below)))


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--decimals", default="2,1,0")
  parser.add_argument("--no-resolution", action="store_true")
  args = parser.parse_args()
  if args.no_resolution:
    statistics.compute_resolution = lambda x: np.zeros(np.shape(x)[1])
  for decimals in map(int, args.decimals.split(",")):
    x, _ = synthetic.make_sensor_zeros(3000, 0, decimals=decimals, seed=0)
    x_test, is_anomaly = synthetic.make_sensor_zeros(1000, 30,
                                                     decimals=decimals, seed=1)
    with tempfile.TemporaryDirectory() as folder:
      path = os.path.join(folder, "train.csv")
      np.savetxt(path, x, delimiter=",")
      summary = training.run(training.TrainConfig(
          data=path, verbose=0, logdir=None, checkpoint_dir=None))
    scores = summary.model.anomaly_score(x_test, num_samples=200, seed=0)
    print(f"resolution {10.0**-decimals:g}: AUROC "
          f"{auroc(is_anomaly, scores):.3f} (median score: anomalies "
          f"{np.median(scores[is_anomaly]):.2f}, normal rows "
          f"{np.median(scores[~is_anomaly]):.2f} nats)", flush=True)


if __name__ == "__main__":
  main()
