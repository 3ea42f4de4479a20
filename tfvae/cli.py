"""Command-line entry points: argument parsing only, the work is in the library.

Every command checks its arguments, its output locations and its data
before importing TensorFlow, so a mistake is answered in a second, not
after TensorFlow's start-up or an hour of training. Any `ValueError`,
`TypeError`, `OSError` (or TensorFlow error) becomes one line on stderr and
exit status 2; warnings become one `warning:` line each.
"""

import argparse
import dataclasses
import functools
import os
import re
import sys
import warnings

from tfvae import __version__
from tfvae import data as data_lib
from tfvae import families
from tfvae import runtime
from tfvae import validation
from tfvae.data import columns
from tfvae.inference import calibration


def _fail_cleanly(main):
  """Turns expected errors into `prog: error: message` and exit status 2."""

  @functools.wraps(main)
  def wrapper(argv=None):
    prog = "tfvae-" + main.__name__.replace("_main", "").replace("_", "-")

    def show_warning(message, category, filename, lineno, file=None,
                     line=None):
      del category, filename, lineno, file, line
      print(f"{prog}: warning: {_with_flag_hints(str(message))}",
            file=sys.stderr)

    previous = warnings.showwarning
    warnings.showwarning = show_warning
    runtime.prefer_tf_keras()
    try:
      with runtime.filtered_stderr():
        return main(argv)
    except (ValueError, TypeError, OSError, FloatingPointError) as error:
      print(f"{prog}: error: {_with_flag_hints(str(error))}", file=sys.stderr)
      return 2
    except KeyboardInterrupt:
      print(f"{prog}: interrupted", file=sys.stderr)
      return 130
    except Exception as error:  # pylint: disable=broad-except
      if type(error).__name__ == "Interrupted":  # tfvae.training.Interrupted
        print(f"{prog}: {error}", file=sys.stderr)
        return 143 if error.signal_name == "SIGTERM" else 130
      tf = sys.modules.get("tensorflow")
      if tf is not None and isinstance(error, tf.errors.OpError):
        first = error.message.strip().splitlines()[0]
        print(f"{prog}: error: {first}", file=sys.stderr)
        return 2
      raise
    finally:
      warnings.showwarning = previous

  return wrapper


def _with_flag_hints(message):
  """Library messages name API arguments; the CLI names its flags."""
  message = re.sub(r"\b(overwrite|header)=True\b", r"--\1", message)
  message = message.replace("lower validation_split", "lower --validation-split")
  message = re.sub(r"\bindex_column='(\w+)'", r"--index-column \1", message)
  return re.sub(r"\b(delimiter|encoding)=", r"--\1 ", message)


# -- Argument types: each rejects what cannot train, naming the value --------


def _checked(convert, check, expected):
  """An argparse type: `check(convert(text))`, the check's own message
  turned from "value must be X, got Y" into "expected X, got Y"."""

  def parse(text):
    try:
      value = convert(text)
    except ValueError:
      raise argparse.ArgumentTypeError(
          f"expected {expected}, got {text!r}") from None
    try:
      return check(value)
    except ValueError as error:
      raise argparse.ArgumentTypeError(
          "expected " + str(error).split(" must be ", 1)[-1]) from None

  return parse


_positive_int = _checked(
    int, lambda v: validation.check_positive_int(v, "value"),
    "a positive integer")
_non_negative_int = _checked(
    int, lambda v: validation.check_non_negative_int(v, "value"),
    "an integer >= 0")
_version = _checked(int, validation.check_version,
                    "a positive integer up to 2**63 - 1")
_num_samples = _checked(int, validation.check_num_samples, "a positive integer")
_seed = _checked(int, validation.check_seed, "an integer in [0, 2**63)")
_fraction = _checked(float, validation.check_fraction, "a fraction in [0, 1)")
_trim_fraction = _checked(float, validation.check_trim, "a share in [0, 0.5)")
_contamination = _checked(float, validation.check_contamination,
                          "a share in (0, 0.5]")


def _finite(minimum=None, exclusive=False):
  return _checked(float, lambda v: validation.check_finite(
      v, "value", minimum, exclusive), "a number")


def _hidden_units(text):
  """Parses "64,64" -> (64, 64), "" / "none" / "linear" -> () (a linear model)."""
  text = text.strip()
  if text.lower() in ("", "none", "linear"):
    return ()
  if text.lower() == "snippet":
    return "snippet"
  try:
    return validation.check_widths(int(part) for part in text.split(","))
  except ValueError:
    raise argparse.ArgumentTypeError(
        "expected comma-separated positive integers such as 64,64, got "
        f"{text!r}") from None


