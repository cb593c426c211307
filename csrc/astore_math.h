/*
 * astore_math.h -- exp() computed with a fixed sequence of IEEE-754 double operations, so a
 * container gives bit-identical outputs on every CPU. libm's exp is not the same everywhere:
 * glibc rounds differently with and without FMA (x86-64 with/without FMA, armv7), which
 * changed logistic/softmax outputs by 1-2 ulp between targets. Accuracy: within 1 ulp of the
 * correctly rounded result. Needs the default rounding mode and no FMA contraction
 * (-ffp-contract=off, as csrc/Makefile and setup.py build).
 */
#ifndef ASTORE_MATH_H
#define ASTORE_MATH_H

#include <math.h>
#include <stdint.h>
#include <string.h>

/* v * 2^n for n in [-1075, 1024], in two exact steps so that each factor is a normal double. */
static inline double astore_scale_by_power_of_two(double v, int n) {
    int half = n / 2;
    uint64_t first_bits = (uint64_t)(half + 1023) << 52;
    uint64_t second_bits = (uint64_t)(n - half + 1023) << 52;
    double first, second;
    memcpy(&first, &first_bits, sizeof first);
    memcpy(&second, &second_bits, sizeof second);
    return v * first * second;
}

static inline double astore_exp(double x) {
    if (x != x) return x;
    if (x > 709.782712893384) return INFINITY;
    if (x < -745.1332191019412) return 0.0;
    /* n = round(x / ln 2) by the 1.5 * 2^52 shifter trick; r = x - n ln 2 in two parts */
    const double shifter = 6755399441055744.0;
    double shifted = x * 1.4426950408889634 + shifter;
    double n = shifted - shifter;
    double r = (x - n * 0x1.62e42fee00000p-1) - n * 0x1.a39ef35793c76p-33;
    /* e^r - 1 - r, Taylor to r^13/13! (|r| <= 0.35: truncation below 1e-17), Horner */
    double p = 1.0 / 6227020800.0;
    p = p * r + 1.0 / 479001600.0;
    p = p * r + 1.0 / 39916800.0;
    p = p * r + 1.0 / 3628800.0;
    p = p * r + 1.0 / 362880.0;
    p = p * r + 1.0 / 40320.0;
    p = p * r + 1.0 / 5040.0;
    p = p * r + 1.0 / 720.0;
    p = p * r + 1.0 / 120.0;
    p = p * r + 1.0 / 24.0;
    p = p * r + 1.0 / 6.0;
    p = p * r + 0.5;
    p = p * r * r + r;
    return astore_scale_by_power_of_two(1.0 + p, (int)n);
}

#endif /* ASTORE_MATH_H */
