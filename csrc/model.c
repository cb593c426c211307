/*
 * model.c -- a scoring model opened from a framed container, and batch scoring with
 * optional worker threads. Each thread scores a contiguous range of rows into its own
 * slice of the caller's output, so threads never share a cache line they write to except
 * at range edges, and the result is the same for any thread count.
 */
#include <stdlib.h>
#include <string.h>

#ifndef ASTORE_NO_THREADS
#include <pthread.h>
#endif

#include "astore_internal.h"

#define MAX_THREADS 64
#define MIN_ROWS_PER_THREAD 256

struct astore_model {
    astore_forest forest;
};

astore_status astore_model_open(const astore_container *container, astore_model **out,
                                astore_error *err) {
    if (err != NULL) {
        err->status = ASTORE_OK;
        err->offset = ASTORE_NO_OFFSET;
        err->message[0] = '\0';
    }
    if (container == NULL || out == NULL) {
        return astore_fail(err, ASTORE_ERR_ARGUMENT, ASTORE_NO_OFFSET, "NULL argument");
    }
    *out = NULL;
    const astore_section *forest_section = NULL;
    for (size_t i = 0; i < container->section_count; i++) {
        if (memcmp(container->sections[i].type, ASTORE_SECTION_FOREST, 4) == 0) {
            forest_section = &container->sections[i];
        }
    }
    if (forest_section == NULL) {
        return astore_fail(err, ASTORE_ERR_UNSUPPORTED, ASTORE_NO_OFFSET,
                           "the container has no scoring payload this library reads (FRST)");
    }
    astore_model *model = calloc(1, sizeof *model);
    if (model == NULL) return astore_fail(err, ASTORE_ERR_NOMEM, ASTORE_NO_OFFSET, "out of memory");
    astore_status status = astore_forest_load(container, forest_section, &model->forest, err);
    if (status != ASTORE_OK) {
        free(model);
        return status;
    }
    *out = model;
    return ASTORE_OK;
}

void astore_model_close(astore_model *model) {
    if (model == NULL) return;
    astore_forest_release(&model->forest);
    free(model);
}

size_t astore_model_n_inputs(const astore_model *model) { return model->forest.n_features; }

size_t astore_model_n_outputs(const astore_model *model) { return model->forest.n_outputs; }

typedef struct score_job {
    const astore_forest *forest;
    const float *x;
    size_t n_rows;
    size_t n_cols;
    double *out;
} score_job;

#ifndef ASTORE_NO_THREADS
static void *score_job_run(void *argument) {
    score_job *job = argument;
    astore_forest_score_rows(job->forest, job->x, job->n_rows, job->n_cols, job->out);
    return NULL;
}
#endif

astore_status astore_model_score(const astore_model *model, const float *x, size_t n_rows,
                                 size_t n_cols, double *out, size_t out_len,
                                 unsigned n_threads, astore_error *err) {
    if (err != NULL) {
        err->status = ASTORE_OK;
        err->offset = ASTORE_NO_OFFSET;
        err->message[0] = '\0';
    }
    if (model == NULL || (n_rows > 0 && (x == NULL || out == NULL))) {
        return astore_fail(err, ASTORE_ERR_ARGUMENT, ASTORE_NO_OFFSET, "NULL argument");
    }
    const astore_forest *f = &model->forest;
    if (n_cols != f->n_features) {
        return astore_fail(err, ASTORE_ERR_INPUT, ASTORE_NO_OFFSET,
                           "rows have %zu columns, the model takes %u", n_cols,
                           (unsigned)f->n_features);
    }
    if (n_rows > SIZE_MAX / (f->n_outputs > n_cols ? f->n_outputs : n_cols) ||
        out_len / f->n_outputs < n_rows) {
        return astore_fail(err, ASTORE_ERR_ARGUMENT, ASTORE_NO_OFFSET,
                           "output buffer of %zu values is too small for %zu rows x %u outputs",
                           out_len, n_rows, (unsigned)f->n_outputs);
    }
    if (n_rows == 0) return ASTORE_OK;
#ifndef ASTORE_NO_THREADS
    if (n_threads > MAX_THREADS) n_threads = MAX_THREADS;
    if (n_threads > 1 && n_rows >= 2 * MIN_ROWS_PER_THREAD) {
        size_t max_useful = n_rows / MIN_ROWS_PER_THREAD;
        unsigned workers = n_threads < max_useful ? n_threads : (unsigned)max_useful;
        score_job jobs[MAX_THREADS];
        pthread_t threads[MAX_THREADS];
        size_t per_thread = (n_rows + workers - 1) / workers;
        unsigned started = 0;
        for (unsigned t = 0; t < workers; t++) {
            size_t begin = (size_t)t * per_thread;
            if (begin >= n_rows) break;
            size_t count = n_rows - begin < per_thread ? n_rows - begin : per_thread;
            jobs[t] = (score_job){f, x + begin * n_cols, count, n_cols, out + begin * f->n_outputs};
            if (t == 0) continue; /* the calling thread takes the first range */
            if (pthread_create(&threads[t], NULL, score_job_run, &jobs[t]) != 0) {
                /* could not start a thread: score its range on this one */
                score_job_run(&jobs[t]);
                threads[t] = pthread_self();
                jobs[t].n_rows = 0;
            }
            started = t + 1;
        }
        score_job_run(&jobs[0]);
        for (unsigned t = 1; t < started; t++) {
            if (jobs[t].n_rows != 0) pthread_join(threads[t], NULL);
        }
        return ASTORE_OK;
    }
#else
    (void)n_threads;
#endif
    astore_forest_score_rows(f, x, n_rows, n_cols, out);
    return ASTORE_OK;
}