def _delimiter(text):
  text = {"tab": "\t", "\\t": "\t", "comma": ",", "semicolon": ";",
          "pipe": "|", "space": " "}.get(text, text)
  try:
    data_lib.ReadOptions(delimiter=text)
  except ValueError as error:
    raise argparse.ArgumentTypeError(str(error)) from None
  return text


def _na_values(text):
  """'NA,?' -> ('NA', '?'); '' -> () (no missing values allowed)."""
  return () if text == "" else tuple(token.strip() for token in text.split(","))


def _encoding(text):
  try:
    data_lib.ReadOptions(encoding=text)
  except ValueError as error:
    raise argparse.ArgumentTypeError(str(error)) from None
  return text


def _column_types(text):
  try:
    return columns.parse_column_types(text)
  except ValueError as error:
    raise argparse.ArgumentTypeError(str(error)) from None


def _names(text):
  names = tuple(name.strip() for name in text.split(","))
  if not all(names):
    raise argparse.ArgumentTypeError(f"{text!r}: an empty column name")
  return names


def add_read_options(parser):
  """The flags of `tfvae.data.ReadOptions`, shared by every command."""
  group = parser.add_argument_group("reading CSV files")
  group.add_argument("--delimiter", type=_delimiter,
                     help="cell delimiter (default: detected among , ; tab |)")
  header = group.add_mutually_exclusive_group()
  header.add_argument("--header", dest="header", action="store_true",
                      default=None,
                      help="the first row holds column names (even numeric "
                      "ones such as years)")
  header.add_argument("--no-header", dest="header", action="store_false",
                      help="the first row is data")
  group.add_argument("--encoding", type=_encoding,
                     help="text encoding (default UTF-8; UTF-16 and byte-order "
                     "marks are detected)")
  group.add_argument(
      "--na-values", type=_na_values, default=data_lib.DEFAULT_NA_VALUES,
      help="comma-separated cell texts meaning 'missing' (default: empty, "
      + ", ".join(v for v in data_lib.DEFAULT_NA_VALUES if v) +
      "); '' allows no missing values")
  group.add_argument("--index-column", choices=data_lib.INDEX_COLUMN_CHOICES,
                     default="auto",
                     help="a row-index first column (unnamed, counting 0, 1, "
                     "2, ...): auto drops it with a warning (default)")
  group.add_argument(
      "--column-types", type=_column_types, default=None,
      help="comma-separated name=type overriding the inferred column types "
      "(real, positive, count, categorical, binary, drop), e.g. "
      "zip=categorical,visits=count,id=drop; a trained model's types are "
      "its own")
  chosen = group.add_mutually_exclusive_group()
  chosen.add_argument(
      "--columns", type=_names, default=None,
      help="comma-separated names of the only columns to use (CSV with a "
      "header); a trained model's columns are its own")
  chosen.add_argument(
      "--drop-columns", type=_names, default=None,
      help="comma-separated names of columns to leave out (the same as "
      "name=drop in --column-types)")


# The share of rows `tfvae-score` leaves out of the model it trains first
# (`TrainConfig.trim`): on the anomaly benchmark's eight tables, three seeds,
# mean AUROC 0.711 against 0.695 for a model of every row
# (docs/benchmarks.md), at the cost of a second fit. Tables of fewer
# training rows than `SCORE_TRIM_FROM_ROWS` are not trimmed by default: the
# benchmark's smallest has 78, and on a few dozen rows a first fit cannot
# tell which are atypical.
SCORE_TRIM = 0.1
SCORE_TRIM_FROM_ROWS = 50

# Files up to this size are read through once before TensorFlow starts, so
# that a bad cell is reported at once; beyond it a full pass costs more than
# TensorFlow's start-up, and the header and first rows are checked instead.
_PREVALIDATE_BYTES = 256 << 20


def check_data_file(path, options, expected_width=None, expected_names=None,
                    block_rows=65536):
  """Validates a data file before TensorFlow starts (see _PREVALIDATE_BYTES):
  its cells, and its width and column names against the model's."""
  with warnings.catch_warnings():
    # The column notes are given again when the file is read for the work.
    warnings.simplefilter("ignore", data_lib.DataWarning)
    reader = data_lib.open_table(path, options, expected_width, expected_names)
    for index, _ in enumerate(reader.iter_blocks(block_rows)):
      if index and os.path.getsize(path) > _PREVALIDATE_BYTES:
        break
  return reader


def read_options(args):
  column_types = dict(getattr(args, "column_types", None) or {})
  for name in getattr(args, "drop_columns", None) or ():
    column_types[name] = columns.DROP
  return data_lib.ReadOptions(
      delimiter=args.delimiter, header=args.header, encoding=args.encoding,
      na_values=args.na_values, index_column=args.index_column,
      column_types=column_types,
      columns=getattr(args, "columns", None) or ())


