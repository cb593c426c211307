/*
 * fuzz_model.c -- libFuzzer target: the input is a whole file whose store key is first
 * rewritten to match its bytes (so mutations anywhere reach interpretation, not only the
 * integrity check); it is opened as a container and a model, and an open model scores
 * rows of floats taken from the input.
 */
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t length);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t length) {
    uint8_t *copy = malloc(length ? length : 1);
    if (copy == NULL) abort();
    memcpy(copy, data, length);
    fuzz_fix_store_key(copy, length);
    fuzz_open_and_score(copy, length, data, length);
    free(copy);
    return 0;
}
