/*
 * test_corpus.c -- the C core against the container corpus, meant to run under
 * AddressSanitizer + UBSan (see .ci/run and csrc/Makefile).
 *
 *   test_corpus GOLDEN.astore CORPUS_DIR [MORE_GOLDEN.astore ...]
 *
 * 1. every case in CORPUS_DIR/manifest.tsv gives the expected status from
 *    astore_container_open and astore_model_open;
 * 2. each golden container opens and scores; every truncation (each length 0..n-1) fails;
 *    every single-bit flip before the signer fields fails (a flip in the public key or
 *    signature passes framing: that is for the signature check, which is not in C);
 * 3. mutation of every byte of META and of each payload section (FRST, MLP_, XFRM) with
 *    the store key recomputed, so the mutated content reaches astore_model_open: it either
 *    rejects it or the model scores rows with NaN, infinities and large values without any
 *    out-of-bounds access;
 * 4. the inputs META describes (astore_model_input) and the missing-value policy
 *    (astore_model_check_rows, and astore_model_score refusing what it refuses), on the
 *    corpus's input_refuses_missing.astore;
 * 5. the categorical splits of tiny_categorical.astore (when given): every code of both
 *    sets, codes in neither, fractions, negatives, -0, infinities and NaN, against the
 *    trees written out as if/else, in blocks and row by row.
 * Prints "N passed, M failed" and exits non-zero on any failure.
 */
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../astore.h"
#include "../sha256.h"
#include "check.h"

static uint8_t *read_file(const char *path, size_t *length) {
    FILE *file = fopen(path, "rb");
    if (file == NULL) return NULL;
    size_t capacity = 4096, used = 0;
    uint8_t *data = malloc(capacity);
    size_t got;
    while (data != NULL && (got = fread(data + used, 1, capacity - used, file)) > 0) {
        used += got;
        if (used == capacity) {
            uint8_t *bigger = realloc(data, capacity *= 2);
            if (bigger == NULL) free(data);
            data = bigger;
        }
    }
    fclose(file);
    *length = used;
    return data;
}

static const char *short_status(astore_status status) {
    return astore_status_name(status) + (status == ASTORE_OK ? 7 : 11); /* strip prefix */
}

/* Opens container + model; returns the model status, or the container status if that failed. */
static astore_status open_both(const uint8_t *data, size_t length, astore_status *container_status,
                               astore_model **model_out, astore_container **container_out) {
    astore_container *container = NULL;
    astore_model *model = NULL;
    astore_error err;
    *container_status = astore_container_open(data, length, &container, &err);
    if (*container_status != ASTORE_OK) return *container_status;
    astore_status status = astore_model_open(container, &model, &err);
    if (model_out != NULL && status == ASTORE_OK) {
        *model_out = model;
        *container_out = container;
        return status;
    }
    astore_model_close(model);
    astore_container_close(container);
    return status;
}

/* Reads `path` and opens its container and model; NULL (the failure CHECKed) when either
 * fails. The caller closes the model and container and frees *data. */
static astore_model *open_model_file(const char *path, uint8_t **data,
                                     astore_container **container) {
    size_t length = 0;
    *data = read_file(path, &length);
    CHECK(*data != NULL, "cannot read %s", path);
    if (*data == NULL) return NULL;
    astore_status container_status;
    astore_model *model = NULL;
    CHECK(open_both(*data, length, &container_status, &model, container) == ASTORE_OK,
          "%s does not open", path);
    return model;
}

/* Scores 70 rows with special values: one call (a 64-row block, SIMD where available, then a
 * scalar tail) must equal row-by-row calls bit for bit. */