def model_read_options(args, settings):
  """The read flags with a trained model's column types (`settings`: its
  config, from checkpoint or export metadata): its levels and the columns
  it left out."""
  return data_lib.options_for_model(read_options(args),
                                    settings.get("categories"),
                                    settings.get("ignored_columns"))


def _add_verbose(parser, default=1):
  parser.add_argument(
      "--verbose", type=int, choices=(0, 1, 2, 3), default=default,
      help="0: the result only; 1: one progress line (default); 2: Keras' "
      "line per epoch; 3: also TensorFlow's own start-up and log lines")


# -- tfvae-train ---------------------------------------------------------------


def build_train_parser():
  from tfvae.training import recipe as recipe_defaults  # pylint: disable=g-import-not-at-top
  parser = argparse.ArgumentParser(
      prog="tfvae-train",
      description="Train a VAE on real-valued data (a .csv, .npy or .parquet "
      "table; empty cells and NA mark missing values). Without --data it "
      "trains on the embedded UCI Wine data.")
  parser.add_argument("--data", help="a .csv (optional header), .npy or "
                      ".parquet file")
  add_read_options(parser)
  model = parser.add_argument_group(
      "model (unset values are chosen from the data's shape: see the README)")
  model.add_argument(
      "--numeric-types", choices=("auto", "real"), default=None,
      help="auto: type each numeric column real, positive (skewed, above 0: "
      "modelled on the log scale) or count (non-negative integers: a "
      "probability per integer); real: every numeric column real. Default: "
      "auto on a table with text columns, real on an all-numeric one")
  model.add_argument("--latent-dim", type=_positive_int,
                     help="default: as many as the columns up to 8, then "
                     "8 up to 16 columns, then half the columns")
  model.add_argument(
      "--hidden-units", type=_hidden_units, default=None,
      help="comma-separated widths, e.g. 64,64; 'linear' for none; 'snippet' "
      "for the original snippet's one layer as wide as the data (with 5 "
      "latents); default: 128,128")
  model.add_argument("--likelihood", choices=families.NAMES,
                     default=families.DEFAULT,
                     help=f"decoder family (default {families.DEFAULT}: see "
                     "the README)")
  model.add_argument("--beta", type=_finite(0.0), default=1.0,
                     help="KL weight (1 = the true negative ELBO)")
  model.add_argument("--kl-warmup-steps", type=_non_negative_int, default=0,
                     help="raise beta linearly from 0 over this many steps")
  model.add_argument("--free-bits", type=_finite(0.0), default=0.0,
                     help="nats per latent dimension")
  model.add_argument("--num-train-samples", type=_positive_int,
                     help="importance samples per example in the training "
                     "bound (1: the ELBO; default 10, 50 from 10,000 "
                     "training rows; batches with missing values use at "
                     "least 20)")
  model.add_argument("--num-atoms", type=_non_negative_int,
                     help="values held by at least 1%% of a column's rows "
                     "modelled as point masses, at most this many per column "
                     "(default 8; 0: none)")
  model.add_argument("--df-transform", choices=("softplus", "exp"),
                     help="how Student's t degrees of freedom are learned: "
                     "softplus (moves slowly from 6) or exp (log scale; "
                     "default from 10,000 training rows)")
  fit = parser.add_argument_group("training")
  fit.add_argument("--epochs", type=_positive_int, default=1000,
                   help="an upper bound: early stopping usually ends sooner")
  fit.add_argument("--batch-size", type=_positive_int,
                   help="default: grows with the table, 32 to 1024")
  fit.add_argument("--learning-rate", type=_finite(0.0, exclusive=True))
  fit.add_argument("--lr-patience", type=_non_negative_int,
                   help="halve the learning rate after this many epochs "
                   "without progress (0: constant)")
  fit.add_argument("--validation-split", type=_fraction, default=0.2)
  fit.add_argument("--patience", type=_non_negative_int,
                   help="early-stopping patience in epochs on val_loss "
                   "(0 disables); the best weights are kept")
  fit.add_argument("--no-adapt", action="store_true",
                   help="train on raw values instead of standardised ones")
  fit.add_argument("--stream", choices=("auto", "on", "off"), default="auto",
                   help="read the file in blocks every epoch instead of into "
                   "memory (auto: files over 512 MiB)")
  fit.add_argument("--num-samples", type=_num_samples, default=1000,
                   help="importance samples for the summary's marginal "
                   "log-likelihood")
  fit.add_argument("--seed", type=_seed, default=0)
  fit.add_argument("--trim", type=_trim_fraction, default=0.0,
                   help="for anomaly detection: leave out this share of rows "
                   "(e.g. 0.1) that a first fit finds least likely, then "
                   "train the model on the rest (default 0: none)")
  fit.add_argument("--epoch-budget", type=_finite(0.0, exclusive=True),
                   default=recipe_defaults.EPOCH_BUDGET_SECONDS / 60.0,
                   metavar="MIN",
                   help="minutes an epoch may take on 2 cores (default 4): on "
                   "very large tables the recipe lowers K, the importance "
                   "samples per training row, to stay within it; the summary "
                   "says when it did")
  fit.add_argument("--refit", action="store_true",
                   help="after early stopping, train a fresh model on every "
                   "row (training and validation) for the best epoch count; "
                   "costs a second fit, and its percentiles have no held-out "
                   "rows")
  fit.add_argument("--search", action="store_true",
                   help="try a few configurations on the validation split "
                   "within --time-budget and keep the best")
  fit.add_argument("--time-budget", type=_finite(0.0, exclusive=True),
                   default=10.0, help="minutes for --search (default 10)")
  fit.add_argument("--strategy", choices=("default", "multi_worker"),
                   default="default",
                   help="multi_worker: tf.distribute.MultiWorkerMirroredStrategy "
                   "across the machines of the TF_CONFIG environment variable "
                   "(see the README)")
  fit.add_argument("--backup-every-steps", type=_positive_int,
                   help="with --checkpoint-dir, also back up every this many "
                   "steps (every epoch's end is backed up anyway)")
  outputs = parser.add_argument_group("outputs")
  outputs.add_argument("--logdir", default="runs/tfvae",
                       help="TensorBoard log directory ('' for none)")
  outputs.add_argument("--no-monitor", action="store_true",
                       help="only Keras' epoch scalars in TensorBoard, without "
                       "tfvae's latent, decoder, image and HParams panels")
  outputs.add_argument("--checkpoint-dir",
                       help="write the trained model (Keras .keras file and "
                       "optimizer state) here; while training, a backup of "
                       "each epoch, from which the same command resumes")
  outputs.add_argument("--export-dir",
                       help="export encoder and decoder SavedModels here")
  outputs.add_argument("--overwrite", action="store_true",
                       help="replace an existing tfvae checkpoint (never "
                       "anything else)")
  _add_verbose(parser)
  parser.add_argument("--version", action="version", version=__version__)
  return parser


