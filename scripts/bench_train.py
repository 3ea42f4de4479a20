"""Training throughput: `VAE.fit` against a hand-written TensorFlow loop.

Examples per second of the same network (Dense layers with leaky ReLU, a
diagonal-Normal posterior with softplus scale, a Gaussian decoder with
learned scale, Adam), measured after a warm-up epoch, in fresh processes
that alternate between the contenders round after round (these machines
are shared and noisy: medians of the rounds are compared, side by side):

- `loop`: a minimal `tf.function` training step called once per batch;
- `loop_xla32`: 32 steps per graph call, the loop inside the graph, XLA;
- `fit_plain`: `VAE.fit` with `steps_per_execution=1` and no XLA (Keras'
  own defaults);
- `fit_spe32`: `steps_per_execution=32`;
- `fit_spe32_xla`: the same with XLA (`jit_compile=True`);
- `fit_default`: `VAE.compile()`'s defaults (what `tfvae-train` uses) and
  the constructor's `num_atoms="auto"` (slots sized to the atoms `adapt`
  finds: none on these continuous data);
- `fit_atoms8`: the same with room for 8 atoms per column whether or not
  the data hold any (the constructor's default before 0.5), what each
  slot costs.
- `fit_k10`, `fit_k50`: `fit_default` on the importance-weighted bound with
  K = 10 (the recipe below 10,000 training rows) and K = 50 (from 10,000):
  what the large-table recipe's K costs per example.
- `fit_no_indicator`: `fit_default` without the encoder's missing-value
  indicator input (`missing_indicator=False`): what that input's first-layer
  kernel costs on complete data.

Configurations: `wide` (64 features, hidden 256-256, latent 16, batch
256, 60,000 rows), `wine` (the embedded default's shape and
`tfvae-train`'s default settings: 13 features, batch 32) and `narrow`
(the synthetic `nonlinear` set's shape and large-table recipe: 4
features, 256-256, latent 2, batch 64, 16,000 rows).

    .venv/bin/python scripts/bench_train.py [--rounds 5] [--configs wide,wine]
        [--contenders fit_k10,fit_k50]
    .venv/bin/python scripts/bench_train.py --profile   # where a step's time goes
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

CONFIGS = {
    "wide": dict(features=64, hidden=(256, 256), latent=16, batch=256,
                 rows=60000),
    "wine": dict(features=13, hidden=None, latent=None, batch=None,
                 rows=178 * 4),
    # The shape of the synthetic `nonlinear` set and its large-table recipe.
    "narrow": dict(features=4, hidden=(256, 256), latent=2, batch=64,
                   rows=16000),
}
CONTENDERS = ("loop", "loop_xla32", "fit_plain", "fit_spe32", "fit_spe32_xla",
              "fit_default", "fit_atoms8", "fit_k10", "fit_k50",
              "fit_no_indicator")
EPOCHS = 3  # the first is a warm-up (tracing, XLA compilation)


def make_data(config):
  rng = np.random.default_rng(0)
  if config["features"] == 13:
    from tfvae import data  # pylint: disable=g-import-not-at-top
    x = data.load_default().values
    return np.concatenate([x] * (config["rows"] // len(x)))
  z = rng.normal(size=(config["rows"], 8))
  w = rng.normal(size=(8, config["features"]))
  return np.tanh(z @ w) + 0.1 * rng.normal(size=(config["rows"],
                                                config["features"]))


def defaults_for(config, x):
  """The wine configuration uses tfvae-train's defaults for its shape."""
  from tfvae import training  # pylint: disable=g-import-not-at-top
  recipe = training.default_recipe(len(x), x.shape[1])
  hidden = config["hidden"] or recipe["hidden_units"]
  latent = config["latent"] or recipe["latent_dim"]
  batch = config["batch"] or recipe["batch_size"]
  return tuple(hidden), latent, batch


