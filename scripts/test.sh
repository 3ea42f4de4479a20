#!/usr/bin/env bash
# Runs the whole test suite; creates .venv and installs tfvae[test] if needed.
# Extra arguments go to pytest (e.g. ./scripts/test.sh -m "not slow").
set -euo pipefail
source "$(dirname "$0")/_venv.sh" test
exec .venv/bin/python -m pytest "$@"
