#!/usr/bin/env bash
# Trains a VAE on the embedded UCI Wine data, prints the summary, and exports
# the encoder and decoder to saved_models/demo/. Creates .venv if needed.
# Extra arguments go to tfvae-train (e.g. ./scripts/demo.sh --epochs 50).
set -euo pipefail
source "$(dirname "$0")/_venv.sh"
exec .venv/bin/tfvae-train --logdir runs/demo --export-dir saved_models/demo "$@"
