"""`--search`: a few configurations tried on the validation split within
a time budget, the best one kept."""

import dataclasses
import math
import os

from tfvae import data as data_lib
from tfvae.training import inputs
from tfvae.training import loop
from tfvae.training import recipe


def search(config, data=None):
  """Tries `search_candidates` within `config.time_budget` minutes.

  Each candidate trains on the training split with early stopping on the
  validation split and is scored by its validation log-likelihood
  (importance-weighted, `config.num_samples`); the best one is the result
  (it is not trained again). Training stops when the budget is spent, so the
  whole search, closing evaluations included, stays close to the budget.
  With a log directory, candidate c logs under `LOGDIR/search/c`, so the
  HParams dashboard compares them.

  With `config.trim`, the rows are trimmed once (`loop.trimmed_data`, a
  first fit of the default settings), and every candidate trains and is
  scored on the same rows kept.

  Args:
    config: a `TrainConfig` (its `search` flag is ignored here).
    data: a `TrainingData` or `tfvae.data.Table`; default `prepare_data`.

  Returns:
    The winner's `TrainSummary`, with `search_table` listing every
    candidate, and its checkpoint and export written as `config` asks.
  """
  import time  # pylint: disable=g-import-not-at-top
  loop.check_outputs(config)
  if data is None or isinstance(data, data_lib.Table):
    data = inputs.prepare_data(config, table=data)
  if not data.num_validation:
    raise ValueError("--search needs a validation split (validation_split > 0)")
  start = time.monotonic()
  deadline = start + 60.0 * config.time_budget
  trimmed = None
  if config.trim:
    data, trimmed = loop.trimmed_data(config, data)
  table, best = [], None
  for name, overrides in recipe.search_candidates(data.num_train,
                                                   data.width):
    remaining = deadline - time.monotonic()
    if table and remaining < 0.05 * 60.0 * config.time_budget:
      break
    trial = dataclasses.replace(
        config, search=False, trim=0.0, checkpoint_dir=None, export_dir=None,
        deadline=deadline, verbose=min(config.verbose, 1),
        logdir=(os.path.join(config.logdir, "search", name)
                if config.logdir else None), **overrides)
    began = time.monotonic()
    summary = loop.train(trial, data)
    score = summary.validation_log_likelihood
    row = {"name": name, "settings": overrides, "epochs": summary.epochs_run,
           "seconds": time.monotonic() - began,
           "score": score if math.isfinite(score) else None, "chosen": False}
    table.append(row)
    if row["score"] is not None and (best is None or row["score"] > best[0]):
      best = (row["score"], row, summary, trial)
  _, row, summary, trial = best
  row["chosen"] = True
  summary.search_table = table
  summary.logdir = config.logdir
  summary.trimmed = trimmed
  chosen = dataclasses.replace(trial, trim=config.trim,
                               checkpoint_dir=config.checkpoint_dir,
                               export_dir=config.export_dir,
                               logdir=config.logdir, deadline=None)
  reported = {**summary.train,
              **{f"val_{k}": v for k, v in summary.validation.items()},
              "validation_log_likelihood": summary.validation_log_likelihood,
              "search": table}
  loop.write_outputs(summary, summary.model, chosen, reported, chief=True)
  return summary
