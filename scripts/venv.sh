# Sourced by the scripts: make ./.venv (Python >= 3.11) with pvemcp and its test extra, then activate it.
PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
  .venv/bin/python -m pip install --quiet --upgrade pip
fi
if ! .venv/bin/python -c "import pvemcp, pytest, mypy, ruff, openapi_spec_validator" 2>/dev/null \
   || [ pyproject.toml -nt .venv/.pvemcp-installed ]; then
  .venv/bin/python -m pip install --quiet -e ".[test]"
  touch .venv/.pvemcp-installed
fi
# shellcheck disable=SC1091
source .venv/bin/activate
