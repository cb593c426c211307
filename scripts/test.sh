#!/usr/bin/env bash
# Set up a virtual environment with the test extras (and .venv-ctgan, scripts/ctgan_env.sh)
# and run every check: the linter (ruff) and
# the type checker (mypy --strict on pyastore/ and chain/), then every test: the Python suites,
# the C core's corpus tests under AddressSanitizer + UBSan, and the pure-C example.
#   bash scripts/test.sh                 # everything
#   bash scripts/test.sh -k corpus -x    # extra arguments go to pytest
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
# The Spark tests need a Java runtime and the log tests PostgreSQL's server binaries (Debian's
# packages; the tests fail, never skip, without them): installed here when missing and we may.
if ! { command -v java >/dev/null 2>&1 || ls /usr/lib/jvm/java-*-openjdk-*/bin/java >/dev/null 2>&1; } \
    || ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
    if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
        apt-get update -qq || true
        mkdir -p /usr/share/man/man1  # the JRE's postinst fails without it on slim images
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
            openjdk-17-jre-headless postgresql >/dev/null
    else
        echo "scripts/test.sh: install openjdk-17-jre-headless and postgresql (Debian) for the" \
             "Spark and PostgreSQL tests" >&2
    fi
fi
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e '.[test]'
# The CTGAN baseline of the scarcity experiment runs in an interpreter of its own (ctgan needs
# pandas < 3); its test runs it.
PYTHON="$PYTHON" bash scripts/ctgan_env.sh >/dev/null
.venv/bin/python -m ruff check --quiet .
.venv/bin/python -m mypy
exec .venv/bin/python -m pytest "$@"
