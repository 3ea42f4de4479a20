"""`TrainSummary`: what a run produced, and the command line's closing
report (`format`)."""

import dataclasses
import math

# The summary lists at most this many columns' types.
MAX_COLUMN_LINES = 40


@dataclasses.dataclass
class TrainSummary:
  """What a run produced; `format()` is the CLI's closing report."""

  source: str
  num_train: int
  num_validation: int
  input_dim: int
  epochs_run: int
  best_epoch: int
  first_loss: float
  train: dict
  validation: dict
  validation_log_likelihood: float
  num_samples: int
  # With text and real columns: the real columns' marginal log p(x_real)
  # (the rest, log p(x_text | x_real), is the text columns' part).
  validation_log_likelihood_real: float = None
  log_likelihood_rows: int = 0
  # The anomaly score above which 1% of those rows lie (`VAE.calibrate`).
  score_threshold: float = None
  # Each categorical column's weight of the model's level probabilities
  # against its frequencies in imputation (`VAE.calibrate_levels`).
  level_weights: dict = None
  summary_rows: dict = None
  recipe: dict = None
  search_table: list = None
  history: dict = None
  streamed: bool = False
  beta: float = 1.0
  num_train_samples: int = 1
  missing_fraction: dict = None
  dropped_rows: int = 0
  # Rows a first fit found least likely, left out (`loop.trim_rows`):
  # fraction, threshold (anomaly score) and the count of each split.
  trimmed: dict = None
  # The recipe's K lowered to keep an epoch within the budget
  # (`TrainConfig.epoch_budget`): {"wanted", "budget_minutes",
  # "wanted_minutes"}.
  train_samples_lowered: dict = None
  # One line per column (name, type, levels or range) when the table has
  # categorical columns (`tfvae.data.columns.describe`), and the file's
  # columns left out.
  column_lines: list = None
  ignored_columns: tuple = ()
  logdir: str = None
  checkpoint_dir: str = None
  export_paths: dict = None
  # Wall-clock seconds of `fit` (this process's epochs) and of the closing
  # evaluation, and training rows per second (`fit` only).
  fit_seconds: float = None
  evaluation_seconds: float = None
  rows_per_second: float = None
  model: object = dataclasses.field(default=None, repr=False)

  def trimmed_line(self):
    """What `trim` left out, one line (the summary's; `tfvae-score` says it
    too)."""
    trimmed = self.trimmed
    return (f"trimmed: {trimmed['train']} training and "
            f"{trimmed['validation']} validation rows left out, scoring above "
            f"{trimmed['threshold']:.4f} (the least likely "
            f"{trimmed['fraction']:.0%} of a first fit's training rows)")

  def format(self):
    def row(name, metrics, rows):
      if not metrics:
        return f"  {name:<11} (no data)"
      note = ""
      if rows is not None:
        note = f"   ({rows} rows)"
      return (f"  {name:<11} loss {metrics['loss']:10.4f}   reconstruction_nll "
              f"{metrics['reconstruction_nll']:10.4f}   kl "
              f"{metrics['kl']:8.4f}{note}")

    rows = self.summary_rows or {}
    if self.num_train_samples == 1:
      loss_is = f"loss = reconstruction_nll + beta * kl, beta = {self.beta:g}"
    else:
      loss_is = (f"loss = -importance-weighted bound, K = "
                 f"{self.num_train_samples}, beta = {self.beta:g}")
    lines = [
        "",
        f"tfvae summary: {self.source}, {self.num_train} training / "
        f"{self.num_validation} validation examples, {self.input_dim} features"
        + (" (streamed)" if self.streamed else ""),
    ]
    if self.dropped_rows:
      lines.append(f"  {self.dropped_rows} rows with every value missing were "
                   "left out")
    if self.trimmed:
      lines.append("  " + self.trimmed_line())
    if self.ignored_columns:
      lines.append("  columns not used: " + ", ".join(self.ignored_columns))
    if self.column_lines:
      lines.append("  columns:")
      shown_lines = self.column_lines[:MAX_COLUMN_LINES]
      lines.extend(f"    {line}" for line in shown_lines)
      if len(self.column_lines) > len(shown_lines):
        lines.append(f"    ... and {len(self.column_lines) - len(shown_lines)}"
                     " more")
    if self.missing_fraction:
      shown = ", ".join(f"{name} {fraction:.1%}" for name, fraction in
                        self.missing_fraction.items() if fraction > 0)
      lines.append(f"  missing values per column: {shown}")
    if self.search_table:
      lines.append("  search (validation log-likelihood, nats per example; "
                   "higher is better):")
      for entry in self.search_table:
        mark = "*" if entry["chosen"] else " "
        score = ("stopped by the time budget" if entry["score"] is None
                 else f"{entry['score']:10.4f}")
        lines.append(f"   {mark} {entry['name']:<12} {score}   "
                     f"{entry['epochs']:4d} epochs {entry['seconds']:6.0f} s")
    if self.recipe:
      lines.append("  settings: " + ", ".join(
          f"{name} {_show(value)}" for name, value in self.recipe.items()))
    if self.train_samples_lowered:
      lowered = self.train_samples_lowered
      lines.append(
          f"  K = {self.num_train_samples} (num_train_samples) keeps an epoch "
          f"within {lowered['budget_minutes']:g} minutes on 2 cores; the "
          f"recipe's K = {lowered['wanted']} fits a denser model, about "
          f"{lowered['wanted_minutes']:.0f} minutes an epoch "
          f"(--epoch-budget {math.ceil(lowered['wanted_minutes'])} or "
          f"--num-train-samples {lowered['wanted']})")
    timing = ""
    if self.fit_seconds is not None:
      timing = f"; training {self.fit_seconds:.1f} s"
      if self.rows_per_second:
        timing += f" ({self.rows_per_second:,.0f} rows/s)"
      if self.evaluation_seconds is not None:
        timing += f", closing evaluation {self.evaluation_seconds:.1f} s"
    lines += [
        f"  epochs run {self.epochs_run} (best {self.best_epoch}); first-epoch "
        f"loss {self.first_loss:.4f}{timing}",
        f"  all values in nats per example, in the data's own units ({loss_is})",
        row("train", self.train, rows.get("train")),
        row("validation", self.validation, rows.get("validation")),
    ]
    if not math.isnan(self.validation_log_likelihood):
      subset = (f", {self.log_likelihood_rows} random validation rows"
                if self.log_likelihood_rows < self.num_validation else "")
      lines.append(
          f"  validation marginal log-likelihood (IWAE, K={self.num_samples}"
          f"{subset}): {self.validation_log_likelihood:.4f} nats per example")
      if self.validation_log_likelihood_real is not None:
        real = self.validation_log_likelihood_real
        lines.append(
            f"    = real columns {real:.4f} (their density, text "
            f"marginalised) + text columns given them "
            f"{self.validation_log_likelihood - real:.4f} (probabilities)")
    if self.score_threshold is not None:
      lines.append(
          "  their anomaly scores are kept for percentiles: 1% score above "
          f"{self.score_threshold:.4f} (tfvae-score --contamination 0.01)")
    if self.level_weights:
      shown = list(self.level_weights.items())[:MAX_COLUMN_LINES]
      more = len(self.level_weights) - len(shown)
      lines.append(
          "  imputed levels calibrated on them (weight of the model against "
          "the column's frequencies; 0: its mode): " + ", ".join(
              f"{name} {weight:.2f}" for name, weight in shown) +
          (f", ... and {more} more" if more > 0 else ""))
    if self.logdir:
      lines.append(f"  TensorBoard logs: {self.logdir}  "
                   f"(tensorboard --logdir {self.logdir})")
    if self.checkpoint_dir:
      lines.append(f"  checkpoint: {self.checkpoint_dir}")
    for part, path in (self.export_paths or {}).items():
      lines.append(f"  exported {part}: {path}")
    return "\n".join(lines)


def _show(value):
  if isinstance(value, (tuple, list)):
    return "-".join(str(v) for v in value) or "linear"
  return f"{value:g}" if isinstance(value, float) else str(value)
