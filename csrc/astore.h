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
 *   4. astore_model_score(): score rows; allocates nothing, does no I/O.
 *
 * Ownership: astore_container_open() borrows the caller's buffer (it copies it only when it
 * is not 8-byte aligned); the buffer must outlive the container and every model opened
 * from it, and must not change. Close models before their container.
 *
 * Errors: every fallible function returns an astore_status and, when `err` is not NULL,
 * fills it with the first error's status, message and byte offset in the container.
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

/* Keep in step with astore_status_name() and pyastore/_core (a test checks both). */
typedef enum astore_status {
    ASTORE_OK = 0,
    ASTORE_ERR_ARGUMENT = 1,    /* a NULL pointer, a wrong size or count from the caller */
    ASTORE_ERR_TRUNCATED = 2,   /* the bytes end before a structure they announce        */
    ASTORE_ERR_FORMAT = 3,      /* malformed framing or section content                  */
    ASTORE_ERR_VERSION = 4,     /* a major format version this library does not read     */
    ASTORE_ERR_INTEGRITY = 5,   /* the recorded store key is not the SHA-256 of the bytes */
    ASTORE_ERR_UNSUPPORTED = 6, /* an unknown critical section or model feature          */
    ASTORE_ERR_NOMEM = 7,       /* an allocation failed                                  */
    ASTORE_ERR_INPUT = 8        /* input rows of the wrong shape                         */
} astore_status;

#define ASTORE_STATUS_COUNT 9

typedef struct astore_error {
    astore_status status;
    uint64_t offset;   /* byte offset in the container the error refers to, or UINT64_MAX */
    char message[256]; /* NUL-terminated, English                                         */
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
 */
ASTORE_MUST_CHECK astore_status astore_model_open(const astore_container *container,
                                                  astore_model **out, astore_error *err);
void astore_model_close(astore_model *model);

/* Columns of an input row: the raw inputs (what XFRM reads, when the container has one). */
size_t astore_model_n_inputs(const astore_model *model);
size_t astore_model_n_outputs(const astore_model *model);

/*
 * Score `n_rows` rows of `n_cols` float32 values (row-major, NaN = missing) into `out`,
 * which holds `out_len` doubles, at least n_rows * astore_model_n_outputs(). `n_threads`
 * is the number of worker threads (0 or 1: the calling thread only). Results do not
 * depend on n_threads, nor on the instruction set the MLP kernel uses (AVX-512, AVX or
 * 4-lane vectors, picked at astore_model_open; ASTORE_MLP_KERNEL=avx|generic in the
 * environment forces a narrower one): every output is computed by the same operations in
 * the same order. Scoring uses up to about 100 KiB of the calling thread's stack.
 */
ASTORE_MUST_CHECK astore_status astore_model_score(const astore_model *model, const float *x,
                                                   size_t n_rows, size_t n_cols, double *out,
                                                   size_t out_len, unsigned n_threads,
                                                   astore_error *err);

#ifdef __cplusplus
}
#endif

#endif /* ASTORE_H */
