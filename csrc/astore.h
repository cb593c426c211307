/*
 * astore.h -- the public C API of libastore, the pyastore inference core.
 *
 * Life of a model:
 *   1. astore_container_open(): frame the bytes (header, section table, bounds of every
 *      section), compute the store key (SHA-256 of every byte before the SIGN section) and
 *      compare it with the key recorded in SIGN. No section body is interpreted yet.
 *   2. The caller verifies the Ed25519 signature over astore_container_signed_message() with
 *      the public key from astore_container_signature() (libsodium, PyNaCl, ...), and decides
 *      whether it trusts the signer. libastore itself has no cryptography beyond SHA-256.
 *   3. astore_model_open(): interpret the payload sections -- one tree ensemble (FRST) or
 *      dense network (MLP_), and the feature transforms (XFRM) when present -- checking
 *      every index and size, so that scoring needs no checks and cannot read out of bounds.
 *   4. astore_model_score(): score rows; allocates nothing, does no I/O. It refuses rows
 *      holding a missing value in an input whose META policy is "error" (checked on its
 *      own by astore_model_check_rows()); input names come from astore_model_input().
 *
 * Ownership: astore_container_open() borrows the caller's buffer (it copies it only when it
 * is not 8-byte aligned); the buffer must outlive the container and every model opened
 * from it, and must not change. Close models before their container.
 *
 * Errors: every fallible function returns an astore_status and, when `err` is not NULL,
 * fills it with the first error's status, message and byte offset in the container (and,
 * for input rows, the row and input it is about).
 *
 * Thread safety: an open container and model are immutable; any number of threads may
 * score with the same model at once.
 */
#ifndef ASTORE_H
#define ASTORE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__) || defined(__clang__)
#define ASTORE_MUST_CHECK __attribute__((warn_unused_result))
#else
#define ASTORE_MUST_CHECK
#endif

/*
 * Every status has one meaning. astore_status_name() gives its C name ("ASTORE_ERR_FORMAT"),
 * which is how the Python bindings pick the exception (pyastore.errors.STATUS_ERRORS is keyed
 * by that name, not by the number).
 */
typedef enum astore_status {
    ASTORE_OK = 0,
    /* A NULL pointer, a wrong size or count, an index out of range: a bad call. */
    ASTORE_ERR_ARGUMENT = 1,
    /* The bytes end before a structure they announce (the file was cut short). */
    ASTORE_ERR_TRUNCATED = 2,
    /* Malformed framing or section content: bad magic, overlapping sections, a tree child
     * out of range, META that is not valid msgpack or disagrees with the payload, ... */
    ASTORE_ERR_FORMAT = 3,
    /* A newer format than this library reads: an unknown major version, unknown flags in
     * the file header or a payload section's header (FRST, MLP_, XFRM), an unknown
     * critical section, an unknown signature algorithm. */
    ASTORE_ERR_VERSION = 4,
    /* The recorded store key is not the SHA-256 of the bytes before SIGN. */
    ASTORE_ERR_INTEGRITY = 5,
    /* A model feature this library cannot score, in a format it reads: an unknown
     * activation, post-transform, aggregation or transform operation, a network or
     * transform larger than this reader's limits, no scoring payload. */
    ASTORE_ERR_UNSUPPORTED = 6,
    /* An allocation failed. */
    ASTORE_ERR_NOMEM = 7,
    /* Input rows that cannot be scored: the wrong number of columns, or a missing value
     * (NaN) in an input whose META policy is "error" (err->row and err->column say where). */
    ASTORE_ERR_INPUT = 8
} astore_status;

#define ASTORE_STATUS_COUNT 9

#define ASTORE_NO_ROW UINT64_MAX    /* astore_error.row when the error is not about a row    */
#define ASTORE_NO_COLUMN UINT32_MAX /* astore_error.column when it is not about one input    */

/*
 * The caller-owned record of the first error of a call. Every fallible function resets it
 * on entry (status ASTORE_OK, offset UINT64_MAX, row ASTORE_NO_ROW, column ASTORE_NO_COLUMN,
 * empty message) and fills it at the first error only: later errors never overwrite it.
 */
