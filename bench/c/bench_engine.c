/*
 * bench_engine.c -- the C-API contender of `python -m bench`: load, batch and single-event
 * timings of libastore with no Python in the way, printed as one JSON line.
 *
 *   bench_engine MODEL.astore INPUT.f32 N_ROWS N_THREADS REPEATS
 *                [OUTPUT.f64 [LATENCY_CALLS [LATENCY_OUTPUT.f64]]]
 *
 * INPUT.f32 holds at least N_ROWS rows of raw little-endian float32, row-major, with
 * astore_model_n_inputs() columns. The program
 *   1. times the load: read the file, astore_container_open (framing + SHA-256 store key) and
 *      astore_model_open (payload checks). The Ed25519 signature is not verified here (the C
 *      core leaves that to the caller: pyastore uses PyNaCl), so this is hash + parse only;
 *   2. scores all rows REPEATS times with N_THREADS and keeps every duration;
 *   3. if OUTPUT.f64 is given and not "-", writes the scores (float64, row-major) there;
 *   4. if LATENCY_CALLS > 0, scores row i % N_ROWS alone LATENCY_CALLS times, timing each call
 *      (one thread): the single-event cost of the C API; if LATENCY_OUTPUT.f64 is given, every
 *      call's nanoseconds go there (float64, in call order), for medians over several runs.
 *
 * Output: {"load_s":..,"batch_s":[..],"latency_ns":{"median":..,"p99":..,"calls":..},
 *          "n_inputs":..,"n_outputs":..,"library":".."}
 * Build (what bench/harness.py does):
 *   make -C csrc build/libastore.a
 *   cc -std=c99 -O2 -D_POSIX_C_SOURCE=200809L -Icsrc bench/c/bench_engine.c \
 *      csrc/build/libastore.a -lm -lpthread -o bench_engine
 */
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

static int compare_doubles(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Reads the whole file into a fresh buffer; NULL on any failure. */
static unsigned char *read_all(const char *path, size_t *length) {
    FILE *file = fopen(path, "rb");
    if (file == NULL) return NULL;
    unsigned char *data = NULL;
    long size = -1;
    if (fseek(file, 0, SEEK_END) == 0) size = ftell(file);
    if (size >= 0 && fseek(file, 0, SEEK_SET) == 0) {
        data = malloc(size > 0 ? (size_t)size : 1);
        if (data != NULL && fread(data, 1, (size_t)size, file) != (size_t)size) {
            free(data);
            data = NULL;
        }
    }
    fclose(file);
    *length = size > 0 ? (size_t)size : 0;
    return data;
}

static int fail(const char *what, const char *detail) {
    fprintf(stderr, "bench_engine: %s: %s\n", what, detail);
    return 2;
}

int main(int argc, char **argv) {
    if (argc < 6) {
        fprintf(stderr, "usage: %s MODEL.astore INPUT.f32 N_ROWS N_THREADS REPEATS "
                        "[OUTPUT.f64 [LATENCY_CALLS [LATENCY_OUTPUT.f64]]]\n", argv[0]);
        return 2;
    }
    const char *model_path = argv[1], *input_path = argv[2];
    size_t n_rows = (size_t)strtoull(argv[3], NULL, 10);
    unsigned n_threads = (unsigned)strtoul(argv[4], NULL, 10);
    long repeats = strtol(argv[5], NULL, 10);
    const char *output_path = argc > 6 ? argv[6] : "-";
    long latency_calls = argc > 7 ? strtol(argv[7], NULL, 10) : 0;
    const char *latency_path = argc > 8 ? argv[8] : NULL;
    if (n_rows == 0 || repeats < 1 || latency_calls < 0) return fail("arguments", "bad counts");

    astore_error err;
    double started = now();
    size_t length = 0;
    unsigned char *data = read_all(model_path, &length);
    if (data == NULL) return fail(model_path, "cannot read");
    astore_container *container = NULL;
    astore_model *model = NULL;
    if (astore_container_open(data, length, &container, &err) != ASTORE_OK) return fail(model_path, err.message);
    if (astore_model_open(container, &model, &err) != ASTORE_OK) return fail(model_path, err.message);
    double load_s = now() - started;

    size_t n_in = astore_model_n_inputs(model), n_out = astore_model_n_outputs(model);
    size_t input_length = 0;
    unsigned char *input = read_all(input_path, &input_length);
    if (input == NULL) return fail(input_path, "cannot read");
    if (input_length < sizeof(float) * n_rows * n_in) return fail(input_path, "fewer rows than N_ROWS");
    const float *x = (const float *)(const void *)input;
    double *out = malloc(sizeof(double) * n_rows * n_out);
    double *batch_s = malloc(sizeof(double) * (size_t)repeats);
    if (out == NULL || batch_s == NULL) return fail("memory", "out of memory");
    memset(out, 0, sizeof(double) * n_rows * n_out); /* fault the pages in before timing */

    for (long r = 0; r < repeats; r++) {
        double t0 = now();
        if (astore_model_score(model, x, n_rows, n_in, out, n_rows * n_out, n_threads, &err) != ASTORE_OK)
            return fail("score", err.message);
        batch_s[r] = now() - t0;
    }
    if (strcmp(output_path, "-") != 0) {
        FILE *file = fopen(output_path, "wb");
        if (file == NULL || fwrite(out, sizeof(double), n_rows * n_out, file) != n_rows * n_out)
            return fail(output_path, "cannot write");
        fclose(file);
    }

    double latency_median = 0.0, latency_p99 = 0.0;
    if (latency_calls > 0) {
        double *calls = malloc(sizeof(double) * (size_t)latency_calls);
        if (calls == NULL) return fail("memory", "out of memory");
        for (long i = 0; i < latency_calls; i++) {
            const float *row = x + ((size_t)i % n_rows) * n_in;
            double t0 = now();
            if (astore_model_score(model, row, 1, n_in, out, n_out, 1, &err) != ASTORE_OK)
                return fail("score one", err.message);
            calls[i] = now() - t0;
        }
        if (latency_path != NULL) {
            FILE *file = fopen(latency_path, "wb");
            int written = file != NULL;
            for (long i = 0; written && i < latency_calls; i++) {
                double ns = 1e9 * calls[i];
                written = fwrite(&ns, sizeof ns, 1, file) == 1;
            }
            if (file == NULL || fclose(file) != 0 || !written) return fail(latency_path, "cannot write");
        }
        qsort(calls, (size_t)latency_calls, sizeof(double), compare_doubles);
        latency_median = 1e9 * calls[latency_calls / 2];
        latency_p99 = 1e9 * calls[(size_t)((double)(latency_calls - 1) * 0.99)];
        free(calls);
    }

    printf("{\"load_s\":%.9f,\"batch_s\":[", load_s);
    for (long r = 0; r < repeats; r++) printf("%s%.9f", r ? "," : "", batch_s[r]);
    printf("],\"latency_ns\":{\"median\":%.1f,\"p99\":%.1f,\"calls\":%ld},"
           "\"n_inputs\":%zu,\"n_outputs\":%zu,\"library\":\"%s\"}\n",
           latency_median, latency_p99, latency_calls, n_in, n_out, astore_version());
    free(batch_s);
    free(out);
    free(input);
    astore_model_close(model);
    astore_container_close(container);
    free(data);
    return 0;
}