def run_loop(x, hidden, latent, batch, steps_per_call, xla):
  """A hand-written training loop of the same network, examples/second."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  import tf_keras  # pylint: disable=g-import-not-at-top
  d = x.shape[1]
  mean, std = x.mean(0), x.std(0)
  x = ((x - mean) / std).astype(np.float32)

  def mlp(out):
    layers = [tf_keras.layers.Dense(u, activation="leaky_relu") for u in hidden]
    return tf_keras.Sequential(layers + [tf_keras.layers.Dense(out)])

  encoder, decoder = mlp(2 * latent), mlp(2 * d)
  encoder.build([None, d])
  decoder.build([None, latent])
  variables = encoder.trainable_variables + decoder.trainable_variables
  optimizer = tf_keras.optimizers.Adam(1e-3)
  optimizer.build(variables)

  def step(batch_x, seed):
    with tf.GradientTape() as tape:
      loc, raw = tf.split(encoder(batch_x), 2, axis=-1)
      scale = tf.nn.softplus(raw) + 1e-4
      z = loc + scale * tf.random.stateless_normal(tf.shape(loc), seed)
      x_loc, x_raw = tf.split(decoder(z), 2, axis=-1)
      x_scale = tf.nn.softplus(x_raw) + 1e-3
      nll = tf.reduce_sum(0.5 * tf.square((batch_x - x_loc) / x_scale) +
                          tf.math.log(x_scale) + 0.9189385, -1)
      kl = tf.reduce_sum(0.5 * (tf.square(loc) + tf.square(scale) - 1.0) -
                         tf.math.log(scale), -1)
      loss = tf.reduce_mean(nll + kl)
    optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
    return loss

  if steps_per_call == 1:
    train = tf.function(step, jit_compile=xla)
  else:
    def many(batches, seed):
      loss = tf.constant(0.0)
      for i in tf.range(tf.shape(batches)[0]):
        loss = step(batches[i], tf.stack([seed, tf.cast(i, tf.int64)]))
      return loss
    train = tf.function(many, jit_compile=xla)

  steps = len(x) // batch
  rng = np.random.default_rng(0)
  timings = []
  for epoch in range(EPOCHS):
    order = rng.permutation(len(x))[:steps * batch]
    batches = tf.constant(x[order].reshape(steps, batch, d))
    start = time.perf_counter()
    if steps_per_call == 1:
      for i in range(steps):
        loss = train(batches[i], tf.constant([epoch, i], tf.int64))
    else:
      for i in range(0, steps, steps_per_call):
        loss = train(batches[i:i + steps_per_call], tf.constant(epoch, tf.int64))
    loss.numpy()  # wait for the last step
    timings.append(time.perf_counter() - start)
  return steps * batch / statistics.median(timings[1:])


def run_fit(x, hidden, latent, batch, compile_options, **model_options):
  """`VAE.fit` on the same network (the single-sample ELBO unless K is
  given), examples/second."""
  import tf_keras  # pylint: disable=g-import-not-at-top
  import tfvae  # pylint: disable=g-import-not-at-top
  tf_keras.utils.set_random_seed(0)
  model_options.setdefault("num_train_samples", 1)
  model = tfvae.VAE(input_dim=x.shape[1], latent_dim=latent,
                    hidden_units=hidden, likelihood="gaussian", seed=0,
                    **model_options)
  model.adapt(x)
  model.compile(**compile_options)
  steps = len(x) // batch
  x = x[:steps * batch]

  class Timer(tf_keras.callbacks.Callback):

    def on_epoch_begin(self, epoch, logs=None):
      self.start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
      timings.append(time.perf_counter() - self.start)

  timings = []
  model.fit(x, epochs=EPOCHS, batch_size=batch, shuffle=True, verbose=0,
            callbacks=[Timer()], lr_patience=0)
  return steps * batch / statistics.median(timings[1:])


def worker(config_name, contender):
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
  from tfvae import runtime  # pylint: disable=g-import-not-at-top
  runtime.import_tensorflow()
  config = CONFIGS[config_name]
  x = make_data(config)
  hidden, latent, batch = defaults_for(config, x)
  if contender == "loop":
    speed = run_loop(x, hidden, latent, batch, 1, False)
  elif contender == "loop_xla32":
    speed = run_loop(x, hidden, latent, batch, 32, True)
  elif contender == "fit_plain":
    speed = run_fit(x, hidden, latent, batch,
                    dict(steps_per_execution=1, jit_compile=False))
  elif contender == "fit_spe32":
    speed = run_fit(x, hidden, latent, batch,
                    dict(steps_per_execution=32, jit_compile=False))
  elif contender == "fit_spe32_xla":
    speed = run_fit(x, hidden, latent, batch,
                    dict(steps_per_execution=32, jit_compile=True))
  elif contender == "fit_atoms8":
    speed = run_fit(x, hidden, latent, batch, {}, num_atoms=8)
  elif contender == "fit_no_indicator":
    speed = run_fit(x, hidden, latent, batch, {}, missing_indicator=False)
  elif contender in ("fit_k10", "fit_k50"):
    speed = run_fit(x, hidden, latent, batch, {},
                    num_train_samples=int(contender[len("fit_k"):]))
  else:
    speed = run_fit(x, hidden, latent, batch, {})
  print(json.dumps({"speed": speed}))


def profile_step():
  """Prints the ops that take the time in one `fit` step (wide config)."""
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  import tfvae  # pylint: disable=g-import-not-at-top
  config = CONFIGS["wide"]
  x = make_data(config)[:256 * 64]
  model = tfvae.VAE(input_dim=x.shape[1], latent_dim=config["latent"],
                    hidden_units=config["hidden"], likelihood="gaussian",
                    num_train_samples=1)
  model.adapt(x)
  model.compile(steps_per_execution=1, jit_compile=False)
  model.fit(x, epochs=1, batch_size=256, verbose=0)
  logdir = os.path.join(ROOT, "bench_results", "profile")
  tf.profiler.experimental.start(logdir)
  model.fit(x, epochs=1, batch_size=256, verbose=0)
  tf.profiler.experimental.stop()
  print(f"profile written to {logdir} (tensorboard --logdir {logdir}, "
        "Profile tab)")


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--rounds", type=int, default=5)
  parser.add_argument("--configs", default="wide,wine")
  parser.add_argument("--contenders", default=",".join(CONTENDERS))
  parser.add_argument("--worker", nargs=2, help=argparse.SUPPRESS)
  parser.add_argument("--profile", action="store_true")
  args = parser.parse_args()
  if args.worker:
    worker(*args.worker)
    return
  if args.profile:
    profile_step()
    return
  contenders = args.contenders.split(",")
  for config_name in args.configs.split(","):
    speeds = {c: [] for c in contenders}
    for round_index in range(args.rounds):
      for contender in contenders:  # alternating, in fresh processes
        speeds[contender].append(_bench.worker_result(
            __file__, config_name, contender)["speed"])
      print(f"  {config_name} round {round_index + 1}/{args.rounds} done",
            flush=True)
    baseline = "loop" if "loop" in speeds else contenders[0]
    reference = statistics.median(speeds[baseline])
    print(f"\n## {config_name}: examples per second (median of {args.rounds} "
          "alternating rounds)")
    print(f"{'contender':<14} {'median':>10} {'min':>10} {'max':>10} "
          f"{'vs ' + baseline:>12}")
    for contender, values in speeds.items():
      median = statistics.median(values)
      ratio = f"{median / reference:.2f}x"
      print(f"{contender:<14} {median:>10.0f} {min(values):>10.0f} "
            f"{max(values):>10.0f} {ratio:>12}")


if __name__ == "__main__":
  main()