typedef struct astore_error {
    astore_status status;
    uint64_t offset;   /* byte offset in the container the error refers to, or UINT64_MAX   */
    uint64_t row;      /* 0-based row of the scored buffer the error is about, or ASTORE_NO_ROW */
    uint32_t column;   /* 0-based input index the error is about, or ASTORE_NO_COLUMN        */
    char message[256]; /* NUL-terminated UTF-8 (English); names only what the record holds:
                          a row-level message names the input, never the row number       */
} astore_error;

typedef struct astore_container astore_container;
typedef struct astore_model astore_model;

typedef struct astore_section_info {
    char type[5];        /* four ASCII characters and a NUL */
    uint32_t flags;      /* ASTORE_SECTION_CRITICAL, ...      */
    uint64_t offset;     /* from the start of the container    */
    uint64_t length;     /* bytes of the body                  */
    const uint8_t *data; /* the body, inside the container     */
} astore_section_info;

/* Name of a status ("ASTORE_ERR_FORMAT", ...); "ASTORE_ERR_UNKNOWN" for other values. */
const char *astore_status_name(astore_status status);

/* Library version string, e.g. "1.0.0", and the newest format version it reads. */
const char *astore_version(void);
void astore_format_version(uint16_t *major, uint16_t *minor);

ASTORE_MUST_CHECK astore_status astore_container_open(const uint8_t *data, size_t length,
                                                      astore_container **out,
                                                      astore_error *err);
void astore_container_close(astore_container *container);

void astore_container_version(const astore_container *container, uint16_t *major,
                              uint16_t *minor);
/* The 32-byte store key, as computed (and found equal to the one recorded). */
void astore_container_store_key(const astore_container *container, uint8_t key[32]);
/* Algorithm (0 none, 1 ed25519), signer public key and signature as recorded in SIGN. */
void astore_container_signature(const astore_container *container, uint32_t *algorithm,
                                uint8_t public_key[32], uint8_t signature[64]);
/*
 * The exact message the signature covers (see docs/FORMAT.md). Writes at most `capacity`
 * bytes to `buffer` and returns the full length (call with capacity 0 to size a buffer).
 */
size_t astore_container_signed_message(const astore_container *container, uint8_t *buffer,
                                       size_t capacity);

size_t astore_container_section_count(const astore_container *container);
ASTORE_MUST_CHECK astore_status astore_container_section(const astore_container *container,
                                                         size_t index,
                                                         astore_section_info *info,
                                                         astore_error *err);
/* Finds the first section of `type` (4 characters); ASTORE_ERR_ARGUMENT when absent. */
ASTORE_MUST_CHECK astore_status astore_container_find(const astore_container *container,
                                                      const char *type,
                                                      astore_section_info *info,
                                                      astore_error *err);

/*
 * Interpret the scoring payload. The caller must have checked the signature and trust
 * first: this is the step that reads section bodies as a model.
 *
 * META is read too (bounded msgpack, docs/FORMAT.md): it must be one msgpack map with the
 * fields every reader relies on -- `name` and `created` strings, `algorithm` and
 * `score_rules` maps (with a `task` string), `inputs` and `outputs` arrays of maps with a
 * `name` string, and each input's `missing` policy ("as_missing", "impute" or "error") --
 * no two inputs may share a name (byte for byte), and `inputs`/`outputs` must have as many
 * entries as the payload has input and output columns; otherwise ASTORE_ERR_FORMAT. A
 * container without META is ASTORE_ERR_FORMAT.
 */
ASTORE_MUST_CHECK astore_status astore_model_open(const astore_container *container,
                                                  astore_model **out, astore_error *err);
void astore_model_close(astore_model *model);

/* Columns of an input row: the raw inputs (what XFRM reads, when the container has one). */
size_t astore_model_n_inputs(const astore_model *model);
size_t astore_model_n_outputs(const astore_model *model);

