/*
 * model.c -- a scoring model opened from a framed container, and batch scoring with
 * optional worker threads. A container holds exactly one payload, a tree ensemble (FRST)
 * or a dense network (MLP_), optionally preceded by feature transforms (XFRM): raw rows are
 * then transformed block by block into a stack buffer that the payload reads.
 *
 * Opening reads META first (its structure, meta.c), then the payload, then checks that META
 * describes as many inputs and outputs as the payload has: the order in which pyastore's
 * load reports problems. Scoring first checks the rows against the inputs' missing-value
 * policies, so a row an input refuses is never scored.
 *
 * Each thread scores a contiguous range of rows into its own slice of the caller's output,
 * so threads never share a cache line they write to except at range edges, and the result
 * is the same for any thread count.
 */
#include <stdlib.h>
#include <string.h>

#ifndef ASTORE_NO_THREADS
#include <pthread.h>
#endif

#include "astore_internal.h"

#define MAX_THREADS 64
#define MIN_ROWS_PER_THREAD 256
#define TRANSFORM_SCRATCH_FLOATS ASTORE_XFRM_MAX_COLUMNS /* 16 KiB on the stack */
#define TRANSFORM_MAX_BLOCK_ROWS 256
#define WORKER_STACK_BYTES (1u << 20) /* scoring uses < 128 KiB of stack; some libcs give less */

enum payload_kind { PAYLOAD_FOREST, PAYLOAD_MLP };

struct astore_model {
    enum payload_kind kind;
    astore_forest forest;
    astore_mlp mlp;
    astore_meta meta;
    bool has_transform;
    astore_transform transform;
    size_t transform_block_rows;
    size_t n_inputs;   /* raw columns the caller passes  */
    size_t n_features; /* columns the payload reads      */
    size_t n_outputs;
};

static const astore_section *find_section(const astore_container *container, const char *type) {
    for (size_t i = 0; i < container->section_count; i++) {
        if (memcmp(container->sections[i].type, type, 4) == 0) return &container->sections[i];
    }
    return NULL;
}

static void model_release(astore_model *model) {
    astore_meta_release(&model->meta);
    astore_forest_release(&model->forest);
    astore_mlp_release(&model->mlp);
    astore_transform_release(&model->transform);
}

/* META's structure: one valid msgpack map with the fields every reader relies on. */
static astore_status open_meta(const astore_container *container, astore_meta *meta,
                               astore_error *err) {
    const astore_section *section = find_section(container, ASTORE_SECTION_META);
    if (section == NULL) {
        return astore_fail(err, ASTORE_ERR_FORMAT, ASTORE_NO_OFFSET,
                           "the container has no META section");
    }
    return astore_meta_parse(container->data + section->offset, (size_t)section->length,
                             section->offset, meta, err);
}

/* The one payload (FRST or MLP_): model->kind, n_features, n_outputs. */
static astore_status open_payload(const astore_container *container, astore_model *model,
                                  astore_error *err) {
    const astore_section *forest_section = find_section(container, ASTORE_SECTION_FOREST);
    const astore_section *mlp_section = find_section(container, ASTORE_SECTION_MLP);
    const astore_section *cats = find_section(container, ASTORE_SECTION_CATEGORY_SETS);
    if (cats != NULL && forest_section == NULL) {
        return astore_fail(err, ASTORE_ERR_FORMAT, cats->offset,
                           "the container has a CATS section but no FRST whose categorical "
                           "splits it serves");
    }
    if (forest_section == NULL && mlp_section == NULL) {
        return astore_fail(err, ASTORE_ERR_UNSUPPORTED, ASTORE_NO_OFFSET,
                           "the container has no scoring payload this library reads (FRST or "
                           "MLP_)");
    }
    if (forest_section != NULL && mlp_section != NULL) {
        return astore_fail(err, ASTORE_ERR_FORMAT, mlp_section->offset,
                           "the container holds two payloads (FRST and MLP_); it must hold one");
    }
    astore_status status;
    if (forest_section != NULL) {
        model->kind = PAYLOAD_FOREST;
        status = astore_forest_load(container, forest_section, cats, &model->forest, err);
        model->n_features = model->forest.n_features;
        model->n_outputs = model->forest.n_outputs;
    } else {
        model->kind = PAYLOAD_MLP;
        status = astore_mlp_load(container, mlp_section, &model->mlp, err);
        model->n_features = model->mlp.n_features;
        model->n_outputs = model->mlp.n_outputs;
    }
    model->n_inputs = model->n_features;
    return status;
}

