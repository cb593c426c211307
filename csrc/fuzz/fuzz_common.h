/*
 * fuzz_common.h -- what the libFuzzer harnesses of libastore share (csrc/fuzz/README.md):
 * the store-key fix-up that lets mutations reach interpretation, framing a fuzzed section
 * body into a container, and scoring a few rows of floats taken from the input.
 *
 * Built only by `make fuzz` (clang, -fsanitize=fuzzer,address,undefined). Every harness
 * checks the core's contract as it goes: a failed open leaves a status and a NUL-terminated
 * message, a successful one gives a model that scores any finite, NaN or infinite row
 * without a sanitizer report.
 */
#ifndef ASTORE_FUZZ_COMMON_H
#define ASTORE_FUZZ_COMMON_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../astore.h"
#include "../sha256.h"

#define FUZZ_SIGN_LENGTH 136u
#define FUZZ_MAX_ROWS 4u

/* Aborts (a crash libFuzzer records) when the core breaks its own contract. */
#define FUZZ_REQUIRE(condition, ...)                                                       \
    do {                                                                                   \
        if (!(condition)) {                                                                \
            fprintf(stderr, "contract broken: " __VA_ARGS__);                              \
            fputc('\n', stderr);                                                           \
            abort();                                                                       \
        }                                                                                  \
    } while (0)

static inline void fuzz_check_error(astore_status status, const astore_error *err) {
    FUZZ_REQUIRE(status != ASTORE_OK, "an error path returned ASTORE_OK");
    FUZZ_REQUIRE(err->status == status, "err->status %d differs from the returned %d",
                 (int)err->status, (int)status);
    FUZZ_REQUIRE(memchr(err->message, '\0', sizeof err->message) != NULL && err->message[0],
                 "error message empty or not NUL-terminated");
}

/* Rewrites the recorded store key (bytes 8..40 of the last 136) to the hash of everything
 * before them, so that a mutated file passes the integrity check and reaches its sections. */
static inline void fuzz_fix_store_key(uint8_t *data, size_t length) {
    if (length < FUZZ_SIGN_LENGTH) return;
    size_t sign = length - FUZZ_SIGN_LENGTH;
    astore_sha256(data, sign, data + sign + 8);
}

/* Floats for the rows: the input's bytes read 4 at a time, every 7th value replaced by one
 * of the special values, so every row mixes ordinary, NaN, infinite and extreme inputs. */
static inline float fuzz_float(const uint8_t *bytes, size_t length, size_t index) {
    static const float special[] = {0.0f, -0.0f, 1.0f, -1.0f, 0.5f, 1e-45f, 3.4028235e38f,
                                    -3.4028235e38f, 1.0f / 0.0f, -1.0f / 0.0f, 0.0f / 0.0f};
    uint32_t bits = 0x9E3779B9u * (uint32_t)(index + 1);
    for (size_t k = 0; k < 4 && length > 0; k++) {
        bits ^= (uint32_t)bytes[(index * 4 + k) % length] << (8 * k);
    }
    if (index % 7 == 3) return special[bits % (sizeof special / sizeof special[0])];
    float value;
    memcpy(&value, &bits, sizeof value);
    return value;
}

/* Scores FUZZ_MAX_ROWS rows, and one row alone; a refused row must be a missing value an
 * input refuses. For one input in 16 (starting threads is slow) the rows are also scored
 * with 2 threads, which must agree bit for bit. */
static inline void fuzz_score(const astore_model *model, const uint8_t *bytes, size_t length) {
    size_t n_cols = astore_model_n_inputs(model);
    size_t n_out = astore_model_n_outputs(model);
    FUZZ_REQUIRE(n_cols > 0 && n_out > 0, "an open model with %zu inputs, %zu outputs",
                 n_cols, n_out);
    if (n_cols > (1u << 16) || n_out > (1u << 16)) return; /* keep each run small */
    float *x = malloc(sizeof(float) * FUZZ_MAX_ROWS * n_cols);
    double *one = malloc(sizeof(double) * FUZZ_MAX_ROWS * n_out);
    double *two = malloc(sizeof(double) * FUZZ_MAX_ROWS * n_out);
    if (x == NULL || one == NULL || two == NULL) abort();
    for (size_t i = 0; i < FUZZ_MAX_ROWS * n_cols; i++) x[i] = fuzz_float(bytes, length, i);
    astore_error err;
    astore_status status =
        astore_model_score(model, x, FUZZ_MAX_ROWS, n_cols, one, FUZZ_MAX_ROWS * n_out, 1, &err);
    if (status != ASTORE_OK) {
        fuzz_check_error(status, &err);
        FUZZ_REQUIRE(status == ASTORE_ERR_INPUT, "scoring failed with %s: %s",
                     astore_status_name(status), err.message);
    } else if (length > 0 && bytes[length - 1] % 16 == 0) {
        status = astore_model_score(model, x, FUZZ_MAX_ROWS, n_cols, two,
                                    FUZZ_MAX_ROWS * n_out, 2, &err);
        FUZZ_REQUIRE(status == ASTORE_OK, "two threads refused what one scored");
        FUZZ_REQUIRE(memcmp(one, two, sizeof(double) * FUZZ_MAX_ROWS * n_out) == 0,
                     "two threads scored differently from one");
    }
    for (size_t i = 0; i < n_cols; i++) x[i] = 0.0f; /* a plain row scores */
    status = astore_model_score(model, x, 1, n_cols, one, n_out, 0, &err);
    FUZZ_REQUIRE(status == ASTORE_OK, "a row of zeros was refused: %s", err.message);
    status = astore_model_score(model, x, 1, n_cols + 1, one, n_out, 0, &err);
    FUZZ_REQUIRE(status != ASTORE_OK, "a row of the wrong width was scored");
    free(x);
    free(one);
    free(two);
}

/* Opens `data` as a container and a model and, when both open, scores rows from `bytes`. */
static inline void fuzz_open_and_score(const uint8_t *data, size_t length,
                                       const uint8_t *bytes, size_t bytes_length) {
    astore_container *container = NULL;
    astore_error err;
    astore_status status = astore_container_open(data, length, &container, &err);
    if (status != ASTORE_OK) {
        fuzz_check_error(status, &err);
        FUZZ_REQUIRE(container == NULL, "a failed open returned a container");
        return;
    }
    astore_model *model = NULL;
    status = astore_model_open(container, &model, &err);
    if (status != ASTORE_OK) {
        fuzz_check_error(status, &err);
        FUZZ_REQUIRE(model == NULL, "a failed model open returned a model");
    } else {
        fuzz_score(model, bytes, bytes_length);
        astore_model_close(model);
    }
    astore_container_close(container);
}

#endif /* ASTORE_FUZZ_COMMON_H */
