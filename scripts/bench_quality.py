"""Held-out log-likelihood of tfvae's defaults next to tuned classical densities.

For every table and seed, the rows are shuffled (seeded) and split 80 / 20
into training and test rows. Baselines choose their hyper-parameters on a
validation split of the training rows (the last 20%) and are refitted on
all training rows: a full-covariance Gaussian, factor analysis (1 to D - 1
factors), scikit-learn's `GaussianMixture` (full covariance, 1 to 20
components) and a Gaussian kernel density estimate (bandwidth on
standardised columns, log-Jacobian back to data units). tfvae gets the same
training rows and runs with `tfvae-train`'s defaults (`training.train`
with a default `TrainConfig`); variants override some fields. Test rows are
scored once: exactly for the baselines, by importance sampling with K =
1000 for tfvae. All numbers are mean log-likelihoods in nats per example,
data units (higher is better); the tables also give the paired standard
error of the per-row difference against the mixture.

Flows: a masked autoregressive flow (`maf`) and a neural spline flow
(`nsf`), two configurations each chosen on validation
(`tfvae.baseline_flows`).

The basis is dequantised, as density papers compare on discrete data:
every column recorded at a resolution r > 0 (`statistics.compute_resolution`
of the training rows) is jittered by U(-r/2, r/2) for the baselines (their
training and test rows), and tfvae, trained on the values as recorded,
reports `marginal_log_likelihood(..., basis="dequantized")`: a value at an
atom has its probability spread over its bin of width r. Nobody gains from
a spike width. Rows written before this basis (no "basis" field) are read
with `--basis data`.

Synthetic sets with exactly known densities: `nonlinear` (a curve in 4-D
driven by one latent, heteroscedastic noise) and `surface` (a surface in
10-D driven by two latents).

    .venv/bin/python scripts/bench_quality.py [--tables a,b] [--seeds 0,1,2]
        [--variants defaults,search] [--jobs 2] [--results FILE]

Results are cached in a JSON-lines file (default
`bench_results/quality.jsonl`), so an interrupted run continues where it
stopped; `--fresh` ignores the cache.
"""

import argparse
import gc
import json
import math
import os
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import _bench  # noqa: E402  (scripts/_bench.py, next to this file)

from tfvae import baselines  # noqa: E402
from tfvae import realdata  # noqa: E402
from tfvae import statistics  # noqa: E402
from tfvae import synthetic  # noqa: E402

SYNTHETIC = ("nonlinear", "surface")
BASELINES = ("full_gaussian", "factor_analysis", "gaussian_mixture", "kde",
             "maf", "nsf")
# What the results written now measure: "dequantized" (see the docstring).
# Earlier rows (no "basis" field: baselines fitted to the raw values, tfvae
# with spikes 1e-3 standard deviations wide) are "data" rows.
BASIS = "dequantized"