/* The optional XFRM: it must make exactly the columns the payload reads. */
static astore_status open_transform(const astore_container *container, astore_model *model,
                                    astore_error *err) {
    const astore_section *section = find_section(container, ASTORE_SECTION_TRANSFORM);
    if (section == NULL) return ASTORE_OK;
    astore_status status = astore_transform_load(container, section, &model->transform, err);
    if (status != ASTORE_OK) return status;
    if (model->transform.n_columns != model->n_features) {
        return astore_fail(err, ASTORE_ERR_FORMAT, section->offset + 4,
                           "XFRM makes %u columns but the payload reads %zu",
                           (unsigned)model->transform.n_columns, model->n_features);
    }
    size_t rows = TRANSFORM_SCRATCH_FLOATS / model->n_features;
    if (rows > TRANSFORM_MAX_BLOCK_ROWS) rows = TRANSFORM_MAX_BLOCK_ROWS;
    if (rows > 64) rows -= rows % 64; /* whole payload blocks */
    model->has_transform = true;
    model->transform_block_rows = rows;
    model->n_inputs = model->transform.n_inputs;
    return ASTORE_OK;
}

/* META's `inputs` and `outputs` describe the columns the model takes and gives. */
static astore_status check_meta_agrees(const astore_model *model, astore_error *err) {
    if (model->meta.n_inputs != model->n_inputs) {
        return astore_fail(err, ASTORE_ERR_FORMAT, model->meta.inputs_offset,
                           "META lists %zu inputs, the payload reads %zu", model->meta.n_inputs,
                           model->n_inputs);
    }
    if (model->meta.n_outputs != model->n_outputs) {
        return astore_fail(err, ASTORE_ERR_FORMAT, model->meta.outputs_offset,
                           "META lists %zu outputs, the payload writes %zu",
                           model->meta.n_outputs, model->n_outputs);
    }
    return ASTORE_OK;
}

astore_status astore_model_open(const astore_container *container, astore_model **out,
                                astore_error *err) {
    astore_error_reset(err);
    if (container == NULL || out == NULL) {
        return astore_fail(err, ASTORE_ERR_ARGUMENT, ASTORE_NO_OFFSET, "NULL argument");
    }
    *out = NULL;
    astore_model *model = calloc(1, sizeof *model);
    if (model == NULL) return astore_fail(err, ASTORE_ERR_NOMEM, ASTORE_NO_OFFSET, "out of memory");
    astore_status status = open_meta(container, &model->meta, err);
    if (status == ASTORE_OK) status = open_payload(container, model, err);
    if (status == ASTORE_OK) status = open_transform(container, model, err);
    if (status == ASTORE_OK) status = check_meta_agrees(model, err);
    if (status != ASTORE_OK) {
        model_release(model);
        free(model);
        return status;
    }
    *out = model;
    return ASTORE_OK;
}

void astore_model_close(astore_model *model) {
    if (model == NULL) return;
    model_release(model);
    free(model);
}

size_t astore_model_n_inputs(const astore_model *model) { return model->n_inputs; }

size_t astore_model_n_outputs(const astore_model *model) { return model->n_outputs; }

const char *astore_model_tree_walk(const astore_model *model) {
    return model->kind == PAYLOAD_FOREST ? astore_forest_walk_name(&model->forest) : NULL;
}

size_t astore_model_walk_bytes(const astore_model *model) {
    return model->kind == PAYLOAD_FOREST ? astore_forest_walk_bytes(&model->forest) : 0;
}

