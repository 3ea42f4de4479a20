"""Serving latency of the exported SavedModels, side by side.

Encoder (x -> z): the loaded SavedModel signature next to a bare
`tf.function` of the same network and the eager Keras encoder; network of
64 features, hidden 256-256, latent 16. Targets on 2 CPU cores: <= 0.4 ms
for one row and <= 3 ms for 1024 rows.

Scorer (x -> log p(x_obs), importance sampling with K = 100, and x -> x
with its gaps filled): the embedded default's shape with `tfvae-train`'s
default recipe. Targets: <= 2 ms for one row and <= 50 ms for 1024 rows.

Medians over interleaved rounds, so machine noise hits every variant alike.
Beside the scorer, its floor: the decoder network alone on the K x rows
latents a request needs.

    .venv/bin/python scripts/bench_serving.py [--rounds 300]
"""

import argparse
import os
import statistics
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from tfvae import runtime  # noqa: E402

tf = runtime.import_tensorflow()

import numpy as np  # noqa: E402

import tfvae  # noqa: E402
from tfvae import data as data_lib  # noqa: E402
from tfvae import export  # noqa: E402
from tfvae import training  # noqa: E402

ENCODER_TARGETS_MS = {1: 0.4, 1024: 3.0}
SCORER_TARGETS_MS = {1: 2.0, 1024: 50.0}


def measure(variants, inputs, rounds):
  """Median and p90 ms per variant, interleaved."""
  for function in variants.values():  # warm up, trace
    for _ in range(5):
      function(*inputs)
  times = {name: [] for name in variants}
  for _ in range(rounds):
    for name, function in variants.items():
      start = time.perf_counter()
      outputs = function(*inputs)
      values = outputs.values() if isinstance(outputs, dict) else outputs
      _ = [np.asarray(v) for v in values]
      times[name].append((time.perf_counter() - start) * 1e3)
  return {name: (statistics.median(v), float(np.percentile(v, 90)))
          for name, v in times.items()}


def encoder_latency(rounds, directory):
  rng = np.random.default_rng(0)
  x_all = rng.normal(50, 20, size=(4096, 64))
  model = tfvae.VAE(input_dim=64, latent_dim=16, hidden_units=(256, 256))
  model.adapt(x_all)
  path = export.export_model(model, directory)["encoder"]
  signature = tf.saved_model.load(path).signatures["serving_default"]

  @tf.function(input_signature=[tf.TensorSpec([None, 64], tf.float64)])
  def bare(x):  # the same network, no heads: the floor to compare with
    u = tf.cast((x - model.standardization.loc) / model.standardization.scale,
                tf.float32)
    params = model.encoder_net(u, tf.zeros_like(u))
    loc, raw = tf.split(params, 2, axis=-1)
    return loc, tf.nn.softplus(raw) + 1e-4

  def keras_eager(x):
    posterior = model.encode(x)
    return posterior.mean(), posterior.stddev()

  variants = {"SavedModel signature": lambda x: signature(x=x),
              "bare tf.function": bare, "eager Keras encoder": keras_eager}
  print(f"\n## encoder: 64 features, hidden 256-256, latent 16; median of "
        f"{rounds} interleaved rounds")
  print(f"{'rows':>6} {'variant':<22} {'median ms':>10} {'p90 ms':>8} "
        f"{'vs SavedModel':>14}")
  for rows in (1, 1024):
    result = measure(variants, (tf.constant(x_all[:rows]),), rounds)
    reference = result["SavedModel signature"][0]
    for name, (median, p90) in result.items():
      print(f"{rows:>6} {name:<22} {median:>10.3f} {p90:>8.3f} "
            f"{median / reference:>13.2f}x")
    verdict = "meets" if reference <= ENCODER_TARGETS_MS[rows] else "MISSES"
    print(f"{'':>6} SavedModel {verdict} the {ENCODER_TARGETS_MS[rows]} ms "
          f"target for {rows} row(s)")


def scorer_latency(rounds, directory):
  table = data_lib.load_default()
  summary = training.train(training.TrainConfig(
      epochs=20, verbose=0, logdir=None, num_samples=10), table)
  paths = export.export_model(summary.model, directory, num_samples=100)
  loaded = tf.saved_model.load(paths["scorer"])
  score, impute = loaded.signatures["score"], loaded.signatures["impute"]
  seed = tf.constant([0, 0], tf.int64)
  rows_all = np.concatenate([table.values] * 6)
  gappy_all = rows_all.copy()
  gappy_all[::3, 2] = np.nan
  print(f"\n## scorer: {summary.recipe['hidden_units']} hidden, latent "
        f"{summary.recipe['latent_dim']}, {summary.recipe['num_atoms']} atoms, "
        f"K = 100; median of {rounds} interleaved rounds")
  print(f"{'rows':>6} {'signature':<32} {'median ms':>10} {'p90 ms':>8}")
  decoder = tf.function(
      lambda z: summary.model.decoder_net(z),  # pylint: disable=unnecessary-lambda
      input_signature=[tf.TensorSpec([None, summary.model.latent_dim])])
  for rows in (1, 1024):
    complete = tf.constant(rows_all[:rows])
    gappy = tf.constant(gappy_all[:rows])
    latents = tf.random.normal([100 * rows, summary.model.latent_dim])
    result = measure({
        "score (complete rows)": lambda x, g: score(x=x, seed=seed),
        "score (a third with a gap)": lambda x, g: score(x=g, seed=seed),
        "impute (a third with a gap)": lambda x, g: impute(x=g, seed=seed),
        # The floor: the decoder network alone on the K x rows latents.
        "decoder network alone": lambda x, g, z=latents: {"p": decoder(z)},
    }, (complete, gappy), rounds)
    for name, (median, p90) in result.items():
      verdict = ("" if "impute" in name or "alone" in name else
                 " (meets)" if median <= SCORER_TARGETS_MS[rows] else
                 " (MISSES)")
      print(f"{rows:>6} {name:<32} {median:>10.3f} {p90:>8.3f}{verdict}")
  print(f"targets: {SCORER_TARGETS_MS[1]} ms for one row, "
        f"{SCORER_TARGETS_MS[1024]} ms for 1024 rows")


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--rounds", type=int, default=300)
  parser.add_argument("--only", choices=("encoder", "scorer"))
  args = parser.parse_args()
  print(f"{os.cpu_count()} CPU cores, TF {tf.__version__}")
  with tempfile.TemporaryDirectory() as directory:
    if args.only != "scorer":
      encoder_latency(args.rounds, os.path.join(directory, "encoder"))
    if args.only != "encoder":
      scorer_latency(max(args.rounds // 5, 20), os.path.join(directory, "scorer"))


if __name__ == "__main__":
  main()