@_fail_cleanly
def train_main(argv=None):
  """`tfvae-train`: fit, evaluate, log, and optionally checkpoint / export."""
  args = build_train_parser().parse_args(argv)
  from tfvae import training  # pylint: disable=g-import-not-at-top

  # Every flag whose name is a `TrainConfig` field maps onto it as it is;
  # the rest are spelled for the command line (--no-adapt, '' for no logs).
  fields = {field.name for field in dataclasses.fields(training.TrainConfig)}
  config = training.TrainConfig(
      read_options=read_options(args), adapt=not args.no_adapt,
      monitor=not args.no_monitor, logdir=args.logdir or None,
      **{name: value for name, value in vars(args).items()
         if name in fields and name != "logdir"})
  summary = training.run(config)
  print(summary.format())
  return 0


# -- tfvae-export ---------------------------------------------------------------


def build_export_parser():
  parser = argparse.ArgumentParser(
      prog="tfvae-export",
      description="Export a training checkpoint as encoder, decoder and "
      "scorer SavedModels laid out for TF Serving.")
  parser.add_argument("--checkpoint-dir", required=True,
                      help="a checkpoint written by tfvae-train --checkpoint-dir")
  parser.add_argument("--export-dir", required=True,
                      help="e.g. saved_models/NAME (gets encoder/, decoder/ "
                      "and scorer/)")
  parser.add_argument("--version", type=_version,
                      help="default: one more than the largest existing "
                      "version (at most 2**63 - 1, as TF Serving reads them)")
  parser.add_argument("--scorer-samples", type=_num_samples, default=100,
                      help="the scorer's importance samples per row (default "
                      "100; its cost grows in proportion)")
  parser.add_argument("--overwrite", action="store_true",
                      help="replace an existing version that tfvae wrote")
  _add_verbose(parser)
  return parser


