/*
 * bench_score.c -- times astore_model_score from C, without Python in the way.
 *
 *   bench_score MODEL.astore N_ROWS N_THREADS REPEATS [INPUT.f32]
 *
 * Rows are read from INPUT.f32 (raw little-endian float32, row-major), or drawn from a fixed
 * xorshift sequence (normal-ish values, 5% NaN). Prints the median seconds and ns per row.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "astore.h"

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int compare(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static uint8_t *read_all(const char *path, size_t *length) {
    FILE *file = fopen(path, "rb");
    if (file == NULL) return NULL;
    fseek(file, 0, SEEK_END);
    long size = ftell(file);
    rewind(file);
    uint8_t *data = malloc(size > 0 ? (size_t)size : 1);
    if (data != NULL && fread(data, 1, (size_t)size, file) != (size_t)size) {
        free(data);
        data = NULL;
    }
    fclose(file);
    *length = (size_t)size;
    return data;
}

int main(int argc, char **argv) {
    if (argc < 5) {
        fprintf(stderr, "usage: %s MODEL.astore N_ROWS N_THREADS REPEATS [INPUT.f32]\n", argv[0]);
        return 2;
    }
    size_t length = 0;
    uint8_t *data = read_all(argv[1], &length);
    astore_container *container = NULL;
    astore_model *model = NULL;
    astore_error err;
    if (data == NULL || astore_container_open(data, length, &container, &err) != ASTORE_OK ||
        astore_model_open(container, &model, &err) != ASTORE_OK) {
        fprintf(stderr, "cannot open %s: %s\n", argv[1], data ? err.message : "unreadable");
        return 3;
    }
    size_t n_rows = strtoull(argv[2], NULL, 10);
    unsigned threads = (unsigned)atoi(argv[3]);
    int repeats = atoi(argv[4]);
    size_t n_in = astore_model_n_inputs(model), n_out = astore_model_n_outputs(model);
    float *x = malloc(sizeof(float) * n_rows * n_in);
    double *out = malloc(sizeof(double) * n_rows * n_out);
    if (argc > 5) {
        size_t input_length = 0;
        uint8_t *input = read_all(argv[5], &input_length);
        if (input == NULL || input_length < sizeof(float) * n_rows * n_in) {
            fprintf(stderr, "%s: needs %zu float32 values\n", argv[5], n_rows * n_in);
            return 2;
        }
        memcpy(x, input, sizeof(float) * n_rows * n_in);
        free(input);
    } else {
        uint64_t state = 88172645463325252ull;
        for (size_t i = 0; i < n_rows * n_in; i++) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            double u = (double)(state >> 11) / 9007199254740992.0;
            x[i] = (u < 0.05) ? NAN : (float)((u - 0.5) * 4.0);
        }
    }
    double *times = malloc(sizeof(double) * (size_t)repeats);
    for (int i = 0; i < repeats; i++) {
        double start = now();
        if (astore_model_score(model, x, n_rows, n_in, out, n_rows * n_out, threads, &err) != ASTORE_OK) {
            fprintf(stderr, "score: %s\n", err.message);
            return 4;
        }
        times[i] = now() - start;
    }
    qsort(times, (size_t)repeats, sizeof(double), compare);
    double median = times[repeats / 2];
    printf("rows=%zu threads=%u median_s=%.4f ns_per_row=%.1f checksum=%.6f\n", n_rows, threads,
           median, 1e9 * median / (double)n_rows, out[0] + out[n_rows * n_out - 1]);
    free(times);
    free(x);
    free(out);
    astore_model_close(model);
    astore_container_close(container);
    free(data);
    return 0;
}
