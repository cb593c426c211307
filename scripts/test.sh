#!/usr/bin/env bash
# Set up a virtual environment with the test extras and run every check: the linter (ruff) and
# the type checker (mypy --strict on pyastore/ and chain/), then every test: the Python suites,
# the C core's corpus tests under AddressSanitizer + UBSan, and the pure-C example.
#   bash scripts/test.sh                 # everything
#   bash scripts/test.sh -k corpus -x    # extra arguments go to pytest
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e '.[test]'
.venv/bin/python -m ruff check --quiet .
.venv/bin/python -m mypy
exec .venv/bin/python -m pytest "$@"
