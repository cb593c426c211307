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

/* Resets `err` (when not NULL) to "no error": what every public entry point does first. */
void astore_error_reset(astore_error *err);

/* Records the first error only (first error wins) and returns its status. */
astore_status astore_fail(astore_error *err, astore_status status, uint64_t offset,
                          const char *format, ...) ASTORE_PRINTF(4, 5);

/* astore_fail for an error about one cell of the scored rows: also sets row and column. */
astore_status astore_fail_cell(astore_error *err, astore_status status, uint64_t row,
                               uint32_t column, const char *format, ...) ASTORE_PRINTF(5, 6);

/* True when all `count` bytes are zero: the check of every reserved field. */
static inline bool astore_all_zero(const uint8_t *bytes, size_t count) {
    for (size_t i = 0; i < count; i++) {
        if (bytes[i] != 0) return false;
    }
    return true;
}

/* The first multiple of ASTORE_ALIGN at or after `value` (value < 2^63). */
static inline uint64_t astore_align_up(uint64_t value) {
    return (value + (ASTORE_ALIGN - 1)) / ASTORE_ALIGN * ASTORE_ALIGN;
}

/* `count` bytes as lowercase hex into `out` (2 * count + 1 chars, NUL-terminated). */
void astore_to_hex(const uint8_t *bytes, size_t count, char *out);

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

/* How a forest's trees are walked, chosen at load (astore_forest_load): node by node, or by
 * bit vectors (quickscorer.c) for trees of at most 64 leaves; and the widest instruction set
 * the walk may use on this CPU. Every choice gives the same bits. */
typedef enum astore_tree_walk {
    ASTORE_WALK_NODES = 0,
    ASTORE_WALK_QUICKSCORER = 1,
    ASTORE_WALK_QUICKSCORER_NODES = 2 /* bit vectors above depth 6, then nodes (deep trees) */
} astore_tree_walk;

typedef enum astore_tree_isa {
    ASTORE_ISA_SCALAR = 0,
    ASTORE_ISA_AVX2 = 1,
    ASTORE_ISA_AVX512 = 2,
    ASTORE_ISA_NEON = 3 /* aarch64: the bit-vector walk's 4-row groups; node walks scalar */
} astore_tree_isa;

typedef struct astore_quickscorer astore_quickscorer;

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
    uint32_t n_sets; /* categorical splits (CATS); 0 for a forest of numeric splits only */
    const astore_category_set *sets;
    const uint32_t *set_words;
    void *owned; /* decoded arrays when they could not be used in place */
    void *owned_sets; /* decoded CATS arrays, likewise */
    astore_tree_walk walk;
    astore_tree_isa isa;
    astore_quickscorer *quickscorer; /* derived at load when walk is ASTORE_WALK_QUICKSCORER */
    uint64_t *packed; /* 8-byte nodes of the AVX-512 node walk, derived at load (forest.c) */
    uint32_t *padded_words; /* the AVX2 walk's copy of every set, each padded_width words */
    uint32_t padded_width;
} astore_forest;

/* `cats`: the CATS section, NULL when the container has none. */
ASTORE_MUST_CHECK astore_status astore_forest_load(const astore_container *container,
                                                   const astore_section *section,
                                                   const astore_section *cats,
                                                   astore_forest *forest, astore_error *err);
void astore_forest_release(astore_forest *forest);
void astore_forest_score_rows(const astore_forest *forest, const float *x, size_t n_rows,
                              size_t n_cols, double *out);
/* "nodes" or "quickscorer", then "-scalar", "-avx2" or "-avx512": the walk scoring uses. */
const char *astore_forest_walk_name(const astore_forest *forest);
/* Bytes allocated at load for the walk's derived structures (0 for the node walk). */
size_t astore_forest_walk_bytes(const astore_forest *forest);

/* quickscorer.c: the bit-vector walk, for forests whose trees have at most 64 leaves. */
bool astore_qs_applies(const astore_forest *forest);
/* Whether the per-feature lists stay within a few times the forest's own size. */
bool astore_qs_lists_fit(const astore_forest *forest);
/* cut: the depth at which trees of more than 64 leaves are cut (their nodes there are walked
 * on by nodes: astore_forest_walk_on); UINT32_MAX when every tree has at most 64 leaves. */
ASTORE_MUST_CHECK astore_status astore_qs_build(const astore_forest *forest, uint32_t cut,
                                                astore_quickscorer **out, astore_error *err);
/* Whether this CPU has what the 64-row transposed walk needs (AVX-512 BW/VL/CD, VBMI, GFNI). */
bool astore_qs_transposed_cpu(void);
/* The node walk of tree t for a block of 64 rows from the positions in pos (a split node of
 * the tree, or LEAF_TAG | leaf), to LEAF_TAG | leaf for every row. */