/*
 * How the model's trees are walked, chosen at open for this model on this CPU: "nodes" (node
 * by node) or "quickscorer" (bit vectors, for trees of at most 64 leaves), then the
 * instruction set: "-scalar", "-avx2" or "-avx512". Every walk gives the same bits. NULL for
 * a model without trees. The environment variable ASTORE_TREE_WALK, read at open, forces a
 * walk ("nodes", "quickscorer") and/or caps the instruction set ("nodes-scalar",
 * "quickscorer-avx2", ...): for diagnosis and tests, never needed to score.
 */
const char *astore_model_tree_walk(const astore_model *model);
/* Bytes the model allocated at open for its walk's derived structures. */
size_t astore_model_walk_bytes(const astore_model *model);

/* The missing-value policy of an input, from META `inputs[i].missing`. */
typedef enum astore_missing_policy {
    ASTORE_MISSING_AS_MISSING = 0, /* "as_missing": NaN is scored (trees take their default
                                      branch; an MLP propagates it)                         */
    ASTORE_MISSING_IMPUTE = 1,     /* "impute": NaN is scored; XFRM replaces it by a value   */
    ASTORE_MISSING_ERROR = 2       /* "error": a NaN in this input is refused (ASTORE_ERR_INPUT) */
} astore_missing_policy;

typedef struct astore_input_info {
    const char *name;        /* UTF-8, NOT NUL-terminated: `name_length` bytes inside the
                                container's buffer, valid while the container is open     */
    size_t name_length;
    astore_missing_policy missing_policy;
    int accepts_missing;     /* 1 when a NaN in this input is scored, 0 when it is refused */
} astore_input_info;

/*
 * Input `index` (0 .. astore_model_n_inputs() - 1, in row order) as META describes it:
 * astore_model_open() has checked META's `inputs` and `outputs` against the payload, so
 * there is one entry per column of an input row. ASTORE_ERR_ARGUMENT when `index` is out
 * of range or a pointer is NULL.
 */
ASTORE_MUST_CHECK astore_status astore_model_input(const astore_model *model, size_t index,
                                                   astore_input_info *info);

/*
 * Checks `n_rows` rows of `n_cols` float32 values (row-major, NaN = missing) against the
 * inputs' missing-value policies, exactly as astore_model_score() does before it scores.
 * ASTORE_OK with *first_invalid = n_rows when every row may be scored; otherwise
 * ASTORE_ERR_INPUT for the first row (lowest index; in it, the lowest input index) holding
 * a NaN in an input whose policy is ASTORE_MISSING_ERROR: *first_invalid and err->row are
 * that row, err->column that input, and the message names the input ("column 'age':
 * missing value, and this input does not accept missing values"). ASTORE_ERR_INPUT also
 * when n_cols is not astore_model_n_inputs(). `first_invalid` may be NULL. Reads only;
 * allocates nothing; thread-safe like scoring.
 */
ASTORE_MUST_CHECK astore_status astore_model_check_rows(const astore_model *model,
                                                        const float *x, size_t n_rows,
                                                        size_t n_cols, size_t *first_invalid,
                                                        astore_error *err);

/*
 * Score `n_rows` rows of `n_cols` float32 values (row-major, NaN = missing) into `out`,
 * which holds `out_len` doubles, at least n_rows * astore_model_n_outputs(). `n_threads`
 * is the number of worker threads (0 or 1: the calling thread only). Results do not
 * depend on n_threads, nor on the instruction set the MLP kernel uses (AVX-512, AVX or
 * 4-lane vectors, picked at astore_model_open; ASTORE_MLP_KERNEL=avx|generic in the
 * environment forces a narrower one): every output is computed by the same operations in
 * the same order. Scoring uses up to about 100 KiB of the calling thread's stack.
 *
 * The rows are first checked as astore_model_check_rows() checks them: when a row holds a
 * missing value an input refuses, the call fails with ASTORE_ERR_INPUT (err->row, err->column
 * set) and writes no output at all.
 */
ASTORE_MUST_CHECK astore_status astore_model_score(const astore_model *model, const float *x,
                                                   size_t n_rows, size_t n_cols, double *out,
                                                   size_t out_len, unsigned n_threads,
                                                   astore_error *err);

#ifdef __cplusplus
}
#endif

#endif /* ASTORE_H */