static void score_probe(const astore_model *model) {
    size_t n_in = astore_model_n_inputs(model), n_out = astore_model_n_outputs(model);
    const float specials[] = {0.0f, NAN, INFINITY, -INFINITY, 1e30f, -1e30f, 0.5f, 2.0f, -0.25f};
    size_t rows = n_in > 4096 || n_out > 4096 ? 2 : 70; /* mutated counts can be huge */
    float *x = malloc(sizeof(float) * rows * n_in);
    double *out = malloc(sizeof(double) * rows * n_out);
    double *single = malloc(sizeof(double) * n_out);
    if (x == NULL || out == NULL || single == NULL) {
        free(x);
        free(out);
        free(single);
        return;
    }
    for (size_t r = 0; r < rows; r++)
        for (size_t c = 0; c < n_in; c++) x[r * n_in + c] = specials[(r * 7 + c * 3) % 9];
    astore_error err;
    size_t first_invalid = 0;
    astore_status checked = astore_model_check_rows(model, x, rows, n_in, &first_invalid, &err);
    astore_status status = astore_model_score(model, x, rows, n_in, out, rows * n_out, 1, &err);
    if (checked == ASTORE_ERR_INPUT) { /* an input refuses NaN: scoring must refuse the rows */
        CHECK(status == ASTORE_ERR_INPUT && err.row == first_invalid,
              "scoring did not refuse row %zu that check_rows refused", first_invalid);
        status = ASTORE_ERR_INPUT;
    } else {
        CHECK(checked == ASTORE_OK && status == ASTORE_OK,
              "scoring a model that opened failed: %s", err.message);
    }
    for (size_t r = 0; status == ASTORE_OK && r < rows; r++) {
        CHECK(astore_model_score(model, x + r * n_in, 1, n_in, single, n_out, 1, &err) == ASTORE_OK,
              "single-row scoring failed");
        CHECK(memcmp(single, out + r * n_out, sizeof(double) * n_out) == 0 ||
                  (single[0] != single[0] && out[r * n_out] != out[r * n_out]),
              "row %zu: block and single-row scores differ", r);
    }
    free(x);
    free(out);
    free(single);
}

static void test_manifest(const char *dir) {
    char path[4096];
    snprintf(path, sizeof path, "%s/manifest.tsv", dir);
    FILE *manifest = fopen(path, "r");
    CHECK(manifest != NULL, "cannot open %s", path);
    if (manifest == NULL) return;
    char line[1024];
    int cases = 0;
    while (fgets(line, sizeof line, manifest)) {
        if (line[0] == '#') continue;
        char name[512], want_container[64], want_model[64];
        if (sscanf(line, "%511s %63s %63s", name, want_container, want_model) != 3) continue;
        snprintf(path, sizeof path, "%s/%s", dir, name);
        size_t length = 0;
        uint8_t *data = read_file(path, &length);
        CHECK(data != NULL, "cannot read %s", path);
        if (data == NULL) continue;
        astore_status container_status;
        astore_status model_status = open_both(data, length, &container_status, NULL, NULL);
        CHECK(strcmp(short_status(container_status), want_container) == 0,
              "%s: container status %s, expected %s", name, short_status(container_status),
              want_container);
        if (container_status == ASTORE_OK) {
            CHECK(strcmp(short_status(model_status), want_model) == 0,
                  "%s: model status %s, expected %s", name, short_status(model_status), want_model);
        }
        free(data);
        cases++;
    }
    fclose(manifest);
    CHECK(cases >= 40, "only %d corpus cases found", cases);
}