@_fail_cleanly
def export_main(argv=None):
  """`tfvae-export`: checkpoint -> SavedModels."""
  args = build_export_parser().parse_args(argv)
  from tfvae import atomic  # pylint: disable=g-import-not-at-top
  from tfvae import runtime  # pylint: disable=g-import-not-at-top
  from tfvae import checkpoint  # pylint: disable=g-import-not-at-top
  from tfvae import versions  # pylint: disable=g-import-not-at-top
  atomic.check_writable_folder(args.export_dir)
  if os.path.isfile(args.export_dir):
    raise ValueError(f"{args.export_dir} is a file; expected a folder")
  if not checkpoint.is_checkpoint(args.checkpoint_dir) or not os.path.isfile(
      os.path.join(args.checkpoint_dir, checkpoint.MODEL_FILE)):
    raise ValueError(checkpoint.why_not_a_checkpoint(args.checkpoint_dir))
  if args.version is not None:
    versions.check_version_free(args.export_dir, args.version, args.overwrite)
  runtime.import_tensorflow(verbose=args.verbose >= 3)
  from tfvae import export  # pylint: disable=g-import-not-at-top

  model = checkpoint.load_checkpoint(args.checkpoint_dir)
  paths = export.export_model(model, args.export_dir, version=args.version,
                              overwrite=args.overwrite,
                              num_samples=args.scorer_samples)
  for part, path in paths.items():
    print(f"exported {part}: {path}")
  return 0


# -- tfvae-encode ---------------------------------------------------------------


def build_encode_parser():
  parser = argparse.ArgumentParser(
      prog="tfvae-encode",
      description="Encode a data file with an exported encoder (its newest "
      "version), streaming, into a CSV of z_mean and z_stddev.")
  parser.add_argument("--model", required=True,
                      help="the encoder's base path, e.g. saved_models/NAME/encoder")
  _add_file_arguments(parser, "a .csv, .npy or .parquet file", batch_size=4096)
  return parser


def _add_file_arguments(parser, data_help, batch_size):
  """The arguments of the commands that read a data file and write a CSV."""
  parser.add_argument("--data", required=True, help=data_help)
  add_read_options(parser)
  parser.add_argument("--output", required=True, help="the CSV to write")
  parser.add_argument("--batch-size", type=_positive_int, default=batch_size,
                      help=f"rows per batch (default {batch_size})")
  parser.add_argument("--overwrite", action="store_true")
  _add_verbose(parser)


@_fail_cleanly
def encode_main(argv=None):
  """`tfvae-encode`: rows -> latent means and standard deviations."""
  args = build_encode_parser().parse_args(argv)
  from tfvae import atomic  # pylint: disable=g-import-not-at-top
  from tfvae import runtime  # pylint: disable=g-import-not-at-top
  from tfvae import versions  # pylint: disable=g-import-not-at-top
  atomic.check_output_file(args.output, args.overwrite, protect=[args.data])
  metadata = versions.check_part(versions.version_path(args.model), "encoder")
  check_data_file(args.data, model_read_options(args, metadata),
                  metadata.get("input_dim"), metadata.get("feature_names"))
  runtime.import_tensorflow(verbose=args.verbose >= 3)
  from tfvae import serving  # pylint: disable=g-import-not-at-top

  rows, version_path = serving.encode_file(
      args.model, args.data, args.output, batch_size=args.batch_size,
      overwrite=args.overwrite, options=read_options(args),
      verbose=args.verbose)
  print(f"encoded {rows} rows with {version_path} into {args.output}")
  return 0


# -- tfvae-score ----------------------------------------------------------------


def build_score_parser():
  parser = argparse.ArgumentParser(
      prog="tfvae-score",
      description="Anomaly scores: -log p(x_obs) per row in nats (higher is "
      "stranger; densities per standard deviation of each column, values at "
      "an atom by their probability), by importance sampling; missing "
      "values are allowed. With "
      "--checkpoint-dir a trained model scores the data; without, a model is "
      "first trained on the data itself with tfvae-train's defaults. Each "
      "score's percentile among held-out rows' (tfvae-train's validation "
      "rows) is written next to it. A model trained first leaves out the "
      "--trim share of rows a first fit finds least likely (default 0.1), so "
      "that it is not pulled towards the anomalies it is asked to find.")
  # K = 100 ranks rows as K = 1000 does (scripts/bench_score_k.py).
  _add_model_file_arguments(parser, "a .csv, .npy or .parquet file",
                            calibration.SCORE_SAMPLES)
  parser.add_argument("--per-feature", action="store_true",
                      help="also write each score divided by the row's number "
                      "of observed values")
  parser.add_argument("--per-column", action="store_true",
                      help="also write each column's share of the score and "
                      "the latent code's (share_<column>, share_latent: "
                      "they add up to the score)")
  parser.add_argument("--trim", type=_trim_fraction,
                      help="without --checkpoint-dir: the share of rows that "
                      "a first fit finds least likely, left out of the "
                      "training of the model that scores (default "
                      f"{SCORE_TRIM}; 0 trains on every row; files that are "
                      f"streamed, or of fewer than {SCORE_TRIM_FROM_ROWS} "
                      "training rows, are not trimmed)")
  flags = parser.add_mutually_exclusive_group()
  flags.add_argument("--contamination", type=_contamination,
                     help="the expected share of anomalies, e.g. 0.01: add an "
                     "'anomaly' column, 1 for rows scoring above that share "
                     "of the held-out rows the model was calibrated on")
  flags.add_argument("--threshold", type=_finite(),
                     help="add an 'anomaly' column, 1 for rows scoring above "
                     "this many nats")
  return parser