astore_status astore_model_input(const astore_model *model, size_t index,
                                 astore_input_info *info) {
    if (model == NULL || info == NULL || index >= model->meta.n_inputs) {
        return ASTORE_ERR_ARGUMENT;
    }
    *info = model->meta.inputs[index];
    return ASTORE_OK;
}

/* The first row (then input) with a NaN an input refuses; n_rows when there is none. */
static size_t find_refused_missing(const astore_model *model, const float *x, size_t n_rows,
                                   uint32_t *column) {
    const size_t n_cols = model->n_inputs, n_refused = model->meta.n_refused;
    const uint32_t *refused = model->meta.refused;
    if (n_refused == 0) return n_rows;
    for (size_t r = 0; r < n_rows; r++) {
        const float *row = x + r * n_cols;
        for (size_t k = 0; k < n_refused; k++) {
            if (row[refused[k]] != row[refused[k]]) {
                *column = refused[k];
                return r;
            }
        }
    }
    return n_rows;
}

/* The shared argument checks of scoring and row checking. */
static astore_status check_shape(const astore_model *model, const float *x, size_t n_rows,
                                 size_t n_cols, astore_error *err) {
    if (model == NULL || (n_rows > 0 && x == NULL)) {
        return astore_fail(err, ASTORE_ERR_ARGUMENT, ASTORE_NO_OFFSET, "NULL argument");
    }
    if (n_cols != model->n_inputs) {
        return astore_fail(err, ASTORE_ERR_INPUT, ASTORE_NO_OFFSET,
                           "rows have %zu columns, the model takes %zu", n_cols,
                           model->n_inputs);
    }
    if (n_cols > 0 && n_rows > SIZE_MAX / n_cols) {
        return astore_fail(err, ASTORE_ERR_ARGUMENT, ASTORE_NO_OFFSET,
                           "%zu rows of %zu columns do not fit in memory", n_rows, n_cols);
    }
    return ASTORE_OK;
}

static astore_status check_rows(const astore_model *model, const float *x, size_t n_rows,
                                size_t *first_invalid, astore_error *err) {
    uint32_t column = 0;
    size_t row = find_refused_missing(model, x, n_rows, &column);
    if (first_invalid != NULL) *first_invalid = row;
    if (row == n_rows) return ASTORE_OK;
    const astore_input_info *input = &model->meta.inputs[column];
    char quoted[ASTORE_QUOTED_NAME_SIZE];
    astore_quote_name(input->name, input->name_length, quoted);
    return astore_fail_cell(err, ASTORE_ERR_INPUT, row, column,
                            "column '%s': missing value, and this input does not accept "
                            "missing values",
                            quoted);
}

astore_status astore_model_check_rows(const astore_model *model, const float *x, size_t n_rows,
                                      size_t n_cols, size_t *first_invalid, astore_error *err) {
    astore_error_reset(err);
    if (first_invalid != NULL) *first_invalid = n_rows;
    astore_status status = check_shape(model, x, n_rows, n_cols, err);
    if (status != ASTORE_OK) return status;
    return check_rows(model, x, n_rows, first_invalid, err);
}

/* Rows of model columns (already transformed, or raw without XFRM) into outputs. */
static void score_payload(const astore_model *model, const float *x, size_t n_rows,
                          double *out) {
    if (model->kind == PAYLOAD_FOREST) {
        astore_forest_score_rows(&model->forest, x, n_rows, model->n_features, out);
    } else {
        astore_mlp_score_rows(&model->mlp, x, n_rows, out);
    }
}

/* Raw rows into outputs: through the transform, one stack block at a time, when there is one. */
static void score_rows(const astore_model *model, const float *x, size_t n_rows, double *out) {
    if (!model->has_transform) {
        score_payload(model, x, n_rows, out);
        return;
    }
    float block[TRANSFORM_SCRATCH_FLOATS];
    const size_t step = model->transform_block_rows;
    for (size_t start = 0; start < n_rows; start += step) {
        size_t count = n_rows - start < step ? n_rows - start : step;
        astore_transform_rows(&model->transform, x + start * model->n_inputs, count, block);
        score_payload(model, block, count, out + start * model->n_outputs);
    }
}

