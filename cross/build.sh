#!/usr/bin/env bash
# cross/build.sh -- build libastore, its C tests and a pyastore wheel for one target, and run
# the tests (under qemu-user for foreign targets). The Dockerfiles run this same script; CI
# and developers run it directly with Debian's cross toolchains (see cross/README.md).
#
#   cross/build.sh TARGET [--quick] [--no-clang] [--wheel|--no-wheel] [--no-corpus] [--no-run]
#
#   TARGET      x86_64 | aarch64 | armv7 | s390x (big-endian, C core only: no wheel)
#   --quick     the CI subset: the C corpus test with gcc only, no wheel unless --wheel
#   --no-clang  skip the clang build (default: built and checked when clang is installed)
#   --wheel     build and check the wheel (also with --quick)
#   --no-wheel  skip the wheel
#   --no-corpus skip the C tests (csrc/tests/test_meta.c, csrc/tests/test_corpus.c)
#   --no-run    build only: no test runs, no qemu needed
#
# Outputs, under ${CROSS_OUT:-cross/out}/TARGET/:
#   gcc/, clang/      objects, libastore.a/.so, test_meta, test_corpus, score_example,
#                     golden_scores
#   lib/              the stripped libastore.so and libastore.a (gcc), astore.h
#   results/COMPILER/ golden score outputs (NAME.f64), score_example.N.txt, test_meta.log,
#                     test_corpus.log
#   wheel/            pyastore-VERSION-cpXY-cpXY-linux_ARCH.whl (the pybind11 extension)
#
# Every check prints one line "RESULT <check> ok|FAIL [detail]", then a summary line
# "cross TARGET: N passed, M failed"; the exit status is 1 when a check failed, 77 when the
# toolchain for TARGET is missing (the line to install it is printed).
#
# C flags: csrc/libastore.mk's, through csrc/Makefile, which builds every program here
# (-std=c99 -O2 -Wall -Wextra -Werror -pedantic -fno-fast-math -ffp-contract=off ...), plus
# the target's baseline ISA, so binaries run on every device of the class: armv8-a for
# aarch64 (Pi 3/4/5), armv7-a + vfpv3-d16 hard-float for armv7 (Pi 2, Zero 2 and later on a
# 32-bit OS).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PYTHON=${PYTHON:-python3}
NICE=${CROSS_NICE:-nice -n 10}

usage() {
    sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//'
    exit 2
}

TARGET=${1:-}
case "$TARGET" in ""|-h|--help) usage ;; esac
shift
QUICK=0 CLANG=auto WHEEL=1 RUN=1 CORPUS=1
for arg in "$@"; do
    case "$arg" in
        --quick) QUICK=1; [ "$WHEEL" = forced ] || WHEEL=0 ;;
        --wheel) WHEEL=forced ;;
        --no-clang) CLANG=0 ;;
        --no-wheel) WHEEL=0 ;;
        --no-corpus) CORPUS=0 ;;
        --no-run) RUN=0 ;;
        -h|--help) usage ;;
        *) echo "cross/build.sh: unknown option $arg" >&2; usage ;;
    esac
done

case "$TARGET" in
    x86_64)
        TRIPLE=x86_64-linux-gnu ARCH_FLAGS="-march=x86-64" QEMU="" DEB_ARCH=amd64
        WHEEL_PLATFORM=linux-x86_64 APT_PACKAGES="gcc clang" ;;
    aarch64)
        TRIPLE=aarch64-linux-gnu ARCH_FLAGS="-march=armv8-a" QEMU=qemu-aarch64 DEB_ARCH=arm64
        WHEEL_PLATFORM=linux-aarch64
        APT_PACKAGES="gcc-aarch64-linux-gnu g++-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user" ;;
    armv7)
        TRIPLE=arm-linux-gnueabihf DEB_ARCH=armhf QEMU=qemu-arm WHEEL_PLATFORM=linux-armv7l
        ARCH_FLAGS="-march=armv7-a -mfpu=vfpv3-d16 -mfloat-abi=hard"
        APT_PACKAGES="gcc-arm-linux-gnueabihf g++-arm-linux-gnueabihf libc6-dev-armhf-cross qemu-user" ;;
    s390x)
        TRIPLE=s390x-linux-gnu ARCH_FLAGS="" QEMU=qemu-s390x DEB_ARCH=s390x WHEEL_PLATFORM=""
        APT_PACKAGES="gcc-s390x-linux-gnu libc6-dev-s390x-cross qemu-user" ;;
    *) echo "cross/build.sh: unknown target '$TARGET' (x86_64, aarch64, armv7, s390x)" >&2; exit 2 ;;
