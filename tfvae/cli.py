"""Command-line entry points: argument parsing only, the work is in the library.

TensorFlow is imported after the arguments are parsed, so `--help` and
argument errors answer at once. Any `ValueError` / `TypeError` / `OSError`
from the library becomes one line on stderr and exit status 2.
"""

import argparse
import functools
import os
import sys

from tfvae import __version__

# The registered decoder families (`tfvae.heads.LIKELIHOODS`), listed here so
# that parsing arguments does not import TensorFlow; a test keeps them equal.
LIKELIHOOD_NAMES = ("gaussian", "gaussian_shared", "laplace", "student_t", "mse")


def _quiet_tensorflow():
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _fail_cleanly(main):
  """Turns expected errors into `prog: error: message` and exit status 2."""

  @functools.wraps(main)
  def wrapper(argv=None):
    prog = main.__name__.replace("_main", "").replace("_", "-")
    try:
      return main(argv)
    except (ValueError, TypeError, OSError, FloatingPointError) as error:
      print(f"tfvae-{prog}: error: {error}", file=sys.stderr)
      return 2
    except KeyboardInterrupt:
      print(f"tfvae-{prog}: interrupted", file=sys.stderr)
      return 130

  return wrapper


def _hidden_units(text):
  """Parses "64,64" -> (64, 64), "" or "none" -> () (a linear model)."""
  text = text.strip()
  if text.lower() in ("", "none", "linear"):
    return ()
  try:
    units = tuple(int(part) for part in text.split(","))
  except ValueError:
    raise argparse.ArgumentTypeError(
        f"expected comma-separated integers such as 64,64, got {text!r}") from None
  if any(unit < 1 for unit in units):
    raise argparse.ArgumentTypeError(f"layer widths must be positive: {text!r}")
  return units


def _fraction(text):
  value = float(text)
  if not 0 <= value < 1:
    raise argparse.ArgumentTypeError(f"expected a fraction in [0, 1), got {text}")
  return value


def _positive(kind):
  def parse(text):
    value = kind(text)
    if value <= 0:
      raise argparse.ArgumentTypeError(f"expected a positive number, got {text}")
    return value
  return parse


def _non_negative(text):
  value = float(text)
  if value < 0:
    raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text}")
  return value


def build_train_parser():
  parser = argparse.ArgumentParser(
      prog="tfvae-train",
      description="Train a VAE on real-valued data (a .csv or .npy table). "
      "Without --data it trains on the embedded UCI Wine data.")
  parser.add_argument("--data", help="a .csv (optional header) or .npy file")
  parser.add_argument("--latent-dim", type=_positive(int), default=5)
  parser.add_argument(
      "--hidden-units", type=_hidden_units, default=None,
      help="comma-separated widths, e.g. 64,64; 'linear' for none; "
      "default: one layer of width input_dim")
  parser.add_argument("--likelihood", choices=LIKELIHOOD_NAMES,
                      default="student_t",
                      help="decoder family (default student_t: see the README)")
  parser.add_argument("--beta", type=_non_negative, default=1.0,
                      help="KL weight (1 = the true negative ELBO)")
  parser.add_argument("--kl-warmup-steps", type=int, default=0,
                      help="raise beta linearly from 0 over this many steps")
  parser.add_argument("--free-bits", type=_non_negative, default=0.0,
                      help="nats per latent dimension")
  parser.add_argument("--epochs", type=_positive(int), default=1000,
                      help="an upper bound: early stopping usually ends sooner")
  parser.add_argument("--batch-size", type=_positive(int), default=32)
  parser.add_argument("--learning-rate", type=_positive(float), default=1e-3)
  parser.add_argument("--validation-split", type=_fraction, default=0.2)
  parser.add_argument("--patience", type=int, default=50,
                      help="early-stopping patience in epochs on val_loss "
                      "(0 disables); the best weights are kept")
  parser.add_argument("--no-adapt", action="store_true",
                      help="train on raw values instead of standardised ones")
  parser.add_argument("--num-samples", type=_positive(int), default=1000,
                      help="importance samples for the marginal log-likelihood")
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--logdir", default="runs/tfvae",
                      help="TensorBoard log directory")
  parser.add_argument("--checkpoint-dir",
                      help="write the trained model (config + weights) here")
  parser.add_argument("--export-dir",
                      help="export encoder and decoder SavedModels here")
  parser.add_argument("--overwrite", action="store_true",
                      help="replace an existing checkpoint directory")
  parser.add_argument("--verbose", type=int, choices=(0, 1, 2), default=2,
                      help="Keras progress output (1 = bar, 2 = line/epoch)")
  parser.add_argument("--version", action="version", version=__version__)
  return parser


