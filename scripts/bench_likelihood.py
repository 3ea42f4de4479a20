"""The likelihood's cost next to the decoder network's, side by side.

A served score at K = 100 for 1024 rows decodes 102,400 latents and
evaluates the likelihood of 1024 rows under each. This times, in one
process and interleaved rounds, on the embedded default's shape (13
columns, `tfvae-train`'s 128-128 decoder, latent 6) with 8 atoms in every
column (half of its values at one of 8 codes, half continuous): the decoder network alone, the likelihood with atoms (point
masses, `heads.hurdle_log_prob`) given the network's outputs, and the
family's log-density alone. Target: the likelihood with atoms costs no
more than the network.

    .venv/bin/python scripts/bench_likelihood.py [--rounds 30]
"""

import argparse
import os
import statistics
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from tfvae import runtime  # noqa: E402

tf = runtime.import_tensorflow()

import numpy as np  # noqa: E402

import tfvae  # noqa: E402


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--rounds", type=int, default=30)
  args = parser.parse_args()
  rng = np.random.default_rng(0)
  rows, samples, width, atoms = 1024, 100, 13, 8
  # Half of each column continuous, half at one of 8 codes: 8 atoms each.
  codes = 10.0 * rng.integers(1, atoms + 1, size=(4000, width))
  x = np.where(rng.uniform(size=(4000, width)) < 0.5, codes,
               40.0 + 20.0 * rng.normal(size=(4000, width)))
  model = tfvae.VAE(input_dim=width, latent_dim=6, hidden_units=(128, 128),
                    num_atoms=atoms, likelihood="student_t", seed=0)
  model.adapt(x)
  present = int(np.sum(~np.isnan(model.standardization.atoms.numpy())))
  z = tf.constant(rng.normal(size=(samples, rows, 6)).astype(np.float32))
  u, observed = model.standardize(tf.constant(x[:rows]))
  standard = model.standard_likelihood_parameters(z)

  network = tf.function(lambda z: model.decoder_net(tf.reshape(z, [-1, 6])))
  with_atoms = tf.function(lambda: model.log_likelihood(
      standard, u, observed, tf.float64))
  family = tf.function(lambda: tf.reduce_sum(model.likelihood_head.family_log_prob(
      {k: tf.cast(v, tf.float64) for k, v in standard.items()
       if k in ("loc", "scale", "df")}, tf.cast(u, tf.float64)), -1))
  cases = {"decoder network": lambda: network(z),
           "likelihood with atoms": with_atoms,
           "family log-density alone": family}
  for run in cases.values():
    run()  # traces
  times = {name: [] for name in cases}
  for _ in range(args.rounds):
    for name, run in cases.items():
      start = time.perf_counter()
      out = run()
      out.numpy()
      times[name].append(1000 * (time.perf_counter() - start))
  base = statistics.median(times["decoder network"])
  print(f"{rows} rows x K = {samples}, {width} columns, {present} atoms; "
        f"median of {args.rounds} interleaved rounds, {os.cpu_count()} cores")
  for name, values in times.items():
    median = statistics.median(values)
    print(f"  {name:<26} {median:8.2f} ms  {median / base:5.2f}x the network")
  cost = statistics.median(times["likelihood with atoms"])
  print("  target (likelihood <= network): " +
        ("met" if cost <= base else "MISSED"))


if __name__ == "__main__":
  main()