static void test_golden(const uint8_t *golden, size_t length) {
    astore_status container_status;
    astore_model *model = NULL;
    astore_container *container = NULL;
    CHECK(open_both(golden, length, &container_status, &model, &container) == ASTORE_OK,
          "golden container does not open");
    if (model != NULL) {
        score_probe(model);
        float row[3] = {0.0f, 0.0f, 0.0f};
        double out[8];
        astore_error err;
        CHECK(astore_model_n_inputs(model) == 3, "golden models take 3 inputs");
        CHECK(astore_model_score(model, row, 1, 2, out, 8, 1, &err) == ASTORE_ERR_INPUT,
              "wrong column count accepted");
        CHECK(astore_model_score(model, row, 1, 3, out, 0, 1, &err) == ASTORE_ERR_ARGUMENT,
              "short output buffer accepted");
        astore_model_close(model);
        astore_container_close(container);
    }
    for (size_t cut = 0; cut < length; cut++) {
        uint8_t *copy = malloc(cut ? cut : 1); /* exact size, so ASan sees any overread */
        memcpy(copy, golden, cut);
        CHECK(open_both(copy, cut, &container_status, NULL, NULL) != ASTORE_OK,
              "truncation to %zu bytes was accepted", cut);
        free(copy);
    }
    size_t signer_fields = length - 136 + 40; /* public key and signature start here */
    uint8_t *copy = malloc(length);
    for (size_t i = 0; i < length; i++) {
        for (int bit = 0; bit < 8; bit++) {
            memcpy(copy, golden, length);
            copy[i] ^= (uint8_t)(1u << bit);
            astore_status status = open_both(copy, length, &container_status, NULL, NULL);
            if (i < signer_fields) {
                CHECK(status != ASTORE_OK, "flip of bit %d at byte %zu was accepted", bit, i);
            } else {
                CHECK(container_status == ASTORE_OK, "flip in signer fields broke framing");
            }
        }
    }
    free(copy);
}

/* Flip bits in a payload section, fix the store key, and make sure load rejects or scoring
 * stays in bounds. Returns without checks when the golden has no such section. */
static void test_section_mutations(const uint8_t *golden, size_t length, const char *type) {
    astore_container *container = NULL;
    astore_error err;
    if (astore_container_open(golden, length, &container, &err) != ASTORE_OK) return;
    astore_section_info section;
    if (astore_container_find(container, type, &section, &err) != ASTORE_OK) {
        astore_container_close(container);
        return;
    }
    size_t begin = (size_t)section.offset, end = (size_t)(section.offset + section.length);
    astore_container_close(container);
    size_t sign_offset = length - 136;
    uint8_t *copy = malloc(length);
    int accepted = 0, rejected = 0;
    for (size_t i = begin; i < end; i++) {
        for (int pattern = 0; pattern < 4; pattern++) {
            static const uint8_t masks[4] = {0x01, 0x80, 0xFF, 0x10};
            memcpy(copy, golden, length);
            copy[i] ^= masks[pattern];
            astore_sha256(copy, sign_offset, copy + sign_offset + 8);
            astore_status container_status;
            astore_model *model = NULL;
            astore_status status = open_both(copy, length, &container_status, &model, &container);
            CHECK(container_status == ASTORE_OK, "re-keyed mutation at %zu failed framing", i);
            if (status == ASTORE_OK) {
                accepted++;
                score_probe(model);
                astore_model_close(model);
                astore_container_close(container);
            } else {
                rejected++;
            }
        }
    }
    free(copy);
    CHECK(accepted > 0 && rejected > 0, "%s mutations: %d accepted, %d rejected", type, accepted,
          rejected);
}

static void test_golden_file(const char *path) {
    size_t length = 0;
    uint8_t *golden = read_file(path, &length);
    CHECK(golden != NULL, "cannot read %s", path);
    if (golden == NULL) return;
    test_golden(golden, length);
    test_section_mutations(golden, length, "META");
    test_section_mutations(golden, length, "FRST");
    test_section_mutations(golden, length, "MLP_");
    test_section_mutations(golden, length, "XFRM");
    test_section_mutations(golden, length, "CATS");
    free(golden);
}

/* tests/golden/golden_models.py's tiny_categorical_spec as if/else: merchant codes 1, 3, 35
 * go left at tree 1's root (NaN right), channel codes 0, 2 at tree 2's (NaN left), then
 * merchant code 34 left (NaN right). A code is an integer value; anything else is in no set. */
static bool is_code(float x, float code) { return x == code; } /* NaN, fractions: never */

static double categorical_by_hand(float merchant, float amount, float channel) {
    bool m_left = is_code(merchant, 1.0f) || is_code(merchant, 3.0f) || is_code(merchant, 35.0f);
    double t1 = m_left ? 1.0 : ((amount < 100.0f || amount != amount) ? 0.25 : 0.5);
    bool c_left = channel != channel || is_code(channel, 0.0f) || is_code(channel, 2.0f);
    double t2 = c_left ? (is_code(merchant, 34.0f) ? 4.0 : 2.0) : 8.0;
    return t1 + t2;
}

