#!/usr/bin/env bash
# The full test suite: lint, types, tests. Creates ./.venv with everything it needs on first use.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/venv.sh
source scripts/venv.sh
# shellcheck source=scripts/system-deps.sh
source scripts/system-deps.sh
echo "== ruff" && ruff check server tests bench && ruff format --check server tests bench
echo "== mypy" && mypy
echo "== pytest" && pytest "$@"