def _add_model_file_arguments(parser, data_help, num_samples):
  """The arguments `tfvae-score` and `tfvae-impute` share."""
  _add_file_arguments(parser, data_help, batch_size=1024)
  parser.add_argument("--checkpoint-dir", "--checkpoint",
                      help="a checkpoint written by tfvae-train --checkpoint-dir")
  parser.add_argument("--num-samples", type=_num_samples, default=num_samples,
                      help=f"importance samples per row (default {num_samples})")
  parser.add_argument("--seed", type=_seed, default=0)


def score_trim(requested, data):
  """The share of rows `tfvae-score` trims before it trains on `data` (a
  `training.TrainingData`): `requested` if given (`--trim`), else
  `SCORE_TRIM` for a table in memory of at least `SCORE_TRIM_FROM_ROWS`
  training rows, else 0."""
  if requested is not None:
    return requested
  if data.streamed or data.num_train < SCORE_TRIM_FROM_ROWS:
    return 0.0
  return SCORE_TRIM


@_fail_cleanly
def score_main(argv=None):
  """`tfvae-score`: rows -> -log p(x_obs)."""
  args = build_score_parser().parse_args(argv)
  if args.trim is not None and args.checkpoint_dir is not None:
    raise ValueError("--trim applies to the model tfvae-score trains first; "
                     "the checkpoint's model is already trained (train it "
                     "with tfvae-train --trim)")
  return _run_with_model(args, "scoring", "score_file",
                         per_feature=args.per_feature,
                         per_column=args.per_column,
                         contamination=args.contamination,
                         threshold=args.threshold)


def _run_with_model(args, module_name, function_name, **options):
  """Checks the output and the data, gets a model (the checkpoint's, or one
  trained on the data first), and runs `tfvae.<module>.<function>`."""
  from tfvae import atomic  # pylint: disable=g-import-not-at-top
  from tfvae import checkpoint  # pylint: disable=g-import-not-at-top
  atomic.check_output_file(args.output, args.overwrite, protect=[args.data])
  read = read_options(args)
  settings = {}  # the checkpoint's model settings: its width and names
  if args.checkpoint_dir is not None:
    if not checkpoint.is_checkpoint(args.checkpoint_dir):
      raise ValueError(checkpoint.why_not_a_checkpoint(args.checkpoint_dir))
    settings = checkpoint.read_metadata(args.checkpoint_dir).get("model", {})
  if options.get("num_imputations"):
    width = settings.get("input_dim") or data_lib.open_table(
        args.data, read).width  # the columns inferred as training will
    validation.check_num_imputations(options["num_imputations"],
                                     args.batch_size, width,
                                     name="--num-imputations")
  if args.checkpoint_dir is None:
    from tfvae import training  # pylint: disable=g-import-not-at-top
    # To fill a file's own gaps, the model that fills them is trained on
    # every row (`refit`): rows it held out for early stopping are filled
    # better by a model that saw their observed cells (docs/missing-values.md).
    config = training.TrainConfig(
        data=args.data, read_options=read, seed=args.seed,
        verbose=min(args.verbose, 1), logdir=None,
        refit=module_name == "imputation")
    data = None
    if module_name == "scoring":
      # A model that scores a table's own anomalies is fitted to its typical
      # rows (`--trim`, `SCORE_TRIM`). Trimming needs the table in memory.
      data = training.prepare_data(config)
      config = dataclasses.replace(config, trim=score_trim(args.trim, data))
    trained = training.run(config, data=data)
    model = trained.model
    notes = []
    if trained.trimmed:
      notes.append(f"{trained.trimmed_line()}; --trim 0 keeps them, and "
                   "percentiles are among the kept held-out rows")
    if trained.ignored_columns:
      notes.append(f"columns not used: {', '.join(trained.ignored_columns)}")
    if args.verbose and (notes or trained.column_lines):
      # What the model took each column for (tfvae-train's summary says it).
      print("\n".join(notes + (trained.column_lines or [])), file=sys.stderr)
  else:
    check_data_file(args.data, model_read_options(args, settings),
                    settings.get("input_dim"), settings.get("feature_names"))
    from tfvae import runtime  # pylint: disable=g-import-not-at-top
    runtime.import_tensorflow(verbose=args.verbose >= 3)
    model = checkpoint.load_checkpoint(args.checkpoint_dir)
  import importlib  # pylint: disable=g-import-not-at-top
  run = getattr(importlib.import_module(f"tfvae.{module_name}"), function_name)
  result = run(model, args.data, args.output, num_samples=args.num_samples,
               batch_size=args.batch_size, seed=args.seed,
               overwrite=args.overwrite, options=read, verbose=args.verbose,
               **options)
  print(result.describe(args.output))
  return 0