@_fail_cleanly
def train_main(argv=None):
  """`tfvae-train`: fit, evaluate, log, and optionally checkpoint / export."""
  args = build_train_parser().parse_args(argv)
  _quiet_tensorflow()
  from tfvae import training  # pylint: disable=g-import-not-at-top

  summary = training.train(training.TrainConfig(
      data=args.data,
      latent_dim=args.latent_dim,
      hidden_units=args.hidden_units,
      likelihood=args.likelihood,
      beta=args.beta,
      kl_warmup_steps=args.kl_warmup_steps,
      free_bits=args.free_bits,
      epochs=args.epochs,
      batch_size=args.batch_size,
      learning_rate=args.learning_rate,
      validation_split=args.validation_split,
      patience=args.patience,
      adapt=not args.no_adapt,
      num_samples=args.num_samples,
      seed=args.seed,
      logdir=args.logdir,
      checkpoint_dir=args.checkpoint_dir,
      export_dir=args.export_dir,
      overwrite=args.overwrite,
      verbose=args.verbose,
  ))
  print(summary.format())
  return 0


def build_export_parser():
  parser = argparse.ArgumentParser(
      prog="tfvae-export",
      description="Export a training checkpoint as encoder and decoder "
      "SavedModels laid out for TF Serving.")
  parser.add_argument("--checkpoint-dir", required=True,
                      help="a checkpoint written by tfvae-train --checkpoint-dir")
  parser.add_argument("--export-dir", required=True,
                      help="e.g. saved_models/NAME (gets encoder/ and decoder/)")
  parser.add_argument("--version", type=_positive(int),
                      help="default: one more than the largest existing version")
  parser.add_argument("--overwrite", action="store_true",
                      help="replace an existing version")
  return parser


@_fail_cleanly
def export_main(argv=None):
  """`tfvae-export`: checkpoint -> SavedModels."""
  args = build_export_parser().parse_args(argv)
  _quiet_tensorflow()
  from tfvae import checkpoint  # pylint: disable=g-import-not-at-top
  from tfvae import export  # pylint: disable=g-import-not-at-top

  model = checkpoint.load_checkpoint(args.checkpoint_dir)
  paths = export.export(model, args.export_dir, version=args.version,
                        overwrite=args.overwrite)
  for part, path in paths.items():
    print(f"exported {part}: {path}")
  return 0


def build_encode_parser():
  parser = argparse.ArgumentParser(
      prog="tfvae-encode",
      description="Encode a data file with an exported encoder (its newest "
      "version), streaming, into a CSV of z_mean and z_stddev.")
  parser.add_argument("--model", required=True,
                      help="the encoder's base path, e.g. saved_models/NAME/encoder")
  parser.add_argument("--data", required=True, help="a .csv or .npy file")
  parser.add_argument("--output", required=True, help="the CSV to write")
  parser.add_argument("--batch-size", type=_positive(int), default=4096)
  parser.add_argument("--overwrite", action="store_true")
  return parser


@_fail_cleanly
def encode_main(argv=None):
  """`tfvae-encode`: rows -> latent means and standard deviations."""
  args = build_encode_parser().parse_args(argv)
  _quiet_tensorflow()
  from tfvae import serving  # pylint: disable=g-import-not-at-top

  rows, version_path = serving.encode_file(
      args.model, args.data, args.output, batch_size=args.batch_size,
      overwrite=args.overwrite)
  print(f"encoded {rows} rows with {version_path} into {args.output}")
  return 0


def build_score_parser():
  parser = argparse.ArgumentParser(
      prog="tfvae-score",
      description="Anomaly scores: -log p(x) per row in nats (higher is "
      "stranger), by importance sampling. With --checkpoint-dir a trained "
      "model scores the data; without, a model is first trained on the data "
      "itself with tfvae-train's defaults.")
  parser.add_argument("--data", required=True, help="a .csv or .npy file")
  parser.add_argument("--checkpoint-dir", "--checkpoint",
                      help="a checkpoint written by tfvae-train --checkpoint-dir")
  parser.add_argument("--output", required=True, help="the CSV to write")
  parser.add_argument("--num-samples", type=_positive(int), default=1000)
  parser.add_argument("--batch-size", type=_positive(int), default=1024)
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--overwrite", action="store_true")
  return parser


@_fail_cleanly
def score_main(argv=None):
  """`tfvae-score`: rows -> -log p(x)."""
  args = build_score_parser().parse_args(argv)
  _quiet_tensorflow()
  import numpy as np  # pylint: disable=g-import-not-at-top
  from tfvae import checkpoint  # pylint: disable=g-import-not-at-top
  from tfvae import scoring  # pylint: disable=g-import-not-at-top
  from tfvae import training  # pylint: disable=g-import-not-at-top

  if os.path.exists(args.output) and not args.overwrite:
    raise FileExistsError(f"{args.output} already exists; pass --overwrite")
  if args.checkpoint_dir:
    model = checkpoint.load_checkpoint(args.checkpoint_dir)
  else:
    model = training.train(training.TrainConfig(
        data=args.data, seed=args.seed, verbose=0, logdir=None)).model
  scores = scoring.score_file(model, args.data, args.output,
                              num_samples=args.num_samples,
                              batch_size=args.batch_size, seed=args.seed,
                              overwrite=args.overwrite)
  print(f"scored {len(scores)} rows into {args.output}: -log p(x) in nats, "
        f"median {np.median(scores):.3f}, max {np.max(scores):.3f} "
        f"(row {int(np.argmax(scores))})")
  return 0