esac
# gcc evaluates float arithmetic in double on s390x in ISO C mode (FLT_EVAL_METHOD 1), which
# would round float32 expressions differently from every other target; this restores
# FLT_EVAL_METHOD 0. clang has FLT_EVAL_METHOD 0 there already (and rejects the flag).
GCC_FLAGS=""
[ "$TARGET" = s390x ] && GCC_FLAGS="-fexcess-precision=fast"
[ "$WHEEL" = forced ] && WHEEL=1
[ -n "$WHEEL_PLATFORM" ] || WHEEL=0

# On a host of the target's kind (a Pi, an arm64 machine or container) everything is native:
# the host compilers, no qemu, the host Python for the wheel.
case "$TARGET:$(uname -m)" in
    x86_64:x86_64|aarch64:aarch64|armv7:armv7l|armv7:armv8l|s390x:s390x) NATIVE=1 ;;
    *) NATIVE=0 ;;
esac
if [ "$NATIVE" = 1 ]; then
    TOOL_PREFIX="" RUNNER=()
else
    TOOL_PREFIX="$TRIPLE-" RUNNER=("$QEMU" -L "/usr/$TRIPLE")
fi
GCC=${TOOL_PREFIX}gcc
AR=${TOOL_PREFIX}ar
STRIP=${TOOL_PREFIX}strip
OUT=${CROSS_OUT:-$ROOT/cross/out}/$TARGET
case "$OUT" in /*) ;; *) OUT=$PWD/$OUT ;; esac

missing=()
for tool in "$GCC" "$AR" "$STRIP" make; do
    command -v "$tool" >/dev/null || missing+=("$tool")
done
if [ "$RUN" = 1 ] && [ ${#RUNNER[@]} -gt 0 ]; then
    command -v "$QEMU" >/dev/null || missing+=("$QEMU")
fi
if [ ${#missing[@]} -gt 0 ]; then
    echo "cross/build.sh: missing for $TARGET: ${missing[*]}" >&2
    echo "  install with: apt-get install -y --no-install-recommends $APT_PACKAGES" >&2
    exit 77
fi
if [ "$CLANG" = auto ]; then
    if command -v clang >/dev/null; then CLANG=1; else CLANG=0; fi
fi

PASSED=0 FAILED=0
result() { # result CHECK ok|FAIL [detail]
    local check=$1 verdict=$2
    shift 2
    echo "RESULT $check $verdict${*:+ $*}"
    if [ "$verdict" = ok ]; then PASSED=$((PASSED + 1)); else FAILED=$((FAILED + 1)); fi
}
step() { echo "== $TARGET: $*"; }

mkdir -p "$OUT"

# ---- 1. libastore, the C test programs and golden_scores, per compiler ---------------------
build_c() { # build_c COMPILER-NAME CC-COMMAND [EXTRA-FLAGS]
    local name=$1 cc=$2 flags="$ARCH_FLAGS${3:+ $3}" dir=$OUT/$1
    rm -rf "$dir"
    step "build libastore with $cc $flags"
    if ! $NICE make -s -C "$ROOT/csrc" CC="$cc" AR="$AR" CFLAGS="$flags" BUILD="$dir" \
        all "$dir/test_meta" "$dir/test_corpus" "$dir/golden_scores" \
        >"$OUT/$name.build.log" 2>&1; then
        cat "$OUT/$name.build.log"
        result "build-$name" FAIL "see $OUT/$name.build.log"
        return 1
    fi
    result "build-$name" ok "-Wall -Wextra -Werror clean"
}

# ---- 2. the checks, run natively or under qemu ------------------------------------------
# The C tests run exactly as `make check` runs them (its recipe, read with `make -n`), with
# the qemu runner put before each program.
run_checks() { # run_checks COMPILER-NAME WITH-CORPUS(0|1) EXTRA-FLAGS
    local name=$1 corpus=$2 flags="$ARCH_FLAGS${3:+ $3}" dir=$OUT/$1 results=$OUT/results/$1
    local line status summary program runner="$NICE ${RUNNER[*]}" n=0
    mkdir -p "$results"
    local recipe
    recipe=$(make -n -s -C "$ROOT/csrc" check CC="$GCC" AR="$AR" CFLAGS="$flags" BUILD="$dir" |
        grep -E "^$dir/test_[a-z]+( |\$)|\\| $dir/score_example " || true)
    [ -n "$recipe" ] || result "make-check-recipe-$name" FAIL "make -n check printed no test"
    while IFS= read -r line; do
        [ -n "$line" ] || continue
        if [[ "$line" == "$dir/test_"* ]]; then
            [ "$corpus" = 1 ] || continue
            program=${line#"$dir/"}
            program=${program%% *}
            step "$program ($name)${RUNNER:+ under ${RUNNER[*]}}"
            set +e
            (cd "$ROOT/csrc" && eval "$runner $line") >"$results/$program.log" 2>&1
            status=$?
            set -e
            summary=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$results/$program.log" | tail -1 || true)
            if [ $status -eq 0 ]; then
                result "$program-$name" ok "$summary"
            else
                tail -5 "$results/$program.log"
                result "$program-$name" FAIL "exit $status${summary:+, $summary}"
            fi
        else
            n=$((n + 1))
            set +e
            (cd "$ROOT/csrc" && eval "${line/| $dir\/score_example/| $runner $dir/score_example}") \
                >"$results/score_example.$n.txt" 2>"$results/score_example.$n.log"
            status=$?
            set -e
            if [ $status -eq 0 ]; then
                result "score_example.$n-$name" ok "$(tr '\n' ' ' <"$results/score_example.$n.txt")"
            else
                result "score_example.$n-$name" FAIL "exit $status: $(tail -1 "$results/score_example.$n.log")"
            fi
        fi
    done <<<"$recipe"
    local input base container expected got
    for input in "$ROOT"/tests/golden_scores/*.input.f32; do
        [ -e "$input" ] || continue
        base=$(basename "$input" .input.f32)
        container=$ROOT/tests/golden/$base.astore
        [ -f "$container" ] || container=$ROOT/tests/golden_scores/$base.astore
        expected=$ROOT/tests/golden_scores/$base.expected.f64
        got=$results/$base.f64
        rm -f "$got"
        if ! $NICE "${RUNNER[@]}" "$dir/golden_scores" "$container" "$input" "$got" \
            2>"$results/$base.log"; then
            result "golden-$base-$name" FAIL "$(tail -1 "$results/$base.log")"
        elif cmp -s "$got" "$expected"; then
            result "golden-$base-$name" ok "$(($(wc -c <"$got") / 8)) float64 bit-identical"
        else
            result "golden-$base-$name" FAIL \
                "$(cmp -l "$got" "$expected" | wc -l) bytes differ from $(basename "$expected")"
        fi
    done
}

build_c gcc "$GCC" "$GCC_FLAGS" || true
if [ "$CLANG" = 1 ]; then
    if [ "$NATIVE" = 1 ]; then build_c clang clang || true
    else build_c clang "clang --target=$TRIPLE" || true
    fi
fi

# ---- 3. the stripped library: what a device installs ----------------------------------------
if [ -f "$OUT/gcc/libastore.so" ]; then
    mkdir -p "$OUT/lib"
    "$STRIP" --strip-unneeded -o "$OUT/lib/libastore.so" "$OUT/gcc/libastore.so"
    "$STRIP" --strip-debug -o "$OUT/lib/libastore.a" "$OUT/gcc/libastore.a"
    cp "$ROOT/csrc/astore.h" "$OUT/lib/"
    echo "SIZE $TARGET libastore.so stripped $(wc -c <"$OUT/lib/libastore.so") bytes"
    echo "SIZE $TARGET libastore.a $(wc -c <"$OUT/lib/libastore.a") bytes"
fi

if [ "$RUN" = 1 ]; then
    [ -x "$OUT/gcc/golden_scores" ] && run_checks gcc "$CORPUS" "$GCC_FLAGS"
    if [ "$CLANG" = 1 ] && [ -x "$OUT/clang/golden_scores" ]; then
        run_checks clang "$((CORPUS && !QUICK))"
    fi
fi

# ---- 4. the wheel: the pybind11 extension built by setup.py for the target ------------------
if [ "$WHEEL" = 1 ]; then
    step "wheel"
    set +e
    CROSS_OUT_TARGET=$OUT TARGET=$TARGET TRIPLE=$TRIPLE DEB_ARCH=$DEB_ARCH NATIVE=$NATIVE \
        ARCH_FLAGS=$ARCH_FLAGS WHEEL_PLATFORM=$WHEEL_PLATFORM RUN=$RUN \
        bash "$ROOT/cross/wheel.sh" >"$OUT/wheel.log" 2>&1
    status=$?
    set -e
    grep -E '^(RESULT|SIZE|WORKAROUND) ' "$OUT/wheel.log" || true
    PASSED=$((PASSED + $(grep -c '^RESULT .* ok' "$OUT/wheel.log" || true)))
    FAILED=$((FAILED + $(grep -c '^RESULT .* FAIL' "$OUT/wheel.log" || true)))
    if [ $status -ne 0 ] && ! grep -q '^RESULT .* FAIL' "$OUT/wheel.log"; then
        tail -20 "$OUT/wheel.log"
        result wheel FAIL "cross/wheel.sh exit $status, see $OUT/wheel.log"
    fi
fi

echo "cross $TARGET: $PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
