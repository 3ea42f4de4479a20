"""The defaults of `tfvae-train`, chosen from the table's shape, and the
configurations `--search` tries (measured with `scripts/bench_quality.py`;
see docs/benchmarks.md)."""

import math

# The settings the recipe chooses from the data's shape (see `default_recipe`).
RECIPE_FIELDS = ("latent_dim", "hidden_units", "batch_size", "learning_rate",
                 "patience", "lr_patience", "num_train_samples", "num_atoms",
                 "df_transform")

# A setting left for the recipe to choose (`tfvae.VAE`'s default; a
# `TrainConfig` field uses None), and the name of the original TF1
# snippet's architecture: one hidden layer as wide as the data, 5 latents.
AUTO = "auto"
SNIPPET = "snippet"

# The most epochs of a run; early stopping on the validation rows usually
# ends it long before.
MAX_EPOCHS = 1000

# The latent is as wide as the data up to this many columns, then this
# wide up to twice as many, then half the columns (`latent_width`).
FULL_LATENT_COLUMNS = 8

# Training rows from which the recipe is the large tables' one: 256 units
# per layer, Student's t degrees of freedom learned on the log scale and
# K = 50 importance samples.
LARGE_FROM_ROWS = 10000

# The work of one epoch is kept within this many seconds on two cores: on
# tables so large that the recipe's K draws per row would take longer, K
# is lowered to the largest of `TRAIN_SAMPLE_CHOICES` that fits
# (`train_samples_within_budget`).
EPOCH_BUDGET_SECONDS = 240
TRAIN_SAMPLE_CHOICES = (50, 20, 10, 5, 2, 1)
# Forward multiply-adds per second of a training step (its backward pass
# included in the time) on these 2-core machines: 13.1e9 to 14.3e9
# measured with `scripts/bench_large_epoch.py --calibrate` (256 columns,
# 256-256 units, batches of 1024, K = 1, 5 and 50; an earlier run of K = 1
# and 5, 17.2e9 and 18.5e9); the lowest figure, rounded down.
MULTIPLY_ADDS_PER_SECOND = 1.3e10


def default_recipe(num_rows, num_features,
                   epoch_budget_seconds=EPOCH_BUDGET_SECONDS):
  """The defaults of `tfvae-train` for a table of this shape.

  Chosen with `scripts/bench_quality.py` over many real tables (see the
  README): two hidden layers of 128 units, a latent of `latent_width`
  (as wide as the data up to 8 columns, 8 up to 16, then half the
  columns), a learning rate halved on plateaus, and batches that grow with the
  table so that an epoch stays a few hundred steps. From `LARGE_FROM_ROWS`
  training rows, 256 units, Student's t degrees of freedom learned on the
  log scale (`df_transform="exp"`) and an importance-weighted bound with
  K = 50 instead of 10: with that many rows df is estimated closely, and
  the synthetic 16,000-row sets gain from all three (K = 50 took
  `nonlinear` from 0.0114 to 0.0072 nats per dimension of the true
  density, at about twice the training time), while on real tables of a
  few hundred to a few thousand rows the log scale lost (df followed the
  training rows too closely) and the width gained nothing.
  On tables so large that K draws per row would make an epoch outgrow
  `epoch_budget_seconds`, K is lowered (`train_samples_within_budget`).

  Args:
    num_rows: training rows.
    num_features: columns D.
    epoch_budget_seconds: the most an epoch's work may take on two cores
      (`TrainConfig.epoch_budget`, `--epoch-budget`).

  Returns:
    dict of `TrainConfig` fields.
  """
  large = num_rows >= LARGE_FROM_ROWS
  hidden_units = (256, 256) if large else (128, 128)
  latent_dim = latent_width(num_features)
  return {
      "hidden_units": hidden_units,
      "latent_dim": latent_dim,
      "batch_size": int(min(1024, max(32, 2 ** round(math.log2(
          max(num_rows, 1) / 256))))),
      "learning_rate": 1e-3,
      "patience": 50,
      "lr_patience": 10,
      "num_train_samples": train_samples_within_budget(
          num_rows, num_features, hidden_units, latent_dim,
          wanted_train_samples(num_rows), epoch_budget_seconds),
      "num_atoms": 8,
      "df_transform": "exp" if large else "softplus",
  }


def wanted_train_samples(num_rows):
  """The recipe's K where time allows: 50 from `LARGE_FROM_ROWS` training
  rows, 10 below."""
  return 50 if num_rows >= LARGE_FROM_ROWS else 10


def multiply_adds_per_row(num_features, hidden_units, latent_dim,
                          num_samples):
  """Forward multiply-adds of one training row: the encoder once (values
  and missing-value indicator in, a location and a scale per latent out),
  the decoder once per draw (a location and a scale per column out).

  Args:
    num_features: columns D.
    hidden_units: sequence of hidden widths.
    latent_dim: latents.
    num_samples: K, the posterior draws per row.

  Returns:
    Python int.
  """
  def network(inputs, outputs):
    widths = [inputs, *hidden_units, outputs]
    return sum(a * b for a, b in zip(widths[:-1], widths[1:]))

  return (network(2 * num_features, 2 * latent_dim) +
          num_samples * network(latent_dim, 2 * num_features))


