/*
 * astore_internal.h -- shared internals of libastore: the bounds-checked little-endian
 * reader, error reporting and the container/model structs. Not installed.
 */
#ifndef ASTORE_INTERNAL_H
#define ASTORE_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "astore.h"
#include "astore_format.h"

#define ASTORE_NO_OFFSET UINT64_MAX

#if defined(__GNUC__) || defined(__clang__)
#define ASTORE_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))
#else
#define ASTORE_PRINTF(fmt, args)
#endif

/* Records the first error only (first error wins) and returns its status. */
astore_status astore_fail(astore_error *err, astore_status status, uint64_t offset,
                          const char *format, ...) ASTORE_PRINTF(4, 5);

/*
 * A read cursor over [data, data + length) that always knows how many bytes are left.
 * `base` is the offset of data[0] in the container, for error messages.
 */
typedef struct astore_cursor {
    const uint8_t *data;
    size_t length;
    size_t position;
    uint64_t base;
} astore_cursor;

static inline astore_cursor astore_cursor_make(const uint8_t *data, size_t length,
                                               uint64_t base) {
    astore_cursor cursor = {data, length, 0, base};
    return cursor;
}

static inline size_t astore_cursor_left(const astore_cursor *cursor) {
    return cursor->length - cursor->position;
}

static inline uint64_t astore_cursor_offset(const astore_cursor *cursor) {
    return cursor->base + cursor->position;
}

ASTORE_MUST_CHECK bool astore_read_bytes(astore_cursor *cursor, void *out, size_t count);
ASTORE_MUST_CHECK bool astore_read_u16(astore_cursor *cursor, uint16_t *out);
ASTORE_MUST_CHECK bool astore_read_u32(astore_cursor *cursor, uint32_t *out);
ASTORE_MUST_CHECK bool astore_read_u64(astore_cursor *cursor, uint64_t *out);
ASTORE_MUST_CHECK bool astore_read_f32(astore_cursor *cursor, float *out);
ASTORE_MUST_CHECK bool astore_read_f64(astore_cursor *cursor, double *out);

static inline uint32_t astore_load_u32le(const uint8_t *p) {
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
           ((uint32_t)p[3] << 24);
}

static inline bool astore_host_is_little_endian(void) {
    const uint16_t probe = 1;
    return *(const uint8_t *)&probe == 1;
}

typedef struct astore_section {
    char type[5];
    uint32_t flags;
    uint64_t offset;
    uint64_t length;
} astore_section;

struct astore_container {
    const uint8_t *data; /* the bytes: the caller's, or `owned_copy` */
    size_t length;
    uint8_t *owned_copy; /* a copy made only when the caller's buffer was misaligned */
    uint16_t format_major;
    uint16_t format_minor;
    size_t section_count;
    astore_section sections[ASTORE_MAX_SECTIONS];
    uint8_t store_key[32];
    uint32_t signature_algorithm;
    uint8_t public_key[32];
    uint8_t signature[64];
};

/* A validated tree ensemble; arrays point into the container or into `owned`. */
typedef struct astore_forest {
    uint32_t n_trees;
    uint32_t n_nodes_total; /* split nodes of all trees */
    uint32_t n_features;
    uint32_t n_outputs;
    uint32_t leaf_width;
    uint32_t post_transform;
    uint32_t aggregation;
    const astore_tree_entry *trees;
    const astore_tree_node *nodes;
    const float *leaves;
    const double *base_score;
    void *owned; /* decoded arrays when they could not be used in place */
} astore_forest;

ASTORE_MUST_CHECK astore_status astore_forest_load(const astore_container *container,
                                                   const astore_section *section,
                                                   astore_forest *forest, astore_error *err);
void astore_forest_release(astore_forest *forest);
void astore_forest_score_rows(const astore_forest *forest, const float *x, size_t n_rows,
                              size_t n_cols, double *out);

/* One validated dense layer; arrays point into the container or into astore_mlp.owned. */
typedef struct astore_dense {
    uint32_t n_in;
    uint32_t n_out;
    uint32_t activation; /* ASTORE_ACTIVATION_* */
    float alpha;
    const float *weights; /* [n_out][n_in] */
    const float *bias;    /* [n_out]        */
} astore_dense;

/* A validated MLP_ section (mlp.c). */
typedef struct astore_mlp astore_mlp;
struct astore_mlp {
    uint32_t n_layers;
    uint32_t n_features;
    uint32_t n_outputs;
    uint32_t max_width;  /* the widest layer input or output                           */
    uint32_t lanes;      /* rows per vector of the widest kernel for this CPU           */
    uint32_t block_rows; /* rows scored together: a multiple of `lanes`; block_rows *
                            max_width fits the stack scratch of astore_mlp_score_rows  */
    /* kernels: all layers on a [feature][row] block (mlp.c); `forward` is the widest for
     * this CPU, `forward_narrow` (`narrow_lanes` rows per vector) serves small blocks */
    float *(*forward)(const astore_mlp *mlp, float *a, float *b, size_t lanes);
    float *(*forward_narrow)(const astore_mlp *mlp, float *a, float *b, size_t lanes);
    uint32_t narrow_lanes;
    const astore_dense *layers;
    void *owned; /* the layer table, and the decoded arrays when not used in place */
};

ASTORE_MUST_CHECK astore_status astore_mlp_load(const astore_container *container,
                                                const astore_section *section, astore_mlp *mlp,
                                                astore_error *err);
void astore_mlp_release(astore_mlp *mlp);
/* Scores n_rows rows of mlp->n_features floats (row-major) into n_rows * n_outputs doubles. */
void astore_mlp_score_rows(const astore_mlp *mlp, const float *x, size_t n_rows, double *out);

/* A validated XFRM section (transform.c), always decoded into `columns` (it is small). */
typedef struct astore_transform {
    uint32_t n_inputs;
    uint32_t n_columns;
    astore_xfrm_column *columns; /* owned */
} astore_transform;

ASTORE_MUST_CHECK astore_status astore_transform_load(const astore_container *container,
                                                      const astore_section *section,
                                                      astore_transform *transform,
                                                      astore_error *err);
void astore_transform_release(astore_transform *transform);
/* Raw rows (n_rows x n_inputs) -> model rows (n_rows x n_columns), both row-major float32. */
void astore_transform_rows(const astore_transform *transform, const float *x, size_t n_rows,
                           float *out);

#endif /* ASTORE_INTERNAL_H */
