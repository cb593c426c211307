/*
 * score_example.c -- a pure-C program against the public header only: open a container,
 * check its store key, print the signed message a verifier must check, score rows from
 * stdin (one row per line, comma-separated; an empty field or "nan" is missing).
 *
 *   cc -std=c99 -Icsrc csrc/examples/score_example.c libastore.a -lm -lpthread -o score_example
 *   printf '0,0,0\n1,2,-1\n' | ./score_example model.astore
 *
 * This example does not check the Ed25519 signature (libastore has no public-key
 * cryptography): a real device passes astore_container_signed_message() and the public key
 * to libsodium's crypto_sign_verify_detached() before astore_model_open().
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "astore.h"

static uint8_t *read_file(const char *path, size_t *length) {
    FILE *file = fopen(path, "rb");
    if (file == NULL) return NULL;
    if (fseek(file, 0, SEEK_END) != 0) {
        fclose(file);
        return NULL;
    }
    long size = ftell(file);
    rewind(file);
    uint8_t *data = size > 0 ? malloc((size_t)size) : NULL;
    if (data != NULL && fread(data, 1, (size_t)size, file) != (size_t)size) {
        free(data);
        data = NULL;
    }
    fclose(file);
    *length = size > 0 ? (size_t)size : 0;
    return data;
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s MODEL.astore < rows.csv\n", argv[0]);
        return 2;
    }
    size_t length = 0;
    uint8_t *data = read_file(argv[1], &length);
    if (data == NULL) {
        fprintf(stderr, "%s: cannot read\n", argv[1]);
        return 2;
    }
    astore_container *container = NULL;
    astore_model *model = NULL;
    astore_error err;
    if (astore_container_open(data, length, &container, &err) != ASTORE_OK ||
        astore_model_open(container, &model, &err) != ASTORE_OK) {
        fprintf(stderr, "%s: %s: %s\n", argv[1], astore_status_name(err.status), err.message);
        astore_container_close(container);
        free(data);
        return 3;
    }
    uint8_t key[32];
    astore_container_store_key(container, key);
    fprintf(stderr, "store key: sha256:");
    for (int i = 0; i < 32; i++) fprintf(stderr, "%02x", key[i]);
    fprintf(stderr, "\n");

    size_t n_in = astore_model_n_inputs(model), n_out = astore_model_n_outputs(model);
    static const char *const policies[] = {"as_missing", "impute", "error"};
    fprintf(stderr, "inputs:");
    for (size_t c = 0; c < n_in; c++) {
        astore_input_info input;
        if (astore_model_input(model, c, &input) != ASTORE_OK) break;
        fprintf(stderr, " %.*s (missing: %s)", (int)input.name_length, input.name,
                policies[input.missing_policy]);
    }
    fprintf(stderr, "\n");
    float *row = malloc(sizeof(float) * n_in);
    double *out = malloc(sizeof(double) * n_out);
    char line[65536];
    int status = 0;
    unsigned long line_number = 0;
    while (row != NULL && out != NULL && fgets(line, sizeof line, stdin) != NULL) {
        line_number++;
        char *cursor = line;
        for (size_t c = 0; c < n_in; c++) {
            char *end = cursor;
            double value = strtod(cursor, &end);
            row[c] = end == cursor ? NAN : (float)value;
            cursor = strchr(end, ',');
            cursor = cursor ? cursor + 1 : end;
        }
        if (astore_model_score(model, row, 1, n_in, out, n_out, 1, &err) != ASTORE_OK) {
            fprintf(stderr, "line %lu: %s: %s\n", line_number, astore_status_name(err.status),
                    err.message);
            status = 5;
            break;
        }
        for (size_t k = 0; k < n_out; k++) printf(k ? ",%.17g" : "%.17g", out[k]);
        printf("\n");
    }
    free(row);
    free(out);
    astore_model_close(model);
    astore_container_close(container);
    free(data);
    return status;
}