static void test_categorical_scores(const char *path) {
    uint8_t *data = NULL;
    astore_container *container = NULL;
    astore_model *model = open_model_file(path, &data, &container);
    if (model != NULL) {
        const float merchants[] = {0.0f, 1.0f, 2.0f, 3.0f, 31.0f, 32.0f, 34.0f, 35.0f, 36.0f,
                                   63.0f, 64.0f, 1e9f, 1.5f, 34.5f, 35.000004f, -0.0f, -1.0f,
                                   -35.0f, INFINITY, -INFINITY, NAN};
        const float amounts[] = {0.0f, 100.0f, NAN};
        const float channels[] = {0.0f, 1.0f, 2.0f, 3.0f, 0.5f, -0.0f, -2.0f, INFINITY, NAN};
        enum { N_M = sizeof merchants / sizeof *merchants, N_A = sizeof amounts / sizeof *amounts,
               N_C = sizeof channels / sizeof *channels, N = N_M * N_A * N_C };
        static float x[N * 3];
        static double out[N], expected[N];
        size_t r = 0;
        for (size_t i = 0; i < N_M; i++)
            for (size_t j = 0; j < N_A; j++)
                for (size_t k = 0; k < N_C; k++, r++) {
                    x[3 * r] = merchants[i];
                    x[3 * r + 1] = amounts[j];
                    x[3 * r + 2] = channels[k];
                    expected[r] = categorical_by_hand(merchants[i], amounts[j], channels[k]);
                }
        astore_error err;
        CHECK(astore_model_score(model, x, N, 3, out, N, 1, &err) == ASTORE_OK,
              "categorical scoring failed: %s", err.message);
        int wrong = 0;
        for (r = 0; r < N; r++) {
            double single;
            CHECK(astore_model_score(model, x + 3 * r, 1, 3, &single, 1, 1, &err) == ASTORE_OK,
                  "single-row categorical scoring failed");
            if (out[r] != expected[r] || single != expected[r]) wrong++;
        }
        CHECK(wrong == 0, "%d of %d categorical rows scored unlike the trees by hand", wrong,
              (int)N);
        astore_model_close(model);
        astore_container_close(container);
    }
    free(data);
}

static bool input_is(const astore_model *model, size_t index, const char *name,
                     astore_missing_policy policy) {
    astore_input_info info;
    return astore_model_input(model, index, &info) == ASTORE_OK &&
           info.name_length == strlen(name) && memcmp(info.name, name, info.name_length) == 0 &&
           info.missing_policy == policy &&
           info.accepts_missing == (policy != ASTORE_MISSING_ERROR);
}