typedef struct score_job {
    const astore_model *model;
    const float *x;
    size_t n_rows;
    double *out;
} score_job;

#ifndef ASTORE_NO_THREADS
static void *score_job_run(void *argument) {
    score_job *job = argument;
    score_rows(job->model, job->x, job->n_rows, job->out);
    return NULL;
}
#endif

#ifndef ASTORE_NO_THREADS
/* n_rows split into contiguous ranges, one per thread (2 .. n_threads of them, each of at
 * least MIN_ROWS_PER_THREAD rows); the calling thread scores the first. */
static void score_in_threads(const astore_model *model, const float *x, size_t n_rows,
                             double *out, unsigned n_threads) {
    size_t max_useful = n_rows / MIN_ROWS_PER_THREAD;
    unsigned workers = n_threads < max_useful ? n_threads : (unsigned)max_useful;
    score_job jobs[MAX_THREADS];
    pthread_t threads[MAX_THREADS];
    size_t per_thread = (n_rows + workers - 1) / workers;
    unsigned started = 0;
    pthread_attr_t attr;
    bool have_attr = pthread_attr_init(&attr) == 0;
    if (have_attr && pthread_attr_setstacksize(&attr, WORKER_STACK_BYTES) != 0) {
        pthread_attr_destroy(&attr);
        have_attr = false;
    }
    for (unsigned t = 0; t < workers; t++) {
        size_t begin = (size_t)t * per_thread;
        if (begin >= n_rows) break;
        size_t count = n_rows - begin < per_thread ? n_rows - begin : per_thread;
        jobs[t] = (score_job){model, x + begin * model->n_inputs, count,
                              out + begin * model->n_outputs};
        if (t == 0) continue; /* the calling thread takes the first range */
        if (pthread_create(&threads[t], have_attr ? &attr : NULL, score_job_run,
                           &jobs[t]) != 0) {
            /* could not start a thread: score its range on this one */
            score_job_run(&jobs[t]);
            threads[t] = pthread_self();
            jobs[t].n_rows = 0;
        }
        started = t + 1;
    }
    if (have_attr) pthread_attr_destroy(&attr);
    score_job_run(&jobs[0]);
    for (unsigned t = 1; t < started; t++) {
        if (jobs[t].n_rows != 0) pthread_join(threads[t], NULL);
    }
}
#endif

astore_status astore_model_score(const astore_model *model, const float *x, size_t n_rows,
                                 size_t n_cols, double *out, size_t out_len,
                                 unsigned n_threads, astore_error *err) {
    astore_error_reset(err);
    astore_status status = check_shape(model, x, n_rows, n_cols, err);
    if (status != ASTORE_OK) return status;
    if (n_rows > 0 && out == NULL) {
        return astore_fail(err, ASTORE_ERR_ARGUMENT, ASTORE_NO_OFFSET, "NULL argument");
    }
    const size_t n_outputs = model->n_outputs;
    if (n_rows > SIZE_MAX / (n_outputs > n_cols ? n_outputs : n_cols) ||
        out_len / n_outputs < n_rows) {
        return astore_fail(err, ASTORE_ERR_ARGUMENT, ASTORE_NO_OFFSET,
                           "output buffer of %zu values is too small for %zu rows x %zu outputs",
                           out_len, n_rows, n_outputs);
    }
    status = check_rows(model, x, n_rows, NULL, err);
    if (status != ASTORE_OK) return status;
    if (n_rows == 0) return ASTORE_OK;
#ifndef ASTORE_NO_THREADS
    if (n_threads > MAX_THREADS) n_threads = MAX_THREADS;
    if (n_threads > 1 && n_rows >= 2 * MIN_ROWS_PER_THREAD) {
        score_in_threads(model, x, n_rows, out, n_threads);
        return ASTORE_OK;
    }
#else
    (void)n_threads;
#endif
    score_rows(model, x, n_rows, out);
    return ASTORE_OK;
}