# -- tfvae-impute ---------------------------------------------------------------


def build_impute_parser():
  parser = argparse.ArgumentParser(
      prog="tfvae-impute",
      description="Fill the missing values of a data file with "
      "E[x_mis | x_obs] (or draws from p(x_mis | x_obs)), by importance "
      "sampling. The output keeps the header, the row order and the text of "
      "every observed cell. Without --checkpoint-dir a model is first trained "
      "on the file itself with tfvae-train's defaults and --refit (early "
      "stopping on held-out rows, then a second fit on every row for the "
      "best epoch count).")
  _add_model_file_arguments(parser, "a .csv, .npy or .parquet file with gaps",
                            1000)
  parser.add_argument("--num-imputations", type=_positive_int,
                      help="write this many draws per row (multiple "
                      "imputation) instead of the conditional mean")
  return parser


@_fail_cleanly
def impute_main(argv=None):
  """`tfvae-impute`: rows with gaps -> completed rows."""
  args = build_impute_parser().parse_args(argv)
  return _run_with_model(args, "imputation", "impute_file",
                         num_imputations=args.num_imputations)


# -- tfvae-sample ---------------------------------------------------------------


def build_sample_parser():
  parser = argparse.ArgumentParser(
      prog="tfvae-sample",
      description="Write synthetic rows drawn from a trained model, in the "
      "training table's columns, header and formats (each column within its "
      "training range and rounded to its recorded resolution), streamed to "
      "a CSV file. With --given or --complete, rows are drawn from the "
      "model's conditional given some values, by the importance resampling "
      "of multiple imputation.")
  parser.add_argument("--checkpoint-dir", "--checkpoint", required=True,
                      help="a checkpoint written by tfvae-train --checkpoint-dir")
  parser.add_argument("--output", required=True, help="the CSV to write")
  parser.add_argument("--rows", type=_positive_int,
                      help="how many rows to draw (required unless "
                      "--complete)")
  parser.add_argument("--seed", type=_seed, default=0,
                      help="the same seed writes the same rows, and the first "
                      "n rows of a longer file")
  condition = parser.add_mutually_exclusive_group()
  condition.add_argument(
      "--given", type=_condition,
      help="draw rows given these values, e.g. 'alcohol=13.5,ash=2.4' (a "
      "column of a table without a header is '#3', its number)")
  condition.add_argument(
      "--complete", metavar="PARTIAL",
      help="a data file of partial rows: write each with its empty cells "
      "drawn given its filled ones")
  add_read_options(parser)
  parser.add_argument("--num-samples", type=_num_samples, default=1000,
                      help="importance samples per condition (default 1000; "
                      "raised up to 65,536 until a --given condition has "
                      "1,000 effective samples)")
  parser.add_argument("--raw", action="store_true",
                      help="write the model's own draws: no range, no "
                      "rounding to the columns' resolutions")
  report = parser.add_argument_group("report")
  report.add_argument(
      "--report", metavar="REPORT.json",
      help="also judge the rows against held-out real rows: fidelity "
      "(SDMetrics' measures), detection, ML efficacy and privacy, as JSON "
      "and a Markdown summary beside it (REPORT.md)")
  report.add_argument(
      "--data", help="for --report: the real data (default: the checkpoint's "
      "training data), split into training and held-out rows as training "
      "split it")
  report.add_argument("--target",
                      help="for --report: a column to predict (ML efficacy)")
  report.add_argument("--report-rows", type=_positive_int, default=5000,
                      help="synthetic rows judged (the first ones; default "
                      "5000)")
  parser.add_argument("--overwrite", action="store_true",
                      help="replace existing output files")
  _add_verbose(parser)
  return parser


def _condition(text):
  try:
    return validation.parse_condition(text)
  except ValueError as error:
    raise argparse.ArgumentTypeError(
        str(error).replace("--given: ", "")) from None