/* The golden forest with META's second input ("velocity") refusing missing values. */
static void test_missing_policy(const char *dir) {
    char path[4096];
    snprintf(path, sizeof path, "%s/input_refuses_missing.astore", dir);
    uint8_t *data = NULL;
    astore_container *container = NULL;
    astore_model *model = open_model_file(path, &data, &container);
    if (model == NULL) {
        free(data);
        return;
    }
    astore_input_info info;
    CHECK(input_is(model, 0, "amount", ASTORE_MISSING_AS_MISSING), "input 0");
    CHECK(input_is(model, 1, "velocity", ASTORE_MISSING_ERROR), "input 1");
    CHECK(input_is(model, 2, "age_days", ASTORE_MISSING_AS_MISSING), "input 2");
    CHECK(astore_model_input(model, 3, &info) == ASTORE_ERR_ARGUMENT, "input 3 exists");
    CHECK(astore_model_input(model, 0, NULL) == ASTORE_ERR_ARGUMENT, "NULL info accepted");

    /* rows 0-1 valid (a NaN where it is accepted), row 2 and 3 refused: row 2 is reported */
    const float rows[4][3] = {{0, 0, 0}, {NAN, 1, NAN}, {1, NAN, 2}, {NAN, NAN, NAN}};
    size_t first_invalid = 99;
    astore_error err;
    CHECK(astore_model_check_rows(model, &rows[0][0], 2, 3, &first_invalid, &err) == ASTORE_OK &&
              first_invalid == 2 && err.row == ASTORE_NO_ROW && err.column == ASTORE_NO_COLUMN,
          "valid rows refused: %s", err.message);
    CHECK(astore_model_check_rows(model, &rows[0][0], 4, 3, &first_invalid, &err) ==
                  ASTORE_ERR_INPUT &&
              first_invalid == 2 && err.row == 2 && err.column == 1 &&
              err.offset == UINT64_MAX,
          "row 2 not reported: first %zu, row %llu, column %u", first_invalid,
          (unsigned long long)err.row, (unsigned)err.column);
    CHECK(strcmp(err.message, "column 'velocity': missing value, and this input does not "
                              "accept missing values") == 0,
          "message: %s", err.message);
    CHECK(astore_model_check_rows(model, &rows[3][0], 1, 3, NULL, &err) == ASTORE_ERR_INPUT &&
              err.row == 0 && err.column == 1,
          "the lowest refused input of a row is reported");
    CHECK(astore_model_check_rows(model, &rows[0][0], 1, 2, &first_invalid, &err) ==
              ASTORE_ERR_INPUT && err.row == ASTORE_NO_ROW,
          "wrong column count accepted by check_rows");
    double out[4] = {-1, -1, -1, -1};
    CHECK(astore_model_score(model, &rows[0][0], 4, 3, out, 4, 1, &err) == ASTORE_ERR_INPUT &&
              err.row == 2 && err.column == 1,
          "scoring did not refuse row 2");
    CHECK(out[0] == -1 && out[1] == -1 && out[2] == -1 && out[3] == -1,
          "a refused call wrote outputs");
    CHECK(astore_model_score(model, &rows[0][0], 2, 3, out, 4, 1, &err) == ASTORE_OK &&
              err.row == ASTORE_NO_ROW && out[0] != -1 && out[1] != -1,
          "valid rows were not scored: %s", err.message);
    astore_model_close(model);
    astore_container_close(container);
    free(data);
}

static void test_api_edges(void) {
    astore_container *container = NULL;
    astore_error err;
    CHECK(astore_container_open(NULL, 10, &container, &err) == ASTORE_ERR_ARGUMENT, "NULL data");
    CHECK(astore_container_open((const uint8_t *)"", 0, &container, &err) == ASTORE_ERR_TRUNCATED,
          "empty");
    CHECK(strcmp(err.message, "file is empty") == 0, "empty message: %s", err.message);
    CHECK(astore_container_open((const uint8_t *)"x", 1, NULL, &err) == ASTORE_ERR_ARGUMENT,
          "NULL out");
    CHECK(strcmp(astore_status_name((astore_status)99), "ASTORE_ERR_UNKNOWN") == 0, "unknown name");
    for (int s = 0; s < ASTORE_STATUS_COUNT; s++) {
        CHECK(strncmp(astore_status_name((astore_status)s), "ASTORE_", 7) == 0, "status %d name", s);
    }
    uint8_t digest[32];
    astore_sha256((const uint8_t *)"abc", 3, digest);
    static const uint8_t abc[4] = {0xba, 0x78, 0x16, 0xbf}; /* FIPS 180-2 example */
    CHECK(memcmp(digest, abc, 4) == 0, "sha256(abc)");
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s GOLDEN.astore CORPUS_DIR [MORE_GOLDEN.astore ...]\n", argv[0]);
        return 2;
    }
    test_api_edges();
    test_manifest(argv[2]);
    test_missing_policy(argv[2]);
    test_golden_file(argv[1]);
    for (int i = 3; i < argc; i++) {
        test_golden_file(argv[i]);
        size_t n = strlen(argv[i]);
        static const char categorical[] = "tiny_categorical.astore";
        if (n >= sizeof categorical - 1 && strcmp(argv[i] + n - (sizeof categorical - 1), categorical) == 0) {
            test_categorical_scores(argv[i]);
        }
    }
    printf("%d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
