"""Encode latency: loaded SavedModel vs the eager Keras encoder, side by side.

Network: 64 features, hidden 256-256, latent 16 (the serving issue's
reference). Medians over interleaved rounds, so machine noise hits every
variant alike. Targets on 2 CPU cores: <= 0.4 ms for one row and <= 3 ms for
1024 rows through the SavedModel.

    .venv/bin/python scripts/bench_serving.py [--rounds 300]
"""

import argparse
import os
import statistics
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import tfvae  # noqa: E402
from tfvae import export  # noqa: E402

TARGETS_MS = {1: 0.4, 1024: 3.0}


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--rounds", type=int, default=300)
  args = parser.parse_args()

  rng = np.random.default_rng(0)
  x_all = rng.normal(50, 20, size=(4096, 64)).astype(np.float32)
  model = tfvae.VAE(input_dim=64, latent_dim=16, hidden_units=(256, 256))
  model.adapt(x_all)
  with tempfile.TemporaryDirectory() as directory:
    path = export.export(model, directory)["encoder"]
    signature = tf.saved_model.load(path).signatures["serving_default"]

    @tf.function(input_signature=[tf.TensorSpec([None, 64], tf.float32)])
    def bare(x):  # the same network, no heads: the floor to compare with
      params = model.encoder_net(model.standardization(x))
      loc, raw = tf.split(params, 2, axis=-1)
      return loc, tf.nn.softplus(raw) + 1e-4

    def keras_eager(x):
      posterior = model.encode(x)
      return posterior.mean(), posterior.stddev()

    variants = {
        "SavedModel signature": lambda x: signature(x=x),
        "bare tf.function": bare,
        "eager Keras encoder": keras_eager,
    }
    print(f"encode latency, median of {args.rounds} interleaved rounds, "
          f"{os.cpu_count()} CPU cores, TF {tf.__version__}")
    print(f"{'rows':>6} {'variant':<22} {'median ms':>10} {'p90 ms':>8} "
          f"{'vs SavedModel':>14}")
    for rows in (1, 1024):
      x = tf.constant(x_all[:rows])
      for function in variants.values():  # warm up, trace
        for _ in range(5):
          function(x)
      times = {name: [] for name in variants}
      for _ in range(args.rounds):
        for name, function in variants.items():
          start = time.perf_counter()
          outputs = function(x)
          _ = [np.asarray(v) for v in (outputs.values() if isinstance(outputs, dict) else outputs)]
          times[name].append((time.perf_counter() - start) * 1e3)
      reference = statistics.median(times["SavedModel signature"])
      for name, values in times.items():
        median = statistics.median(values)
        p90 = float(np.percentile(values, 90))
        print(f"{rows:>6} {name:<22} {median:>10.3f} {p90:>8.3f} "
              f"{median / reference:>13.2f}x")
      verdict = "meets" if reference <= TARGETS_MS[rows] else "MISSES"
      print(f"{'':>6} SavedModel {verdict} the {TARGETS_MS[rows]} ms target "
            f"for {rows} row(s)")


if __name__ == "__main__":
  main()
