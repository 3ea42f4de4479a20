"""What `fit` costs before it trains: tracing, with tfvae's step loop and Keras'.

Each run is a fresh process: build, `adapt`, `compile()` with its
defaults (32 steps per graph call), then `fit` for one epoch with 20% of
the rows for validation; it prints the seconds `fit` took and how often
`train_step` and `test_step` were traced. Contenders, in alternating
rounds:

- `tfvae`: `VAE.fit` as shipped (since 0.10.1): the optimizer's slots are
  built before the first step and the steps of one call run in
  `tfvae.training.steps.run_steps`, so each step is traced once;
- `autograph`: `VAE.fit` with its step functions traced through autograph
  (`VAE.step_functions_autograph = True`), as up to 0.12.0;
- `gap_cond`: `VAE.fit` with the bounds of batches with and without gaps
  under a `tf.cond` (`VAE.gap_bound_in_one_graph = False`), as up to
  0.12.1; on a table without gaps it is `tfvae`;
- `keras_loop`: the same model with Keras' own `make_train_function` /
  `make_test_function` and the slots built in the first step, as up to
  0.10.0: autograph traces a step once more to learn what its loop
  carries, and tf.function traces the training function again after the
  step that created the slots.

Tables: `demo` (the embedded default data, 178 x 13, the recipe's model),
`mixed` (2,000 rows: four real columns, a count, a positive column, a
3-level category and a boolean, all driven by one latent) and `gappy`
(`mixed` with 10% of its cells missing).

    .venv/bin/python scripts/bench_startup.py [--rounds 3]
        [--tables demo,mixed,gappy] [--contenders tfvae,gap_cond,...]

With `--imports`, what every command pays before it reads its data: a
fresh process that starts TensorFlow as the commands do
(`runtime.prefer_tf_keras`, `runtime.import_tensorflow`) and imports
`tfvae.model`, timed from outside, wall and CPU seconds, in alternating
rounds: `tf_keras_only` (the commands since 0.12.1) against `keras3_too`
(`TF_USE_LEGACY_KERAS=0`: `import tensorflow` loads Keras 3 as well, as
before).

    .venv/bin/python scripts/bench_startup.py --imports [--rounds 7]
"""

import argparse
import json
import os
import statistics
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import _bench  # noqa: E402  (scripts/_bench.py, next to this file)

CONTENDERS = ("tfvae", "autograph", "gap_cond", "keras_loop")


def make_table(name):
  """(rows [N, D] float64, VAE keyword arguments)."""
  from tfvae import data as data_lib  # pylint: disable=g-import-not-at-top
  if name == "demo":
    return data_lib.load_default().values, {}
  rng = np.random.default_rng(0)
  n = 2000
  z = rng.normal(size=n)
  real = z[:, None] * rng.uniform(0.5, 2.0, 4) + 0.5 * rng.normal(size=(n, 4))
  count = rng.poisson(np.exp(1.0 + 0.5 * z))
  positive = np.exp(2.0 + 0.7 * z + 0.3 * rng.normal(size=n))
  level = np.digitize(z + 0.3 * rng.normal(size=n), [-0.6, 0.6])
  flag = rng.uniform(size=n) < 1.0 / (1.0 + np.exp(-3.0 * z))
  x = np.column_stack([real, count, positive, level, flag]).astype(np.float64)
  if name == "gappy":
    x[rng.uniform(size=x.shape) < 0.1] = np.nan
  kwargs = dict(
      categories=[None] * 6 + [["lo", "mid", "hi"], ["false", "true"]],
      column_types=["real"] * 4 + ["count", "positive", "categorical",
                                   "binary"])
  return x, kwargs


def worker(table, contender):
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
  from tfvae import runtime  # pylint: disable=g-import-not-at-top
  runtime.import_tensorflow()
  import tf_keras  # pylint: disable=g-import-not-at-top
  import tfvae  # pylint: disable=g-import-not-at-top
  x, kwargs = make_table(table)
  tf_keras.utils.set_random_seed(0)
  model = tfvae.VAE(input_dim=x.shape[1], seed=0, **kwargs)
  traces = {"train": 0, "test": 0}
  for kind in traces:
    step = getattr(model, f"{kind}_step")

    def counted(data, kind=kind, step=step):
      traces[kind] += 1
      return step(data)

    setattr(model, f"{kind}_step", counted)
  if contender == "autograph":
    model.step_functions_autograph = True
  if contender == "gap_cond":
    model.gap_bound_in_one_graph = False
  if contender == "keras_loop":
    model.make_train_function = (
        lambda force=False: tf_keras.Model.make_train_function(model, force))
    model.make_test_function = (
        lambda force=False: tf_keras.Model.make_test_function(model, force))
  model.adapt(x)
  model.compile()
  if contender == "keras_loop":  # the slots left for the first step
    build = model.optimizer.build
    calls = []

    def first_call_skipped(var_list):
      calls.append(1)
      if len(calls) > 1:
        build(var_list)

    model.optimizer.build = first_call_skipped
  start = time.perf_counter()
  history = model.fit(x, epochs=1, validation_split=0.2, verbose=0)
  seconds = time.perf_counter() - start
  print(json.dumps({"seconds": seconds, **traces,
                    "val_loss": history.history["val_loss"][-1]}))


