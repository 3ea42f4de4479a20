# Sourced by demo.sh and test.sh: create .venv if missing and install tfvae
# with the extras named in $1 (e.g. "test"), re-installing only when
# setup.cfg changed since the last install.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
python="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  echo "creating .venv with $($python --version 2>&1)"
  "$python" -m venv .venv
fi
extras="${1:-}"
stamp=".venv/.tfvae-installed${extras:+-$extras}"
if [ ! -f "$stamp" ] || [ setup.cfg -nt "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  echo "installing tfvae${extras:+[$extras]} into .venv (first run takes a few minutes; log: .venv/install.log)"
  if ! { .venv/bin/python -m pip install --upgrade pip &&
         .venv/bin/python -m pip install -e ".${extras:+[$extras]}"; } > .venv/install.log 2>&1; then
    tail -n 30 .venv/install.log >&2
    echo "installation failed; the whole log is .venv/install.log" >&2
    exit 1
  fi
  touch "$stamp"
fi
