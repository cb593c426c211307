#!/usr/bin/env bash
# The long libFuzzer run of csrc/fuzz: every harness until it has executed RUNS inputs (10
# million by default) or spent SECONDS seconds, whichever comes first, one after another at
# low priority, seeded like the CI run (tests/fuzz/fuzz_seeds.py) with the dictionary.
#
#   bash scripts/fuzz_long.sh                     # all six targets, 10M runs, 4 h cap each
#   RUNS=1000000 SECONDS_PER_TARGET=600 bash scripts/fuzz_long.sh meta frst
#
# Prints one line per target (executions, seconds, executions per second, corpus units,
# failures) and writes the table to OUT/summary.md (OUT defaults to a fresh temporary
# folder). A failure leaves libFuzzer's crash-*/leak-*/timeout-* input in OUT/<target>/:
# it becomes a regression in tests/fuzz/regressions/<case>/<target>.input. docs/FUZZING.md
# records the numbers of the last long run.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-10000000}
SECONDS_PER_TARGET=${SECONDS_PER_TARGET:-14400}
OUT=${OUT:-$(mktemp -d /tmp/astore-fuzz.XXXXXX)}
TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=(container model meta frst mlp xfrm)
PYTHON=${PYTHON:-.venv/bin/python}

nice -n 10 make -s -C csrc fuzz
"$PYTHON" tests/fuzz/fuzz_seeds.py "$OUT/seeds" >/dev/null
{
    echo "| target | executions | seconds | executions/s | corpus units | failures |"
    echo "| --- | ---: | ---: | ---: | ---: | ---: |"
} > "$OUT/summary.md"
status=0
for target in "${TARGETS[@]}"; do
    mkdir -p "$OUT/$target/corpus"
    start=$(date +%s)
    set +e
    nice -n 10 "csrc/build-fuzz/fuzz_$target" -dict=csrc/fuzz/astore.dict \
        -runs="$RUNS" -max_total_time="$SECONDS_PER_TARGET" -timeout=10 -rss_limit_mb=2048 \
        -detect_leaks=1 -print_final_stats=1 -artifact_prefix="$OUT/$target/" \
        "$OUT/$target/corpus" "$OUT/seeds/$target" > "$OUT/$target/log.txt" 2>&1
    rc=$?
    set -e
    seconds=$(( $(date +%s) - start ))
    executions=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$OUT/$target/log.txt" | grep -o '[0-9]*$' || echo 0)
    units=$(ls "$OUT/$target/corpus" | wc -l)
    failures=$(find "$OUT/$target" -maxdepth 1 \( -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' -o -name 'oom-*' \) | wc -l)
    if [ "$rc" -ne 0 ] || grep -qE 'ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|runtime error:|contract broken' "$OUT/$target/log.txt"; then
        failures=$(( failures > 0 ? failures : 1 ))
        status=1
    fi
    rate=$(( executions / (seconds > 0 ? seconds : 1) ))
    line="| fuzz_$target | $executions | $seconds | $rate | $units | $failures |"
    echo "$line" | tee -a "$OUT/summary.md"
done
echo "results: $OUT/summary.md"
exit $status
