#!/usr/bin/env bash
# Trains a VAE on the embedded UCI Wine data, prints the summary, and exports
# the encoder and decoder to saved_models/demo/, and keeps a checkpoint in
# checkpoints/demo/ (for tfvae-sample, tfvae-score ...). Creates .venv if
# needed.
# Extra arguments go to tfvae-train (e.g. ./scripts/demo.sh --epochs 50).
set -euo pipefail
# An explicit empty argument: sourced without one, _venv.sh would see this
# script's own arguments (--epochs ...) as the extras to install.
source "$(dirname "$0")/_venv.sh" ""
exec .venv/bin/tfvae-train --logdir runs/demo --export-dir saved_models/demo \
  --checkpoint-dir checkpoints/demo --overwrite "$@"
