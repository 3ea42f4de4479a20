"""Data larger than memory: streamed training and scoring, time and memory.

Generates `.npy` files of about 0.5 GB and 2 GB (64 float64 columns, rows
near a nonlinear 8-D surface), then, each in a fresh process, trains one
epoch from the file streamed (`tfvae.input_pipeline.dataset`, memory-mapped
blocks) and from the same rows in memory (`np.load`), and prints examples
per second, their ratio, and the peak anonymous memory (RssAnon, sampled
from /proc/self/status every 50 ms). Streaming keeps memory flat in the
file's size; in memory it grows with it.

A CSV and a Parquet copy of the 0.5 GB table measure those readers too.

Scoring at scale: rows per second of `VAE.anomaly_score` at K = 1000 on
100,000 rows, and the peak memory of `tfvae.scoring.score_file` streaming
a file of 1,000,000 rows.

    .venv/bin/python scripts/bench_stream.py [--sizes 0.5,2] [--folder DIR]
"""

import argparse
import json
import os
import subprocess
import sys
import threading
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

COLUMNS = 64
BATCH = 1024
HIDDEN = (128, 128)


class PeakMemory:
  """Samples RssAnon of this process in a thread; `peak` in MiB."""

  def __init__(self, interval=0.05):
    self.peak = 0.0
    self._stop = threading.Event()
    self._thread = threading.Thread(target=self._run, args=(interval,),
                                    daemon=True)

  @staticmethod
  def current():
    with open("/proc/self/status") as f:
      for line in f:
        if line.startswith("RssAnon:"):
          return float(line.split()[1]) / 1024.0
    return 0.0

  def _run(self, interval):
    while not self._stop.is_set():
      self.peak = max(self.peak, self.current())
      time.sleep(interval)

  def __enter__(self):
    self._thread.start()
    return self

  def __exit__(self, *exc):
    self._stop.set()
    self._thread.join()
    self.peak = max(self.peak, self.current())


def make_file(path, gigabytes, seed=0):
  """Writes rows near an 8-D surface to `path` in blocks (no big buffer)."""
  rows = int(gigabytes * 2**30 / (8 * COLUMNS))
  rng = np.random.default_rng(seed)
  weights = rng.normal(size=(8, COLUMNS))
  array = np.lib.format.open_memmap(path, mode="w+", dtype=np.float64,
                                    shape=(rows, COLUMNS))
  for start in range(0, rows, 200000):
    n = min(200000, rows - start)
    z = rng.normal(size=(n, 8))
    array[start:start + n] = np.tanh(z @ weights) + 0.1 * rng.normal(
        size=(n, COLUMNS))
  array.flush()
  del array
  return rows


def convert(npy_path, kind):
  """A CSV or Parquet copy of an .npy file, written in blocks."""
  source = np.load(npy_path, mmap_mode="r")
  path = os.path.splitext(npy_path)[0] + "." + kind
  if os.path.exists(path):
    return path
  names = [f"c{i}" for i in range(source.shape[1])]
  if kind == "csv":
    with open(path, "w") as f:
      f.write(",".join(names) + "\n")
      for start in range(0, len(source), 100000):
        np.savetxt(f, source[start:start + 100000], delimiter=",", fmt="%.6g")
  else:
    import pyarrow as pa  # pylint: disable=g-import-not-at-top
    import pyarrow.parquet as pq  # pylint: disable=g-import-not-at-top
    writer = None
    for start in range(0, len(source), 200000):
      block = np.asarray(source[start:start + 200000])
      table = pa.table({n: block[:, i] for i, n in enumerate(names)})
      writer = writer or pq.ParquetWriter(path, table.schema)
      writer.write_table(table)
    writer.close()
  return path


