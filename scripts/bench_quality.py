"""Held-out negative log-likelihood of every tfvae family next to baselines.

For each data set: train / validation / test splits; every model's
hyper-parameters (latent size, factor count) are chosen on the validation
split, and the test split is scored once, with the importance-weighted
estimate (K = 1000) for the VAEs and exact densities for the Gaussian
baselines. Numbers are nats per example in the data's own units; lower is
better.

Data sets:
- wine: the embedded UCI Wine data (178 x 13).
- nonlinear: `tfvae.synthetic.make_nonlinear`, a 1-D latent curve in 4-D
  with heteroscedastic noise; its true density is integrated numerically.
- outliers: the nonlinear data with 2% of the cells replaced by gross
  errors (uniform over +-10 standard deviations of the column), in every
  split.
- wide_range: the nonlinear data with columns rescaled to span 1e-3 to 1e4;
  `adapt` (standardised networks) against the same model on raw values.

    .venv/bin/python scripts/bench_quality.py [--quick] [--only nonlinear]
"""

import argparse
import math
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import tf_keras  # noqa: E402

import tfvae  # noqa: E402
from tfvae import baselines  # noqa: E402
from tfvae import data as data_lib  # noqa: E402
from tfvae import model as model_lib  # noqa: E402
from tfvae import synthetic  # noqa: E402

FAMILIES = ("gaussian", "gaussian_shared", "laplace", "student_t", "mse")
WIDE_RANGE_SCALES = np.array([1e-3, 1.0, 100.0, 1e4], np.float32)


def make_splits(name, quick):
  """Returns (train, validation, test, true log-density fn or None, config)."""
  if name == "wine":
    x = data_lib.load_default().values
    order = np.random.default_rng(0).permutation(len(x))
    x = x[order]
    config = dict(hidden_units=(32,), latents=(1, 2, 4), batch_size=32,
                  epochs=2000, patience=100)
    return x[:106], x[106:142], x[142:], None, config
  n = 8000 if quick else 60000
  train = synthetic.make_nonlinear(n, seed=1)
  validation = synthetic.make_nonlinear(5000, seed=2)
  test = synthetic.make_nonlinear(5000 if quick else 10000, seed=3)
  config = dict(hidden_units=(256, 256), latents=(1, 2), batch_size=256,
                epochs=60 if quick else 400, patience=20)
  true_density = synthetic.nonlinear_log_density
  if name == "outliers":
    def contaminate(x, seed):
      rng = np.random.default_rng(seed)
      x = x.copy()
      mask = rng.uniform(size=x.shape) < 0.02
      spread = 10 * train.std(axis=0)
      noise = rng.uniform(-1, 1, size=x.shape) * spread + train.mean(axis=0)
      x[mask] = noise[mask]
      return x
    train, validation, test = (contaminate(x, s) for x, s in
                               ((train, 11), (validation, 12), (test, 13)))
    true_density = None  # the contaminated density has no closed form here
  elif name == "wide_range":
    train, validation, test = (x * WIDE_RANGE_SCALES for x in
                               (train, validation, test))
    log_jacobian = float(np.sum(np.log(WIDE_RANGE_SCALES)))
    true_density = lambda x: (  # noqa: E731
        synthetic.nonlinear_log_density(x / WIDE_RANGE_SCALES) - log_jacobian)
  return train, validation, test, true_density, config


def fit_vae(family, latent_dim, train, validation, config, adapt=True, seed=0):
  tf_keras.utils.set_random_seed(seed)
  model = tfvae.VAE(input_dim=train.shape[1], latent_dim=latent_dim,
                    hidden_units=config["hidden_units"], likelihood=family)
  if adapt:
    model.adapt(train)
  model.compile(model_lib.make_optimizer(1e-3))
  callbacks = [
      tf_keras.callbacks.EarlyStopping(monitor="val_loss",
                                       patience=config["patience"],
                                       restore_best_weights=True),
      tf_keras.callbacks.ReduceLROnPlateau(monitor="val_loss", factor=0.5,
                                           patience=max(config["patience"] // 3, 5)),
  ]
  model.fit(train, validation_data=(validation,), epochs=config["epochs"],
            batch_size=config["batch_size"], callbacks=callbacks, verbose=0)
  return model


def nll(values):
  return -float(np.mean(values))


def select_vae(family, train, validation, config, adapt=True):
  """Best latent size on the validation split (IWAE, K = 100)."""
  best = None
  for latent_dim in config["latents"]:
    model = fit_vae(family, latent_dim, train, validation, config, adapt=adapt)
    score = nll(model.marginal_log_likelihood(validation, 100, seed=1))
    if not math.isfinite(score):
      score = math.inf
    if best is None or score < best[0]:
      best = (score, latent_dim, model)
  return best


def baseline_rows(train, validation, test):
  d = train.shape[1]
  rows = []
  mean, cov = baselines.fit_full_gaussian(train)
  rows.append(("full-covariance Gaussian", "-",
               nll(synthetic.gaussian_log_density(test, mean, cov))))
  for name, fit in (("probabilistic PCA", lambda q: baselines.fit_ppca(train, q)),
                    ("factor analysis", lambda q: baselines.fit_factor_analysis(train, q))):
    best = None
    for q in range(1, d):
      fitted = fit(q)
      mean, cov = ((fitted.mean, fitted.covariance)
                   if isinstance(fitted, synthetic.PPCAParams) else fitted)
      score = nll(synthetic.gaussian_log_density(validation, mean, cov))
      if best is None or score < best[0]:
        best = (score, q, mean, cov)
    _, q, mean, cov = best
    rows.append((name, f"q={q}", nll(synthetic.gaussian_log_density(test, mean, cov))))
  return rows


def run(name, quick, families):
  train, validation, test, true_density, config = make_splits(name, quick)
  d = train.shape[1]
  print(f"\n## {name}: {len(train)} train / {len(validation)} validation / "
        f"{len(test)} test, {d} features", flush=True)
  rows = []
  if true_density is not None:
    rows.append(("true density", "-", nll(true_density(test))))
  rows += baseline_rows(train, validation, test)
  runs = [(family, True) for family in families]
  if name == "wide_range":
    runs = [("gaussian", True), ("gaussian", False)]
  for family, adapt in runs:
    start = time.perf_counter()
    _, latent_dim, model = select_vae(family, train, validation, config, adapt)
    score = nll(model.marginal_log_likelihood(test, 1000, seed=2))
    label = f"tfvae {family}" + ("" if adapt else " (raw, no adapt)")
    rows.append((label, f"K={latent_dim}", score))
    print(f"  ... {label}: {score:.4f} ({time.perf_counter() - start:.0f} s)",
          flush=True)
  best = min(score for _, _, score in rows if math.isfinite(score))
  print(f"{'model':<32} {'chosen':>7} {'NLL nats/example':>17} "
        f"{'per dim':>9} {'vs best':>8}")
  for label, chosen, score in rows:
    print(f"{label:<32} {chosen:>7} {score:>17.4f} {score / d:>9.4f} "
          f"{score - best:>+8.4f}")
  return rows


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--quick", action="store_true",
                      help="smaller synthetic sets and shorter training")
  parser.add_argument("--only", choices=("wine", "nonlinear", "outliers",
                                         "wide_range"), action="append")
  parser.add_argument("--families", default=",".join(FAMILIES))
  args = parser.parse_args()
  tf.get_logger().setLevel("ERROR")  # one trace per fresh model is expected
  families = tuple(args.families.split(","))
  for name in args.only or ("wine", "nonlinear", "outliers", "wide_range"):
    run(name, args.quick, families)


if __name__ == "__main__":
  main()
