#!/usr/bin/env bash
# The fraud pipeline (train, sign, anchor, verify, score), end to end, on the bundled default data:
#   bundled data -> train XGBoost with CapsNet-augmented frauds -> signed container
#   -> anchored in the verifiable log (proof bundle) -> describe -> verify -> score a CSV.
# Everything is written under demo/ (git-ignored). Re-running reuses the key pair.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e '.[train]'
BIN=.venv/bin
mkdir -p demo
[ -f demo/publisher.key ] || "$BIN/pyastore" keygen demo/publisher
[ -f demo/log.key ] || "$BIN/pyastore" keygen demo/log
[ -f demo/models.log ] || "$BIN/pyastore" chain init demo/models.log --key demo/log.key
"$BIN/pyastore-train" bundled-data demo/transactions.csv --force
"$BIN/pyastore-train" fraud --data demo/transactions.csv --target fraud --augment capsnet \
    --out demo/fraud.astore --sign-key demo/publisher.key --report demo/report \
    --chain demo/models.log
"$BIN/pyastore" describe demo/fraud.astore --trust demo/publisher.pub
"$BIN/pyastore" verify demo/fraud.astore --trust demo/publisher.pub --log-key demo/log.pub
"$BIN/pyastore" score demo/fraud.astore demo/transactions.csv -o demo/scores.csv \
    --keep fraud --label --trust demo/publisher.pub --require-anchored --log-key demo/log.pub
echo "first scored rows (fraud = the true label, P_1 = the model's probability):"
head -n 6 demo/scores.csv
echo "report: demo/report/report.md"
