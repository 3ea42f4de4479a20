"""What TensorBoard monitoring costs: the same run with and without extras.

Runs `tfvae-train` with `--logdir` (Keras' epoch scalars plus tfvae's
monitor: latent, decoder, bound, optimizer, images, HParams) and with
`--logdir --no-monitor` (Keras' scalars only), alternating the two in fresh
processes round after round, and prints the median wall times and their
ratio. Two data sets: the embedded default with `tfvae-train`'s defaults,
and 50,000 synthetic rows (the 10-column surface) for a few epochs.

    .venv/bin/python scripts/bench_monitoring.py [--rounds 5]
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from tfvae import synthetic  # noqa: E402

TRAIN = os.path.join(os.path.dirname(sys.executable), "tfvae-train")


def timed_run(arguments, folder, monitor):
  logdir = tempfile.mkdtemp(dir=folder)
  command = [TRAIN, *arguments, "--logdir", logdir, "--verbose", "0"]
  if not monitor:
    command.append("--no-monitor")
  start = time.perf_counter()
  result = subprocess.run(command, capture_output=True, text=True, check=False)
  seconds = time.perf_counter() - start
  if result.returncode:
    raise SystemExit(result.stderr[-3000:])
  return seconds


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--rounds", type=int, default=5)
  args = parser.parse_args()
  folder = tempfile.mkdtemp(prefix="tfvae-bench-monitoring-")
  large = os.path.join(folder, "surface.npy")
  np.save(large, synthetic.make_surface(50000, seed=0))
  cases = {
      "embedded default (defaults)": [],
      "50,000 synthetic rows (5 epochs)": ["--data", large, "--epochs", "5",
                                           "--num-samples", "100"],
  }
  for name, arguments in cases.items():
    times = {True: [], False: []}
    for _ in range(args.rounds):
      for monitor in (True, False):
        times[monitor].append(timed_run(arguments, folder, monitor))
    with_extras = statistics.median(times[True])
    without = statistics.median(times[False])
    print(f"{name}: {with_extras:.1f} s with the monitor, {without:.1f} s "
          f"without (medians of {args.rounds}); ratio "
          f"{with_extras / without:.3f}", flush=True)


if __name__ == "__main__":
  main()