def train_worker(path, mode):
  """One epoch, streamed or in memory; prints examples/s and peak MiB."""
  from tfvae import runtime  # pylint: disable=g-import-not-at-top
  runtime.import_tensorflow()
  import tf_keras  # pylint: disable=g-import-not-at-top
  import tfvae  # pylint: disable=g-import-not-at-top
  from tfvae import input_pipeline  # pylint: disable=g-import-not-at-top

  with PeakMemory() as memory:
    scan = input_pipeline.scan(path, validation_fraction=0.0)
    tf_keras.utils.set_random_seed(0)
    # Set here rather than chosen by `adapt` (which this skips): the
    # single-sample ELBO, and no atom slots (continuous data).
    model = tfvae.VAE(input_dim=scan.width, latent_dim=32, hidden_units=HIDDEN,
                      num_train_samples=1, num_atoms=0,
                      df_transform="softplus", seed=0)
    model.set_statistics(scan.loc, scan.scale)
    model.compile()
    if mode == "stream":
      dataset = input_pipeline.dataset(path, BATCH, split="all").repeat()
      steps = -(-scan.num_train // BATCH)
      start = time.perf_counter()
      model.fit(dataset, steps_per_epoch=steps, epochs=1, verbose=0)
    else:
      x = np.load(path) if path.endswith(".npy") else None
      start = time.perf_counter()
      model.fit(x, batch_size=BATCH, epochs=1, verbose=0)
    seconds = time.perf_counter() - start
  print(json.dumps({"rows_per_second": scan.num_train / seconds,
                    "seconds": seconds, "peak_mib": memory.peak}))


def score_worker(path, rows):
  """Scoring: rows/s at K = 1000, and the peak memory of a streamed file."""
  from tfvae import runtime  # pylint: disable=g-import-not-at-top
  runtime.import_tensorflow()
  import tfvae  # pylint: disable=g-import-not-at-top
  from tfvae import scoring  # pylint: disable=g-import-not-at-top
  # No atom slots: the data are continuous, and tfvae-train sizes the slots
  # to the data (none here).
  model = tfvae.VAE(input_dim=COLUMNS, latent_dim=32, hidden_units=HIDDEN,
                    seed=0, num_atoms=0)
  x = np.load(path, mmap_mode="r")
  model.adapt(np.asarray(x[:100000]))
  sample = np.asarray(x[:rows])
  model.anomaly_score(sample[:1000], num_samples=1000, seed=0)  # warm-up
  start = time.perf_counter()
  model.anomaly_score(sample, num_samples=1000, seed=0)
  speed = rows / (time.perf_counter() - start)
  out_path = path + ".scores.csv"
  with PeakMemory() as memory:
    result = scoring.score_file(model, path, out_path, num_samples=10,
                                batch_size=8192, overwrite=True)
  os.remove(out_path)
  print(json.dumps({"rows_per_second": speed, "file_rows": result.rows,
                    "peak_mib": memory.peak}))


def run_worker(*args):
  out = subprocess.run([sys.executable, __file__, "--worker", *args],
                       capture_output=True, text=True, check=False)
  if out.returncode:
    raise SystemExit(out.stderr[-3000:])
  return json.loads(out.stdout.strip().splitlines()[-1])


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--sizes", default="0.5,2")
  parser.add_argument("--score-rows", type=int, default=100000,
                      help="rows scored at K = 1000 for the rows/s figure")
  parser.add_argument("--folder", default=os.path.join(ROOT, "bench_results",
                                                       "stream"))
  parser.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)
  args = parser.parse_args()
  if args.worker:
    if args.worker[0] == "score":
      score_worker(args.worker[1], int(args.worker[2]))
    else:
      train_worker(args.worker[1], args.worker[0])
    return
  os.makedirs(args.folder, exist_ok=True)
  print(f"{'file':<28} {'rows':>9} {'streamed rows/s':>16} "
        f"{'in memory rows/s':>17} {'ratio':>6} {'peak MiB streamed':>18} "
        f"{'peak MiB in memory':>19}", flush=True)
  smallest = None
  for size in (float(s) for s in args.sizes.split(",")):
    path = os.path.join(args.folder, f"table_{size:g}gb.npy")
    if not os.path.exists(path):
      make_file(path, size)
    rows = np.load(path, mmap_mode="r").shape[0]
    smallest = smallest or path
    memory = run_worker("memory", path)
    streamed = run_worker("stream", path)
    print(f"{os.path.basename(path):<28} {rows:>9} "
          f"{streamed['rows_per_second']:>16.0f} "
          f"{memory['rows_per_second']:>17.0f} "
          f"{streamed['rows_per_second'] / memory['rows_per_second']:>6.2f} "
          f"{streamed['peak_mib']:>18.0f} {memory['peak_mib']:>19.0f}",
          flush=True)
  rows = np.load(smallest, mmap_mode="r").shape[0]
  for kind in ("parquet", "csv"):
    path = convert(smallest, kind)
    streamed = run_worker("stream", path)
    print(f"{os.path.basename(path):<28} {rows:>9} "
          f"{streamed['rows_per_second']:>16.0f} {'':>17} {'':>6} "
          f"{streamed['peak_mib']:>18.0f}", flush=True)
  million = os.path.join(args.folder, "table_1m.npy")
  if not os.path.exists(million):
    make_file(million, 1e6 * 8 * COLUMNS / 2**30, seed=1)
  scores = run_worker("score", million, str(args.score_rows))
  print(f"\nscoring: {scores['rows_per_second']:.0f} rows/s at K = 1000 "
        f"({args.score_rows:,} rows); score_file over {scores['file_rows']} "
        f"rows: peak "
        f"{scores['peak_mib']:.0f} MiB (RssAnon)")


if __name__ == "__main__":
  main()