@_fail_cleanly
def sample_main(argv=None):
  """`tfvae-sample`: a checkpoint -> synthetic rows (and a report)."""
  parser = build_sample_parser()
  args = parser.parse_args(argv)
  if args.complete is None and args.rows is None:
    parser.error("--rows is required (or --complete PARTIAL)")
  if args.complete is not None and args.rows is not None:
    parser.error("--rows does not go with --complete (one row per partial "
                 "row)")
  if args.report and (args.given or args.complete):
    parser.error("--report judges rows drawn without a condition; drop "
                 "--given / --complete")
  if not args.report and (args.data or args.target):
    parser.error("--data and --target go with --report")
  from tfvae import atomic  # pylint: disable=g-import-not-at-top
  from tfvae import checkpoint  # pylint: disable=g-import-not-at-top
  from tfvae import synthesis  # pylint: disable=g-import-not-at-top
  protect = [args.complete, args.data]
  atomic.check_output_file(args.output, args.overwrite, protect=protect)
  if args.report:
    if os.path.abspath(args.report) == os.path.abspath(args.output):
      raise ValueError(f"{args.report}: the report and the rows need "
                       "different files")
    for path in (args.report, os.path.splitext(args.report)[0] + ".md"):
      atomic.check_output_file(path, args.overwrite, protect=protect)
  if not checkpoint.is_checkpoint(args.checkpoint_dir):
    raise ValueError(checkpoint.why_not_a_checkpoint(args.checkpoint_dir))
  metadata = checkpoint.read_metadata(args.checkpoint_dir)
  settings = metadata.get("model", {})
  width = settings.get("input_dim")
  names = settings.get("feature_names")
  given = target = None
  if args.given is not None:
    given = _given_columns(args.given, names, width)
  if args.target is not None:
    target = _column_index(args.target, names, width, "--target")
  if args.rows is not None and width:
    # One character and a delimiter per cell at the very least.
    synthesis.check_disk_space(args.output, 2.0 * args.rows * width)
  if args.complete is not None:
    check_data_file(args.complete, model_read_options(args, settings), width,
                    names)
  runtime.import_tensorflow(verbose=args.verbose >= 3)
  model = checkpoint.load_checkpoint(args.checkpoint_dir)
  as_recorded = not args.raw
  if args.complete is not None:
    result = synthesis.complete_file(
        model, args.complete, args.output, num_samples=args.num_samples,
        seed=args.seed, as_recorded=as_recorded, overwrite=args.overwrite,
        options=read_options(args), verbose=args.verbose)
    print(result.describe(args.output))
    return 0
  result = synthesis.sample_file(
      model, args.output, args.rows, seed=args.seed, given=given,
      num_samples=args.num_samples, as_recorded=as_recorded,
      overwrite=args.overwrite, verbose=args.verbose,
      keep_rows=args.report_rows if args.report else 0)
  print(result.describe(args.output))
  if args.report:
    from tfvae import fidelity  # pylint: disable=g-import-not-at-top
    train, holdout = synthesis.real_rows(
        metadata.get("training", {}), args.data,
        read_options(args) if args.data else None)
    report = fidelity.report(train, holdout, result.kept, model.feature_names,
                             target, seed=args.seed)
    summary = synthesis.write_report(report, args.report, args.overwrite)
    privacy = report["privacy"]
    print(f"report: quality {report['quality_score']:.3f} (training rows "
          f"{report['ceiling']['quality_score']:.3f}), detection "
          f"{report['detection']['score']:.3f}, distance ratio "
          f"{privacy['dcr_ratio']:.2f}, {privacy['exact_copies']} copies; "
          f"{args.report} and {summary}")
  return 0


def _column_index(column, names, width, flag):
  """A column named by the user (its name, or '#n' / n its 1-based
  number) -> its 0-based index."""
  if names and column in names:
    return names.index(column)
  else:
    text = column[1:] if column.startswith("#") else column
    if not text.isdigit():
      known = (f"one of {validation.shown_names(names)}" if names else
               "a column number such as #3")
      raise ValueError(f"{flag}: no column {column!r}; expected {known}")
    index = int(text) - 1
  if width and not 0 <= index < width:
    raise ValueError(f"{flag}: no column number {index + 1}; the model has "
                     f"{width} columns")
  return index


def _given_columns(given, names, width):
  """--given's {column: text} -> {0-based index: text}, columns checked
  against the checkpoint before TensorFlow starts (values are checked by
  `validation.condition_row`)."""
  result = {}
  for column, value in given.items():
    index = _column_index(column, names, width, "--given")
    if index in result:
      raise ValueError(f"--given: {validation.column_label(index, names)} "
                       "is given twice")
    result[index] = value
  if width and len(result) >= width:
    raise ValueError("--given gives every column: nothing is left to draw")
  return result
