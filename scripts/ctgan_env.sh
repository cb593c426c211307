#!/usr/bin/env bash
# An interpreter for the CTGAN baseline of the scarcity experiment (trainer/scarcity_experiment.py):
# the ctgan package needs pandas < 3, so it gets a virtual environment of its own, beside the
# project's, with the same CPU build of torch.
#
#   bash scripts/ctgan_env.sh            # makes .venv-ctgan (about 1 GB with torch)
#   python -m trainer.scarcity_experiment --data ... --ctgan-python .venv-ctgan/bin/python
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
[ -x .venv-ctgan/bin/python ] || "$PYTHON" -m venv .venv-ctgan
.venv-ctgan/bin/pip install --quiet --disable-pip-version-check \
    "torch==2.13.0" "ctgan==0.12.1" "numpy>=1.23"
.venv-ctgan/bin/python -c "import ctgan, torch; print('ctgan', ctgan.__version__, 'torch', torch.__version__)"