IMPORT_CODE = ("from tfvae import runtime\n"
               "runtime.prefer_tf_keras()\n"
               "runtime.import_tensorflow()\n"
               "import tfvae.model\n")


def time_imports(rounds):
  """Prints the start-up of a command's process, both ways, side by side."""
  import resource  # pylint: disable=g-import-not-at-top
  import subprocess  # pylint: disable=g-import-not-at-top
  contenders = {"tf_keras_only": {}, "keras3_too": {"TF_USE_LEGACY_KERAS": "0"}}
  results = {name: {"wall": [], "cpu": []} for name in contenders}
  for _ in range(rounds):
    for name, extra in contenders.items():
      env = {k: v for k, v in os.environ.items() if k != "TF_USE_LEGACY_KERAS"}
      env.update(extra, TF_CPP_MIN_LOG_LEVEL="3")
      before = resource.getrusage(resource.RUSAGE_CHILDREN)
      start = time.perf_counter()
      subprocess.run([sys.executable, "-c", IMPORT_CODE], env=env, check=True,
                     cwd=ROOT)
      results[name]["wall"].append(time.perf_counter() - start)
      after = resource.getrusage(resource.RUSAGE_CHILDREN)
      results[name]["cpu"].append(after.ru_utime + after.ru_stime
                                  - before.ru_utime - before.ru_stime)
  print(f"## a command's start-up: TensorFlow, TFP, tf-keras and tfvae.model "
        f"(median of {rounds} alternating rounds, fresh processes)")
  print(f"{'contender':<14} {'wall s':>7} {'min':>6} {'max':>6} {'cpu s':>6}")
  medians = {}
  for name, runs in results.items():
    medians[name] = statistics.median(runs["wall"])
    print(f"{name:<14} {medians[name]:>7.2f} {min(runs['wall']):>6.2f} "
          f"{max(runs['wall']):>6.2f} {statistics.median(runs['cpu']):>6.2f}")
  print(f"keras3_too / tf_keras_only: "
        f"{medians['keras3_too'] / medians['tf_keras_only']:.2f}x the time")


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--rounds", type=int, default=3)
  parser.add_argument("--tables", default="demo,mixed,gappy")
  parser.add_argument("--contenders", default=",".join(CONTENDERS))
  parser.add_argument("--imports", action="store_true",
                      help="time a command's start-up instead")
  parser.add_argument("--worker", nargs=2, help=argparse.SUPPRESS)
  args = parser.parse_args()
  if args.imports:
    time_imports(args.rounds)
    return
  if args.worker:
    worker(*args.worker)
    return
  contenders = args.contenders.split(",")
  for table in args.tables.split(","):
    results = {c: [] for c in contenders}
    for _ in range(args.rounds):
      for contender in contenders:  # alternating, in fresh processes
        results[contender].append(
            _bench.worker_result(__file__, table, contender))
    print(f"\n## {table}: first fit of one epoch (median of {args.rounds} "
          "alternating rounds)")
    print(f"{'contender':<12} {'seconds':>8} {'min':>7} {'max':>7} "
          f"{'train_step traces':>18} {'test_step traces':>17} {'val_loss':>10}")
    medians = {}
    for contender, runs in results.items():
      seconds = [r["seconds"] for r in runs]
      medians[contender] = statistics.median(seconds)
      print(f"{contender:<12} {medians[contender]:>8.2f} {min(seconds):>7.2f} "
            f"{max(seconds):>7.2f} {runs[0]['train']:>18} {runs[0]['test']:>17} "
            f"{runs[0]['val_loss']:>10.4f}")
    for other in contenders[1:]:
      print(f"{other} / {contenders[0]}: "
            f"{medians[other] / medians[contenders[0]]:.2f}x the time")


if __name__ == "__main__":
  main()
