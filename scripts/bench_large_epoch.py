"""One epoch of a 2-million-row, 256-column file with `tfvae-train`'s defaults.

The recipe keeps an epoch's work within `recipe.EPOCH_BUDGET_SECONDS` on
two cores by lowering K (the importance samples per training row) on very
large tables (`recipe.train_samples_within_budget`). Three parts, each in
fresh processes:

- `--calibrate`: training rows per second of the large-table recipe's
  network on 256 columns (16,384 rows in memory, batches of 1024, the
  median of two epochs after a warm-up) for K = 1, 5 and 50, and the
  multiply-adds per second they imply (`recipe.multiply_adds_per_row`),
  from which `recipe.MULTIPLY_ADDS_PER_SECOND` was set; the K = 50 rate
  says how long the old default's epoch would take.
- default: writes a float32 `.npy` file of 2,000,000 rows x 256 columns
  near a nonlinear 16-D surface (2 GB, in `--folder`), then runs
  `tfvae.training.run` on it for one epoch with every setting left to the
  recipe (streamed, 20% validation rows), and prints the K chosen, the
  epoch's seconds (`fit`: training and validation) and the whole run's.
- `--density`: the held-out log-likelihood per dimension (K = 1000 on
  2,000 rows) after one epoch (`--epochs`) over `--density-rows` fresh
  rows of the same surface (200,000: the 2-million-row file's epoch at a
  tenth of the scale), with K = 1, the K the budget gives the
  2-million-row file, and K = 50.

    .venv/bin/python scripts/bench_large_epoch.py [--calibrate] [--density]
        [--folder DIR] [--rows 2000000] [--density-rows 200000] [--epochs 1]
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

COLUMNS = 256
SURFACE = 16
LARGE_ROWS = 2_000_000


def surface_rows(num_rows, seed):
  """float32 [num_rows, COLUMNS]: tanh of 16 latent factors, plus noise."""
  weights = np.random.default_rng(0).normal(size=(SURFACE, COLUMNS))
  rng = np.random.default_rng(seed)
  z = rng.normal(size=(num_rows, SURFACE))
  return (np.tanh(z @ weights / 2.0) +
          0.1 * rng.normal(size=(num_rows, COLUMNS))).astype(np.float32)


def write_file(path, num_rows, block=100_000):
  """The surface's rows as a `.npy` file, written block by block."""
  out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32,
                                  shape=(num_rows, COLUMNS))
  for start in range(0, num_rows, block):
    stop = min(num_rows, start + block)
    out[start:stop] = surface_rows(stop - start, 1 + start // block)
  out.flush()
  del out


def model_for(num_rows, num_train_samples=None):
  """The recipe's model for `num_rows` rows of the surface."""
  import tfvae  # pylint: disable=g-import-not-at-top
  model = tfvae.VAE(input_dim=COLUMNS, seed=0,
                    **({} if num_train_samples is None else
                       {"num_train_samples": num_train_samples}))
  return model


def worker_speed(num_train_samples):
  import tf_keras  # pylint: disable=g-import-not-at-top
  from tfvae.training import recipe  # pylint: disable=g-import-not-at-top
  x = surface_rows(16384, 1).astype(np.float64)
  tf_keras.utils.set_random_seed(0)
  model = model_for(LARGE_ROWS, num_train_samples)
  model.adapt(x)
  model.resolve(LARGE_ROWS)
  model.compile()
  timings = []

  class Timer(tf_keras.callbacks.Callback):

    def on_epoch_begin(self, epoch, logs=None):
      self.start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
      timings.append(time.perf_counter() - self.start)

  model.fit(x, epochs=3, batch_size=1024, verbose=0, callbacks=[Timer()],
            patience=0, lr_patience=0)
  rows_per_second = len(x) / float(np.median(timings[1:]))
  work = recipe.multiply_adds_per_row(COLUMNS, model.hidden_units,
                                      model.latent_dim, num_train_samples)
  return {"num_train_samples": num_train_samples,
          "rows_per_second": rows_per_second,
          "multiply_adds_per_second": rows_per_second * work}


def worker_epoch(path):
  from tfvae import training  # pylint: disable=g-import-not-at-top
  start = time.perf_counter()
  summary = training.run(training.TrainConfig(
      data=path, epochs=1, logdir=None, verbose=0))
  return {"num_train_samples": summary.model.num_train_samples,
          "hidden_units": list(summary.model.hidden_units),
          "latent_dim": summary.model.latent_dim,
          "fit_seconds": summary.fit_seconds,
          "evaluation_seconds": summary.evaluation_seconds,
          "run_seconds": time.perf_counter() - start}


def worker_density(num_train_samples, epochs, num_rows):
  import tf_keras  # pylint: disable=g-import-not-at-top
  x, held_out = (surface_rows(num_rows, 1).astype(np.float64),
                 surface_rows(2000, 2).astype(np.float64))
  tf_keras.utils.set_random_seed(0)
  model = model_for(LARGE_ROWS, num_train_samples)
  model.adapt(x)
  model.resolve(LARGE_ROWS)
  model.compile()
  start = time.perf_counter()
  model.fit(x, epochs=epochs, batch_size=1024, verbose=0, patience=0,
            lr_patience=0)
  seconds = time.perf_counter() - start
  log_p = model.marginal_log_likelihood(held_out, 1000, seed=0)
  return {"num_train_samples": num_train_samples, "epochs": epochs,
          "train_seconds": seconds,
          "nats_per_dimension": float(np.mean(log_p)) / COLUMNS}


def run_worker(*args):
  return _bench.worker_result(__file__, *args)


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--calibrate", action="store_true")
  parser.add_argument("--density", action="store_true")
  parser.add_argument("--folder", default="/tmp/tfvae_bench_large")
  parser.add_argument("--rows", type=int, default=LARGE_ROWS)
  parser.add_argument("--density-rows", type=int, default=200_000)
  parser.add_argument("--epochs", type=int, default=1)
  parser.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)
  args = parser.parse_args()
  if args.worker:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from tfvae import runtime  # pylint: disable=g-import-not-at-top
    runtime.import_tensorflow()
    kind, *rest = args.worker
    result = {"speed": lambda: worker_speed(int(rest[0])),
              "epoch": lambda: worker_epoch(rest[0]),
              "density": lambda: worker_density(*map(int, rest))
              }[kind]()
    print(json.dumps(result))
    return
  from tfvae.training import recipe  # pylint: disable=g-import-not-at-top
  chosen = recipe.default_recipe(int(args.rows * 0.8),
                                 COLUMNS)["num_train_samples"]
  if args.calibrate:
    print("## training speed, 256 columns, the large-table recipe's network")
    for k in (1, 5, 50):
      r = run_worker("speed", k)
      print(f"K = {k:>2}: {r['rows_per_second']:>9,.0f} rows/s, "
            f"{r['multiply_adds_per_second'] / 1e9:5.1f}e9 multiply-adds/s; "
            f"an epoch of {int(args.rows * 0.8):,} training rows: "
            f"{0.8 * args.rows / r['rows_per_second']:,.0f} s", flush=True)
  elif args.density:
    print(f"## held-out nats per dimension after {args.epochs} epoch(s) of "
          f"{args.density_rows:,} rows x {COLUMNS} columns")
    results = [run_worker("density", k, args.epochs, args.density_rows)
               for k in sorted({1, chosen, 50})]
    for r in results:
      print(f"K = {r['num_train_samples']:>2}: "
            f"{r['nats_per_dimension']:.4f} nats/dim, training "
            f"{r['train_seconds']:.0f} s", flush=True)
    by_k = {r["num_train_samples"]: r["nats_per_dimension"] for r in results}
    print(f"K = {chosen} minus K = 50: {by_k[chosen] - by_k[50]:+.4f} nats "
          "per dimension")
  else:
    os.makedirs(args.folder, exist_ok=True)
    path = os.path.join(args.folder, f"surface_{args.rows}x{COLUMNS}.npy")
    if not os.path.exists(path):
      start = time.perf_counter()
      write_file(path, args.rows)
      print(f"wrote {path} ({os.path.getsize(path) / 2**30:.1f} GiB) in "
            f"{time.perf_counter() - start:.0f} s", flush=True)
    r = run_worker("epoch", path)
    print(f"## one epoch of {args.rows:,} rows x {COLUMNS} columns, "
          "tfvae-train's defaults")
    print(f"recipe: K = {r['num_train_samples']} (the budget's choice: "
          f"{chosen}), hidden {r['hidden_units']}, latent {r['latent_dim']}")
    print(f"epoch (training and validation rows): {r['fit_seconds']:.0f} s; "
          f"closing evaluation {r['evaluation_seconds']:.0f} s; whole run "
          f"{r['run_seconds']:.0f} s")


if __name__ == "__main__":
  main()
