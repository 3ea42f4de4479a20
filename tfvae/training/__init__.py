"""Training: one run of `tfvae-train` end to end, its settings, and the
search over configurations. Importing this package does not import
TensorFlow; `train` does.

- `recipe`: the defaults chosen from the table's shape, the search's
  candidates.
- `config`: `TrainConfig`, one field per command-line flag.
- `inputs`: the data (read or scanned before TensorFlow), what `fit` is
  given, the `tf.distribute` strategy.
- `callbacks`: resumable early stopping and learning-rate halving, backups
  and signals, progress, deadline.
- `loop`: `run` and `train`, a short list of named steps.
- `tuning`: `search`.
- `summary`: `TrainSummary`, the closing report.
"""

from tfvae.training.config import TrainConfig
from tfvae.training.inputs import TrainingData
from tfvae.training.inputs import is_chief
from tfvae.training.inputs import make_strategy
from tfvae.training.inputs import prepare_data
from tfvae.training.loop import Interrupted
from tfvae.training.loop import check_outputs
from tfvae.training.loop import run
from tfvae.training.loop import train
from tfvae.training.recipe import LARGE_FROM_ROWS
from tfvae.training.recipe import RECIPE_FIELDS
from tfvae.training.recipe import default_recipe
from tfvae.training.recipe import search_candidates
from tfvae.training.summary import TrainSummary
from tfvae.training.tuning import search

__all__ = ["TrainConfig", "TrainSummary", "TrainingData", "Interrupted",
           "run", "train", "search", "check_outputs", "prepare_data",
           "make_strategy", "is_chief", "default_recipe", "search_candidates",
           "LARGE_FROM_ROWS", "RECIPE_FIELDS"]