# Variants of the defaults: TrainConfig fields to override, or a function of
# (training rows, columns) returning them.
VARIANTS = {
    "defaults": {},
    "search": {"search": True, "time_budget": 2.0},
    "no_atoms": {"num_atoms": 0},
    "atoms_16": {"num_atoms": 16},
    "elbo": {"num_train_samples": 1},
    "k50": {"num_train_samples": 50},
    "snippet": {"hidden_units": "snippet", "lr_patience": 0,
                "num_train_samples": 1, "num_atoms": 0, "batch_size": 32,
                "patience": 50},
    "gaussian": {"likelihood": "gaussian"},
    "laplace": {"likelihood": "laplace"},
    "gaussian_shared": {"likelihood": "gaussian_shared"},
    "student_t_df2": {"model_options": {"min_df": 2.1}},
    # The latent as wide as the data, half as wide (the recipe's rule before
    # tfvae 0.10), and one narrower than the recipe's.
    "latent_full": lambda rows, columns: {"latent_dim": columns},
    "latent_half": lambda rows, columns: {"latent_dim": max(2, columns // 2)},
    "latent_2": {"latent_dim": 2},
    "latent_full_no_atoms": lambda rows, columns: {"latent_dim": columns,
                                                   "num_atoms": 0},
}


def load_table(name, seed):
  """(train, test, true log-density or None) for a table and a seed."""
  if name in SYNTHETIC:
    maker = {"nonlinear": (synthetic.make_nonlinear,
                           synthetic.nonlinear_log_density),
             "surface": (synthetic.make_surface, synthetic.surface_log_density)}
    make, density = maker[name]
    train = make(20000, seed=100 + seed).astype(np.float64)
    test = make(5000, seed=200 + seed).astype(np.float64)
    return train, test, density
  values, _ = realdata.load(name)
  order = np.random.default_rng(seed).permutation(len(values))
  values = values[order]
  cut = int(round(0.8 * len(values)))
  return values[:cut], values[cut:], None


def jitter(values, resolution, seed):
  """Uniform dequantisation: each value recorded at resolution r > 0 moved
  by U(-r/2, r/2), the literature's footing for continuous densities on
  discrete data (Theis et al. 2016: the expected log-density of the
  jittered values bounds log(P(bin) / r) from below)."""
  rng = np.random.default_rng(seed)
  noise = rng.uniform(-0.5, 0.5, size=values.shape) * resolution
  return values + noise


def run_baseline(name, train, test, seed):
  resolution = statistics.compute_resolution(train)
  train = jitter(train, resolution, 10 * seed + 1)
  test = jitter(test, resolution, 10 * seed + 2)
  cut = int(round(0.8 * len(train)))
  fit = {"full_gaussian": baselines.tuned_full_gaussian,
         "factor_analysis": baselines.tuned_factor_analysis,
         "gaussian_mixture": lambda t, v: baselines.tuned_gaussian_mixture(
             t, v, seed=seed),
         "kde": baselines.tuned_kde,
         "maf": lambda t, v: _flow("maf", t, v, seed),
         "nsf": lambda t, v: _flow("nsf", t, v, seed)}[name]
  log_density, chosen = fit(train[:cut], train[cut:])
  return log_density(test), chosen


def _flow(kind, train, validation, seed):
  from tfvae import baseline_flows  # pylint: disable=g-import-not-at-top
  return baseline_flows.tuned_flow(kind, train, validation, seed=seed)


def run_tfvae(variant, train, test, seed):
  from tfvae import data as data_lib  # pylint: disable=g-import-not-at-top
  from tfvae import training  # pylint: disable=g-import-not-at-top
  overrides = VARIANTS[variant]
  if callable(overrides):
    overrides = overrides(len(train), train.shape[1])
  overrides = dict(overrides)
  members = overrides.pop("ensemble", 1)
  model_options = overrides.pop("model_options", None)
  table = data_lib.Table(train, None, "benchmark")
  estimates, chosen = [], {}
  for member in range(members):
    config = training.TrainConfig(seed=seed + 1000 * member, verbose=0,
                                  logdir=None, **overrides)
    summary = training.train(config, table, model_options=model_options)
    estimates.append(summary.model.marginal_log_likelihood(
        test, num_samples=1000, seed=seed, basis=BASIS))
    chosen = summary.recipe or {}
  # An ensemble's density is the average of its members' densities.
  stacked = np.stack(estimates)
  peak = stacked.max(axis=0)
  scores = peak + np.log(np.mean(np.exp(stacked - peak), axis=0))
  return scores, json.dumps(chosen, default=str)


def run_cell(cell):
  """One (table, seed, model) result; runs in a worker process."""
  table, seed, model = cell
  start = time.perf_counter()
  train, test, density = load_table(table, seed)
  if model == "true_density":
    scores, chosen = density(test), "-"
  elif model in BASELINES:
    scores, chosen = run_baseline(model, train, test, seed)
  else:
    scores, chosen = run_tfvae(model, train, test, seed)
  # Each flow traces its own graphs: collect them, or a worker grows by
  # gigabytes over a table list.
  gc.collect()
  return {"table": table, "seed": seed, "model": model, "basis": BASIS,
          "mean": float(np.mean(scores)), "rows": scores.tolist(),
          "chosen": chosen, "seconds": time.perf_counter() - start,
          "dims": int(train.shape[1]), "train_rows": int(len(train))}


def _init_worker(threads):
  os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
  if threads:
    os.environ["OMP_NUM_THREADS"] = str(threads)
    try:
      from tfvae import runtime  # pylint: disable=g-import-not-at-top
      tf = runtime.import_tensorflow()
      tf.config.threading.set_intra_op_parallelism_threads(threads)
      tf.config.threading.set_inter_op_parallelism_threads(threads)
    except RuntimeError:
      pass


def summarise(results, tables, models):
  """Prints one table per data set and the scoreboard against the mixture."""
  by_key = {(r["table"], r["seed"], r["model"]): r for r in results}
  board = {}
  for table in tables:
    seeds = sorted({r["seed"] for r in results if r["table"] == table})
    rows = [m for m in models if any((table, s, m) in by_key for s in seeds)]
    if not rows:
      continue
    dims = next(r["dims"] for r in results if r["table"] == table)
    print(f"\n## {table} ({dims} columns, seeds {seeds}): mean test "
          "log-likelihood, nats per example (higher is better)")
    print(f"{'model':<18} {'mean':>10} {'sd':>7} {'per dim':>8} "
          f"{'vs mixture':>11} {'paired SE':>9}  chosen (seed {seeds[0]})")
    for model in rows:
      cells = [by_key.get((table, s, model)) for s in seeds]
      cells = [c for c in cells if c]
      means = np.array([c["mean"] for c in cells])
      diffs, errors = [], []
      for c in cells:
        mixture = by_key.get((table, c["seed"], "gaussian_mixture"))
        if mixture:
          d = np.array(c["rows"]) - np.array(mixture["rows"])
          diffs.append(d.mean())
          errors.append(d.std() / math.sqrt(len(d)))
      diff = np.mean(diffs) if diffs else math.nan
      error = (math.sqrt(np.sum(np.square(errors))) / len(errors)
               if errors else math.nan)
      print(f"{model:<18} {means.mean():>10.4f} {means.std():>7.4f} "
            f"{means.mean() / dims:>8.4f} {diff:>+11.4f} {error:>9.4f}  "
            f"{cells[0]['chosen'][:60]}")
      board.setdefault(model, {})[table] = (means.mean(), diff)
  if "gaussian_mixture" in board:
    print("\n## scoreboard (real tables): wins against the tuned mixture and "
          "against the full Gaussian")
    real = [t for t in tables if t not in SYNTHETIC]
    for model, per_table in board.items():
      if model in ("gaussian_mixture", "true_density"):
        continue
      cells = [t for t in real if t in per_table and t in board["gaussian_mixture"]]
      wins = sum(per_table[t][1] > 0 for t in cells)
      gaussian = board.get("full_gaussian", {})
      losses = [t for t in cells if t in gaussian and per_table[t][0] < gaussian[t][0]]
      print(f"{model:<18} beats the mixture on {wins}/{len(cells)}; below the "
            f"full Gaussian on {len(losses)} {losses if losses else ''}")


def markdown(results, tables, models):
  """One Markdown table: a row per data set, mean +- sd per model, and each
  tfvae variant's paired difference from the mixture (for the README)."""
  by_key = {(r["table"], r["seed"], r["model"]): r for r in results}
  variants = [m for m in models if m in VARIANTS]
  header = (["table (rows x columns)"] + [m for m in models if m != "true_density"]
            + [f"{v} - mixture (SE)" for v in variants]
            + [f"{v} - best of mixture, MAF, NSF (SE)" for v in variants])
  if any(t in SYNTHETIC for t in tables):
    header.insert(1, "true density")
  lines = ["| " + " | ".join(header) + " |",
           "| " + " | ".join(["---"] * len(header)) + " |"]
  for table in tables:
    seeds = sorted({r["seed"] for r in results if r["table"] == table})
    if not seeds:
      continue
    first = next(r for r in results if r["table"] == table)
    rows = first["train_rows"] + len(first["rows"])
    cells = [f"{table} ({rows} x {first['dims']}), {len(seeds)} seeds"]
    if "true density" in header:
      cells.append("")
    best = max((np.mean([by_key[(table, s, m)]["mean"] for s in seeds])
                for m in models if m != "true_density" and
                all((table, s, m) in by_key for s in seeds)), default=None)
    for model in models:
      runs = [by_key[(table, s, model)]["mean"] for s in seeds
              if (table, s, model) in by_key]
      text = (f"{np.mean(runs):.2f} ± {np.std(runs):.2f}" if runs else "")
      if runs and best is not None and np.mean(runs) == best:
        text = f"**{text}**"
      if model == "true_density":
        if "true density" in header:
          cells[1] = text
      else:
        cells.append(text)
    strong = [m for m in ("gaussian_mixture", "maf", "nsf")
              if all((table, s, m) in by_key for s in seeds)]
    best_strong = max(strong, default=None, key=lambda m: np.mean(
        [by_key[(table, s, m)]["mean"] for s in seeds]))
    for reference in ("gaussian_mixture", best_strong):
      for variant in variants:
        cells.append(_paired(by_key, table, seeds, variant, reference) +
                     (f" vs {reference}" if reference == best_strong and
                      reference else ""))
    lines.append("| " + " | ".join(cells) + " |")
  print("\n".join(lines))


def _paired(by_key, table, seeds, model, reference):
  """"+d (SE)": the mean over seeds of the per-row difference model -
  reference, with its paired standard error."""
  diffs, errors = [], []
  for seed in seeds:
    a, b = by_key.get((table, seed, model)), by_key.get((table, seed, reference))
    if a and b:
      d = np.array(a["rows"]) - np.array(b["rows"])
      diffs.append(d.mean())
      errors.append(d.std() / math.sqrt(len(d)))
  if not diffs:
    return ""
  error = math.sqrt(np.sum(np.square(errors))) / len(errors)
  return f"{np.mean(diffs):+.2f} ({error:.2f})"


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--tables", default=",".join(realdata.TABLES + SYNTHETIC))
  parser.add_argument("--seeds", default="0,1,2")
  parser.add_argument("--variants", default="defaults")
  parser.add_argument("--baselines", default=",".join(BASELINES))
  parser.add_argument("--jobs", type=int, default=2,
                      help="worker processes (each limited to 2 / jobs threads)")
  parser.add_argument("--results", default=os.path.join(
      ROOT, "bench_results", "quality.jsonl"))
  parser.add_argument("--fresh", action="store_true")
  parser.add_argument("--basis", default=BASIS, choices=("data", BASIS),
                      help="which results to summarise: this code's "
                      "(dequantized) or the earlier raw-data rows")
  parser.add_argument("--summary-only", action="store_true")
  parser.add_argument("--markdown", action="store_true",
                      help="also print one Markdown table of all data sets")
  args = parser.parse_args()
  tables = [t for t in args.tables.split(",") if t]
  seeds = [int(s) for s in args.seeds.split(",")]
  variants = [v for v in args.variants.split(",") if v]
  models = [b for b in args.baselines.split(",") if b] + variants
  unknown = [v for v in variants if v not in VARIANTS]
  if unknown:
    parser.error(f"unknown variants {unknown}; known: {sorted(VARIANTS)}")
  os.makedirs(os.path.dirname(args.results), exist_ok=True)
  cached = []
  if os.path.exists(args.results) and not args.fresh:
    with open(args.results) as f:
      cached = [json.loads(line) for line in f if line.strip()]
    cached = [r for r in cached if r.get("basis", "data") == args.basis]
  done = {(r["table"], r["seed"], r["model"]) for r in cached}
  cells = [(t, s, m) for t in tables for s in seeds
           for m in (["true_density"] if t in SYNTHETIC else []) + models
           if (t, s, m) not in done]
  if args.basis != BASIS:
    cells = []  # earlier rows are read, never written
  if cells and not args.summary_only:
    print(f"{len(cells)} cells to run ({len(done)} cached)", flush=True)
    threads = max(1, 2 // max(args.jobs, 1))
    for cell, result in _bench.run_cells(cells, run_cell, args.jobs,
                                         args.results, _init_worker,
                                         (threads,)):
      cached.append(result)
      print(f"  {cell[0]} seed {cell[1]} {cell[2]}: {result['mean']:.4f} "
            f"({result['seconds']:.0f} s)", flush=True)
  relevant = [r for r in cached if r["table"] in tables and r["seed"] in seeds]
  summarise(relevant, tables, ["true_density"] + models)
  if args.markdown:
    print()
    markdown(relevant, tables, ["true_density"] + models)


if __name__ == "__main__":
  main()
