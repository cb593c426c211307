/*
 * check.h -- the C tests' one assertion: CHECK(condition, printf-style message) counts a
 * pass or prints the failure with its line and counts it; main() prints
 * "N passed, M failed" from `passed` and `failed` (one test program per file includes this).
 */
#ifndef ASTORE_TEST_CHECK_H
#define ASTORE_TEST_CHECK_H

#include <stdio.h>

static int passed = 0, failed = 0;

#define CHECK(cond, ...)                                       \
    do {                                                       \
        if (cond) {                                            \
            passed++;                                          \
        } else {                                               \
            failed++;                                          \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__); \
            fprintf(stderr, __VA_ARGS__);                      \
            fputc('\n', stderr);                               \
        }                                                      \
    } while (0)

#endif /* ASTORE_TEST_CHECK_H */
