/*
 * golden_scores.c -- score a raw input file with a container, for the cross-architecture
 * determinism check (tests/cross/test_cross.py, cross/build.sh).
 *
 *   golden_scores MODEL.astore INPUT.f32 OUTPUT.f64
 *
 * INPUT.f32 holds n_rows * n_inputs IEEE-754 binary32 values, little-endian, row-major (NaN is
 * a missing value). OUTPUT.f64 receives n_rows * n_outputs binary64 values, little-endian,
 * row-major. Both files are little-endian on every host: on a big-endian host the values are
 * converted on the way in and out, so the output bytes can be compared with the golden file.
 *
 * Besides the one-call batch score that is written out, the program scores the same rows one
 * at a time and with two threads and requires the same bits (the C API promises results that
 * do not depend on blocks or threads). It uses the public header only, and does not check the
 * signature: it trusts the golden containers of the repository.
 *
 * Exit status: 0 written; 2 usage or I/O error; 3 the container or model did not open;
 * 4 the single-row or threaded scores differ from the batch; 5 scoring failed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "astore.h"

static unsigned char *read_all(const char *path, size_t *length) {
    FILE *file = fopen(path, "rb");
    if (file == NULL) return NULL;
    size_t capacity = 1 << 16, used = 0, got;
    unsigned char *data = malloc(capacity);
    while (data != NULL && (got = fread(data + used, 1, capacity - used, file)) > 0) {
        used += got;
        if (used == capacity) {
            unsigned char *bigger = capacity <= SIZE_MAX / 2 ? realloc(data, capacity * 2) : NULL;
            if (bigger == NULL) free(data);
            data = bigger;
            capacity *= 2;
        }
    }
    if (ferror(file) && data != NULL) {
        free(data);
        data = NULL;
    }
    fclose(file);
    *length = used;
    return data;
}

static float load_f32le(const unsigned char *p) {
    uint32_t bits = (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
                    ((uint32_t)p[3] << 24);
    float value;
    memcpy(&value, &bits, sizeof value);
    return value;
}

static void store_f64le(unsigned char *p, double value) {
    uint64_t bits;
    memcpy(&bits, &value, sizeof bits);
    for (int i = 0; i < 8; i++) p[i] = (unsigned char)(bits >> (8 * i));
}

/* Batch, row-by-row and two-thread scores of x; 0 when all agree bit for bit. */
static int score_all_ways(const astore_model *model, const float *x, size_t n_rows, size_t n_in,
                          double *out, double *scratch, astore_error *err) {
    size_t n_out = astore_model_n_outputs(model);
    size_t total = n_rows * n_out;
    if (astore_model_score(model, x, n_rows, n_in, out, total, 1, err) != ASTORE_OK) return 5;
    for (size_t r = 0; r < n_rows; r++) {
        if (astore_model_score(model, x + r * n_in, 1, n_in, scratch + r * n_out, n_out, 1,
                               err) != ASTORE_OK) {
            return 5;
        }
    }
    if (memcmp(out, scratch, sizeof(double) * total) != 0) {
        fprintf(stderr, "golden_scores: row-by-row scores differ from the batch\n");
        return 4;
    }
    if (astore_model_score(model, x, n_rows, n_in, scratch, total, 2, err) != ASTORE_OK) return 5;
    if (memcmp(out, scratch, sizeof(double) * total) != 0) {
        fprintf(stderr, "golden_scores: two-thread scores differ from one thread\n");
        return 4;
    }
    return 0;
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: %s MODEL.astore INPUT.f32 OUTPUT.f64\n", argv[0]);
        return 2;
    }
    size_t container_length = 0, input_length = 0;
    unsigned char *container_bytes = read_all(argv[1], &container_length);
    unsigned char *input_bytes = read_all(argv[2], &input_length);
    if (container_bytes == NULL || input_bytes == NULL) {
        fprintf(stderr, "golden_scores: cannot read %s\n", container_bytes ? argv[2] : argv[1]);
        free(container_bytes);
        free(input_bytes);
        return 2;
    }
    astore_container *container = NULL;
    astore_model *model = NULL;
    astore_error err;
    if (astore_container_open(container_bytes, container_length, &container, &err) != ASTORE_OK ||
        astore_model_open(container, &model, &err) != ASTORE_OK) {
        fprintf(stderr, "golden_scores: %s: %s: %s\n", argv[1], astore_status_name(err.status),
                err.message);
        astore_container_close(container);
        free(container_bytes);
        free(input_bytes);
        return 3;
    }
    size_t n_in = astore_model_n_inputs(model), n_out = astore_model_n_outputs(model);
    size_t n_values = input_length / 4;
    int status = 0;
    if (input_length % 4 != 0 || n_in == 0 || n_values % n_in != 0) {
        fprintf(stderr, "golden_scores: %s: %zu bytes are not whole rows of %zu float32\n",
                argv[2], input_length, n_in);
        status = 2;
    }
    size_t n_rows = status == 0 ? n_values / n_in : 0;
    size_t n_scores = n_rows * n_out;
    size_t allocated = n_scores > 0 ? n_scores : 1;
    float *x = malloc(sizeof(float) * (n_values > 0 ? n_values : 1));
    double *out = malloc(sizeof(double) * allocated);
    double *scratch = malloc(sizeof(double) * allocated);
    unsigned char *encoded = malloc(8 * allocated);
    if (status == 0 && (x == NULL || out == NULL || scratch == NULL || encoded == NULL)) {
        fprintf(stderr, "golden_scores: out of memory\n");
        status = 2;
    }
    if (status == 0) {
        for (size_t i = 0; i < n_values; i++) x[i] = load_f32le(input_bytes + 4 * i);
        status = score_all_ways(model, x, n_rows, n_in, out, scratch, &err);
        if (status == 5) fprintf(stderr, "golden_scores: scoring failed: %s\n", err.message);
    }
    if (status == 0) {
        for (size_t i = 0; i < n_scores; i++) store_f64le(encoded + 8 * i, out[i]);
        FILE *file = fopen(argv[3], "wb");
        if (file == NULL || fwrite(encoded, 8, n_scores, file) != n_scores) {
            fprintf(stderr, "golden_scores: cannot write %s\n", argv[3]);
            status = 2;
        }
        if (file != NULL && fclose(file) != 0) status = 2;
    }
    if (status == 0) {
        fprintf(stderr, "golden_scores: %s: %zu rows x %zu inputs -> %zu outputs\n", argv[1],
                n_rows, n_in, n_out);
    }
    free(x);
    free(out);
    free(scratch);
    free(encoded);
    astore_model_close(model);
    astore_container_close(container);
    free(container_bytes);
    free(input_bytes);
    return status;
}
