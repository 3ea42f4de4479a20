"""`TrainConfig`: everything one run needs; the command line's flags map
one to one onto its fields."""

import dataclasses

from tfvae import data as data_lib
from tfvae import families
from tfvae.training import recipe as recipe_lib


@dataclasses.dataclass
class TrainConfig:
  """Everything one run needs; the CLI flags map one to one onto fields.

  Fields left None are chosen by `default_recipe` from the data's shape.
  """

  data: str = None  # None: the embedded default data
  read_options: data_lib.ReadOptions = None
  stream: str = "auto"  # "auto" (files over STREAM_BYTES), "on", "off"
  # Numeric columns' types: "auto" infers real / positive / count
  # (`tfvae.data.columns.infer_numeric_type`), "real" keeps every one real;
  # None: "auto" on a table with text columns, "real" on an all-numeric
  # one (read as before types existed). `--column-types` overrides both.
  numeric_types: str = None
  latent_dim: int = None
  hidden_units: tuple = None
  likelihood: str = families.DEFAULT
  beta: float = 1.0
  kl_warmup_steps: int = 0
  free_bits: float = 0.0
  num_train_samples: int = None
  # K for batches with gaps (`VAE(missing_train_samples=)`); None: the
  # model's rule, within the epoch budget.
  missing_train_samples: int = None
  num_atoms: int = None
  df_transform: str = None  # Student's t: "softplus" or "exp"
  epochs: int = recipe_lib.MAX_EPOCHS
  # Minutes an epoch's work may take on two cores: on very large tables the
  # recipe lowers K (importance samples per training row) to stay within it.
  epoch_budget: float = recipe_lib.EPOCH_BUDGET_SECONDS / 60.0
  batch_size: int = None
  learning_rate: float = None
  validation_split: float = 0.2
  patience: int = None
  lr_patience: int = None  # 0: a constant learning rate
  likelihood_scale_floor: float = 1e-3
  refit: bool = False  # retrain on all rows for the best epoch count
  # Anomaly detection: the share of rows that a first fit scores as least
  # likely, left out of both splits before the run's model is trained
  # (`tfvae.training.loop.trim_rows`); 0: none.
  trim: float = 0.0
  adapt: bool = True
  num_samples: int = 1000
  seed: int = 0
  search: bool = False  # try `search_candidates` within `time_budget`
  time_budget: float = 10.0  # minutes, for `search`
  deadline: float = None  # time.monotonic() at which training stops
  strategy: str = "default"  # or "multi_worker" (tf.distribute, TF_CONFIG)
  backup_every_steps: int = None  # mid-epoch backups, besides each epoch's
  logdir: str = "runs/tfvae"  # None: no TensorBoard logs
  monitor: bool = True  # the VAEMonitor extras besides Keras' own scalars
  checkpoint_dir: str = None
  export_dir: str = None
  overwrite: bool = False
  verbose: int = 1

  def resolve(self, num_rows, num_features):
    """A copy with every None recipe field set from `default_recipe`.

    `hidden_units="snippet"` is the original TF1 snippet's architecture:
    one hidden layer as wide as the data and (unless given) 5 latents.
    """
    fields = {name: getattr(self, name) for name in recipe_lib.RECIPE_FIELDS}
    if not 0.0 < self.epoch_budget < float("inf"):
      raise ValueError("epoch_budget must be a positive number of minutes, "
                       f"got {self.epoch_budget}")
    budget = 60.0 * self.epoch_budget
    resolved = recipe_lib.resolve(fields, num_rows, num_features, budget)
    if self.missing_train_samples is None and (
        budget != recipe_lib.EPOCH_BUDGET_SECONDS):
      # As `VAE.resolve` chooses it, within this budget.
      resolved["missing_train_samples"] = recipe_lib.missing_train_samples(
          num_rows, num_features, resolved["hidden_units"],
          resolved["latent_dim"], resolved["num_train_samples"], budget)
    return dataclasses.replace(self, **resolved)

  def lowered_train_samples(self, num_rows):
    """The K the recipe wanted, if it chose a lower one to keep an epoch of
    `num_rows` rows within `epoch_budget` (a resolved config whose K was
    not given); else None."""
    wanted = recipe_lib.wanted_train_samples(num_rows)
    return wanted if self.num_train_samples < wanted else None

  def model_options(self):
    """The `VAE` constructor arguments these settings give."""
    return dict(latent_dim=self.latent_dim, hidden_units=self.hidden_units,
                likelihood=self.likelihood, beta=self.beta,
                kl_warmup_steps=self.kl_warmup_steps,
                free_bits=self.free_bits,
                num_train_samples=self.num_train_samples,
                **({"missing_train_samples": self.missing_train_samples}
                   if self.missing_train_samples is not None else {}),
                num_atoms=self.num_atoms,
                df_transform=self.df_transform or "softplus",
                likelihood_scale_floor=self.likelihood_scale_floor)