def train_samples_within_budget(num_rows, num_features, hidden_units,
                                latent_dim, most,
                                budget_seconds=EPOCH_BUDGET_SECONDS):
  """The largest K of `TRAIN_SAMPLE_CHOICES`, at most `most`, whose epoch
  of `num_rows` rows takes at most `budget_seconds` on two cores
  (`MULTIPLY_ADDS_PER_SECOND`); 1 if none does.

  The recipe's K = 50 (10 on small tables) stays up to about 265,000
  training rows of 256 columns or 570,000 of 64; a file of 2 million rows
  and 256 columns trains with K = 5 (measured:
  `scripts/bench_large_epoch.py`).
  A shape-only rule, so every machine chooses the same model.

  Args:
    num_rows: training rows.
    num_features: columns D.
    hidden_units: sequence of hidden widths.
    latent_dim: latents.
    most: the K wanted where time allows.
    budget_seconds: the most an epoch may take.

  Returns:
    Python int K >= 1.
  """
  for num_samples in TRAIN_SAMPLE_CHOICES:
    if num_samples <= most and epoch_seconds(
        num_rows, num_features, hidden_units, latent_dim,
        num_samples) <= budget_seconds:
      return num_samples
  return 1


def missing_train_samples(num_rows, num_features, hidden_units, latent_dim,
                          num_train_samples,
                          budget_seconds=EPOCH_BUDGET_SECONDS):
  """K for batches with gaps (`VAE(missing_train_samples=)`): at least 20,
  within the epoch budget (`train_samples_within_budget`)."""
  return train_samples_within_budget(num_rows, num_features, hidden_units,
                                     latent_dim, max(20, num_train_samples),
                                     budget_seconds)


def epoch_seconds(num_rows, num_features, hidden_units, latent_dim,
                  num_samples):
  """The seconds an epoch of `num_rows` training rows takes on two cores
  by `MULTIPLY_ADDS_PER_SECOND` (Python float)."""
  return num_rows * multiply_adds_per_row(
      num_features, hidden_units, latent_dim,
      num_samples) / MULTIPLY_ADDS_PER_SECOND


def latent_width(num_features):
  """The recipe's latent size for D columns: D up to `FULL_LATENT_COLUMNS`
  columns, then `FULL_LATENT_COLUMNS` until half the columns is more, and
  at least 2: min(D, max(8, D // 2)).

  Measured with `scripts/bench_quality.py --variants defaults,latent_half`
  (docs/benchmarks.md, "the latent size"): against half the columns, the
  latent as wide as the data gained 0.14 nats per example (SE 0.05, 18
  table-seeds) on the six tables of 4 to 7 columns, and 8 latents 0.19
  (SE 0.12) on the six of 9 to 14 columns, where as many latents as
  columns gained nothing (-0.01).

  Args:
    num_features: columns D.

  Returns:
    Python int.
  """
  return max(2, min(num_features, max(FULL_LATENT_COLUMNS,
                                      num_features // 2)))


def resolve(settings, num_rows, num_features,
            epoch_budget_seconds=EPOCH_BUDGET_SECONDS):
  """Recipe fields left unset (None or `AUTO`) chosen by `default_recipe`.

  The one place where both `tfvae-train` (`TrainConfig.resolve`) and the
  `tfvae.VAE` constructor (`VAE.resolve`) turn unset settings into values,
  so a Python user and a command-line user get the same model.
  `hidden_units=SNIPPET` is the original TF1 snippet's architecture: one
  hidden layer as wide as the data and, unless given, 5 latents.

  Args:
    settings: dict of some `RECIPE_FIELDS` (others are left alone).
    num_rows: training rows.
    num_features: columns D.
    epoch_budget_seconds: as for `default_recipe`.

  Returns:
    A copy of `settings` with every unset recipe field in it filled.
  """
  recipe = default_recipe(num_rows, num_features, epoch_budget_seconds)
  if settings.get("hidden_units") == SNIPPET:
    recipe.update(hidden_units=(num_features,), latent_dim=5)
    settings = {**settings, "hidden_units": None}
  return {name: (recipe[name] if name in RECIPE_FIELDS and is_unset(value)
                 else value)
          for name, value in settings.items()}


def is_unset(value):
  """Whether a setting is left for the recipe (None or `AUTO`)."""
  return value is None or (isinstance(value, str) and value == AUTO)


def search_candidates(num_rows, num_features):
  """The configurations `--search` tries, most promising first.

  Each is a dict of `TrainConfig` fields over the defaults; the first is
  the defaults themselves.

  Args:
    num_rows: training rows.
    num_features: columns D.

  Returns:
    list of (name, dict).
  """
  other_width = (("narrow_128", {"hidden_units": (128, 128)})
                 if num_rows >= LARGE_FROM_ROWS else
                 ("wide_256", {"hidden_units": (256, 256)}))
  # The other latent size: half the columns where the recipe's is all of
  # them, all of them elsewhere; none where both are the minimum of 2.
  latent = latent_width(num_features)
  other_latent = ([("latent_half", {"latent_dim": max(2, num_features // 2)})]
                  if latent == max(2, num_features) else
                  [("latent_full", {"latent_dim": max(2, num_features)})])
  if other_latent[0][1]["latent_dim"] == latent:
    other_latent = []
  return [
      ("defaults", {}),
      *other_latent,
      ("atoms_16", {"num_atoms": 16}),
      other_width,
      ("gaussian", {"likelihood": "gaussian"}),
      ("laplace", {"likelihood": "laplace"}),
      ("small_64", {"hidden_units": (64, 64)}),
      ("deep_3x128", {"hidden_units": (128, 128, 128)}),
      ("slow_lr", {"learning_rate": 3e-4}),
  ]