void astore_forest_walk_on(const astore_forest *forest, uint32_t t, const float *rows,
                           size_t n_cols, uint32_t *pos);
void astore_qs_release(astore_quickscorer *qs);
size_t astore_qs_bytes(const astore_quickscorer *qs);
/* Adds every tree's exit leaf into acc (n_rows x n_outputs, zeroed) for the first rows (all
 * of them without a vector path, else whole vector groups); returns how many. No
 * post-transform. */
size_t astore_qs_score_rows(const astore_forest *forest, const float *x, size_t n_rows,
                            size_t n_cols, double *acc);

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

/* ---- META (meta.c): a bounded MessagePack reader and the fields scoring relies on ---- */

/* Containers (arrays and maps) open at once at most, as msgpack-python's unpacker allows. */
#define ASTORE_MSGPACK_MAX_DEPTH 1024

typedef enum astore_msgpack_kind {
    ASTORE_MSGPACK_NIL,
    ASTORE_MSGPACK_BOOL,
    ASTORE_MSGPACK_INT, /* positive and negative fixint, uint8..64, int8..64 */
    ASTORE_MSGPACK_FLOAT,
    ASTORE_MSGPACK_STR,
    ASTORE_MSGPACK_BIN,
    ASTORE_MSGPACK_EXT,
    ASTORE_MSGPACK_ARRAY,
    ASTORE_MSGPACK_MAP
} astore_msgpack_kind;

/* One msgpack item: a scalar whole, or the header of an array or map. */
typedef struct astore_msgpack_item {
    astore_msgpack_kind kind;
    uint64_t offset;     /* of the item's first byte, in the container                    */
    uint32_t count;      /* STR/BIN/EXT: bytes of data; ARRAY: items; MAP: key/value pairs  */
    const uint8_t *data; /* STR/BIN/EXT: the `count` bytes, inside the cursor's buffer      */
} astore_msgpack_item;

/*
 * Reads one item at the cursor: a scalar with its data (strings checked to be UTF-8 as
 * Python decodes it, extension types checked as msgpack-python does), or only the
 * header of an array or map, whose elements follow. Every length is checked against the
 * bytes left, and an array or map can announce no more elements than bytes are left. Any
 * malformation is ASTORE_ERR_FORMAT with the offset of the item.
 */
ASTORE_MUST_CHECK astore_status astore_msgpack_read(astore_cursor *cursor,
                                                    astore_msgpack_item *item,
                                                    astore_error *err);

/*
 * Skips one whole value (nested arrays and maps included, without recursion), checking it
 * as astore_msgpack_read checks each item, that map keys are strings or binary (as
 * msgpack-python's strict_map_key requires), and that at most ASTORE_MSGPACK_MAX_DEPTH
 * containers are open at once, counting the `open` ones around the value.
 */
ASTORE_MUST_CHECK astore_status astore_msgpack_skip(astore_cursor *cursor, unsigned open,
                                                    astore_error *err);

/* What astore_model_open takes from META: one record per input, the output count. */
typedef struct astore_meta {
    size_t n_inputs;
    size_t n_outputs;
    uint64_t inputs_offset;   /* of the `inputs` array, for messages  */
    uint64_t outputs_offset;  /* of the `outputs` array, for messages */
    astore_input_info *inputs; /* owned; names point into the parsed bytes */
    uint32_t *refused;        /* owned: the inputs whose policy is ASTORE_MISSING_ERROR */
    size_t n_refused;
} astore_meta;

/*
 * Parses a META body of `length` bytes at container offset `base` (docs/FORMAT.md): exactly
 * one valid msgpack value (no trailing bytes), a map holding the fields listed at
 * astore_model_open in astore.h. ASTORE_ERR_FORMAT (or NOMEM) otherwise; `meta` is then
 * left empty. Release with astore_meta_release.
 */
ASTORE_MUST_CHECK astore_status astore_meta_parse(const uint8_t *body, size_t length,
                                                  uint64_t base, astore_meta *meta,
                                                  astore_error *err);
void astore_meta_release(astore_meta *meta);

/* A name (UTF-8, `length` bytes) for a message: at most ASTORE_QUOTED_NAME_SIZE - 4 bytes,
 * cut between UTF-8 characters so the message stays UTF-8, then "..." when cut; NUL-ended. */
#define ASTORE_QUOTED_NAME_SIZE 52
void astore_quote_name(const char *name, size_t length, char out[ASTORE_QUOTED_NAME_SIZE]);

#endif /* ASTORE_INTERNAL_H */
