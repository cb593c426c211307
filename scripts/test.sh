#!/usr/bin/env bash
# Set up a virtual environment with the test extras and run every test: the Python suites,
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
exec .venv/bin/python -m pytest "$@"
