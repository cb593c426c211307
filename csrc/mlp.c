/*
 * mlp.c -- the MLP_ section: validation at load, scoring.
 *
 * Load checks every count and offset before it reads an array: layer sizes chain, widths
 * stay within ASTORE_MLP_MAX_WIDTH, arrays lie inside the section in file order (so their
 * total size, and any decoded copy, is bounded by the section length), weights and biases
 * are finite. Scoring then needs no checks and allocates nothing.
 *
 * Scoring works on blocks of rows held transposed, [unit][row], in two stack buffers that
 * take turns as a layer's input and output, so a block goes through every layer while it is
 * in cache. A layer is a small matrix product written for these shapes (mlp_kernel.h): a
 * tile of 8 units x one vector of rows keeps 8 vector sums in registers while it walks the
 * inputs once. Every sum starts at the bias and adds weight * input in input order, one
 * float32 rounding per product and per sum (the build forbids FMA contraction); rows are
 * the vector lanes, so the vector width and the block a row lands in never change its
 * result: scores are the same for any thread count, block size and instruction set.
 *
 * The kernel is compiled for 4-lane vectors (SSE2 on x86-64, NEON on aarch64; plain C for
 * other compilers, for clang on armv7, whose NEON flushes subnormals, and with
 * -DASTORE_NO_SIMD) and, on x86-64, also for AVX and AVX-512F, picked at load from what the
 * CPU supports. All give the same
 * bits. ASTORE_MLP_KERNEL=generic|avx|avx512 in the environment (read at load) forces a
 * narrower one, for tests and diagnosis.
 *
 * Activations are computed in float32 with the kernel's own exp (fixed operations, no libm):
 * x = n ln2 + r with |r| <= ln2/2 (Cody-Waite, ln2 split in a 16-bit head and a tail),
 * exp(r) by its degree-7 Taylor polynomial in Horner form, times 2^n applied as two normal
 * powers of two so that results near overflow and in the subnormal range round once; within
 * 2 ulp. NaN stays NaN, x > 88.73 gives +inf, x < -103.98 gives 0. They therefore give the
 * same bits on every IEEE-754 target whatever its libm.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "astore_internal.h"

#define MAX_BLOCK_ROWS 64
#define SCRATCH_FLOATS (ASTORE_MLP_MAX_WIDTH * 8) /* one stack buffer: 32 KiB             */

static astore_status mlp_fail(const astore_section *section, astore_status status,
                              uint32_t layer, const char *problem, astore_error *err) {
    return astore_fail(err, status, section->offset, "MLP_ layer %u: %s", (unsigned)layer,
                       problem);
}

static bool all_finite(const float *values, size_t count) {
    for (size_t i = 0; i < count; i++) {
        if (!isfinite(values[i])) return false;
    }
    return true;
}

/* Checks one array of `count` floats at `offset`: 64-aligned, at or after `*previous_end`
 * (arrays are in file order and disjoint), inside the section. Advances `*previous_end`. */
static bool array_ok(const astore_section *section, uint32_t offset, uint64_t count,
                     uint64_t *previous_end) {
    uint64_t bytes = count * 4u; /* count <= MAX_WIDTH^2 */
    if (offset % ASTORE_ALIGN != 0 || offset < *previous_end || offset > section->length ||
        bytes > section->length - offset) {
        return false;
    }
    *previous_end = offset + bytes;
    return true;
}

static void decode_floats(const uint8_t *source, size_t count, float *target) {
    for (size_t i = 0; i < count; i++) {
        astore_cursor c = astore_cursor_make(source + 4u * i, 4, 0);
        bool ok = astore_read_f32(&c, &target[i]);
        (void)ok; /* bounds were checked by array_ok */
    }
}

static void choose_kernel(astore_mlp *m);

/* Pass 1: the 64-byte header, and where the layer table lies. */
static astore_status read_header(const astore_section *section, astore_cursor *cursor,
                                 astore_mlp_header *h, astore_error *err) {
    if (!astore_read_u32(cursor, &h->n_layers) || !astore_read_u32(cursor, &h->n_features) ||
        !astore_read_u32(cursor, &h->n_outputs) || !astore_read_u32(cursor, &h->layers_offset) ||
        !astore_read_u32(cursor, &h->flags) ||
        !astore_read_bytes(cursor, h->reserved, sizeof h->reserved)) {
        return astore_fail(err, ASTORE_ERR_FORMAT, section->offset,
                           "MLP_ section is %llu bytes, shorter than its 64-byte header",
                           (unsigned long long)section->length);
    }
    if (h->flags != 0) {
        return astore_fail(err, ASTORE_ERR_VERSION, section->offset + 16,
                           "MLP_ flags 0x%x unknown (written by a newer version?)",
                           (unsigned)h->flags);
    }
    if (!astore_all_zero(h->reserved, sizeof h->reserved)) {
        return astore_fail(err, ASTORE_ERR_FORMAT, section->offset + 20,
                           "MLP_ reserved header bytes are not zero");
    }
    if (h->n_layers == 0 || h->n_features == 0 || h->n_outputs == 0) {
        return astore_fail(err, ASTORE_ERR_FORMAT, section->offset,
                           "MLP_ header: %u layers, %u features, %u outputs is not a network",
                           (unsigned)h->n_layers, (unsigned)h->n_features,
                           (unsigned)h->n_outputs);
    }
    uint64_t table_end = (uint64_t)h->layers_offset + 32u * (uint64_t)h->n_layers;
    if (h->layers_offset % ASTORE_ALIGN != 0 || h->layers_offset < sizeof(astore_mlp_header) ||
        table_end > section->length) {
        return astore_fail(err, ASTORE_ERR_FORMAT, section->offset + 12,
                           "MLP_ layer table [%u, +%u) lies outside the %llu-byte section or "
                           "is misaligned",
                           (unsigned)h->layers_offset, (unsigned)(32u * h->n_layers),
                           (unsigned long long)section->length);
    }
    if (h->layers_offset != sizeof(astore_mlp_header)) {
        return astore_fail(err, ASTORE_ERR_FORMAT, section->offset + 12,
                           "MLP_ is not canonical: the layer table starts at %u, not 64",
                           (unsigned)h->layers_offset);
    }
    if (h->n_layers > ASTORE_MLP_MAX_LAYERS) {
        return astore_fail(err, ASTORE_ERR_UNSUPPORTED, section->offset,
                           "MLP_ has %u layers; this reader scores at most %u",
                           (unsigned)h->n_layers, (unsigned)ASTORE_MLP_MAX_LAYERS);
    }
    return ASTORE_OK;
}

/* Layer k's table entry, checked against the layer before it; `previous_end` follows the
 * arrays (in file order), `max_width` the widest layer. */
static astore_status read_layer(const astore_section *section, const uint8_t *body,
                                const astore_mlp_header *h, uint32_t k,
                                astore_mlp_layer *entries, uint64_t *previous_end,
                                uint32_t *max_width, astore_error *err) {
    astore_mlp_layer *e = &entries[k];
    astore_cursor c = astore_cursor_make(body + h->layers_offset + 32u * k, 32,
                                         section->offset + h->layers_offset + 32u * k);
    bool ok = astore_read_u32(&c, &e->n_in) && astore_read_u32(&c, &e->n_out) &&
              astore_read_u32(&c, &e->activation) && astore_read_f32(&c, &e->alpha) &&
              astore_read_u32(&c, &e->weights_offset) && astore_read_u32(&c, &e->bias_offset) &&
              astore_read_u32(&c, &e->reserved[0]) && astore_read_u32(&c, &e->reserved[1]);
    (void)ok; /* the table lies inside the section (checked by read_header) */
    uint32_t expected_in = k == 0 ? h->n_features : entries[k - 1].n_out;
    if (e->n_in == 0 || e->n_out == 0) {
        return mlp_fail(section, ASTORE_ERR_FORMAT, k, "zero inputs or outputs", err);
    }
    if (e->n_in != expected_in) {
        return astore_fail(err, ASTORE_ERR_FORMAT, section->offset,
                           "MLP_ layer %u takes %u inputs but %s gives %u", (unsigned)k,
                           (unsigned)e->n_in, k == 0 ? "the header" : "the layer before",
                           (unsigned)expected_in);
    }
    if (e->n_in > ASTORE_MLP_MAX_WIDTH || e->n_out > ASTORE_MLP_MAX_WIDTH) {
        return astore_fail(err, ASTORE_ERR_UNSUPPORTED, section->offset,
                           "MLP_ layer %u is %u x %u; this reader scores layers of at most "
                           "%u units",
                           (unsigned)k, (unsigned)e->n_in, (unsigned)e->n_out,
                           (unsigned)ASTORE_MLP_MAX_WIDTH);
    }
    if (e->activation > ASTORE_ACTIVATION_SOFTMAX) {
        return astore_fail(err, ASTORE_ERR_UNSUPPORTED, section->offset,
                           "MLP_ layer %u: unknown activation %u", (unsigned)k,
                           (unsigned)e->activation);
    }
    uint32_t alpha_bits;
    memcpy(&alpha_bits, &e->alpha, sizeof alpha_bits);
    if (e->activation == ASTORE_ACTIVATION_LEAKY_RELU ? !isfinite(e->alpha) : alpha_bits != 0) {
        return mlp_fail(section, ASTORE_ERR_FORMAT, k,
                        "alpha must be finite for leaky relu and 0 otherwise", err);
    }
    if (e->reserved[0] != 0 || e->reserved[1] != 0) {
        return mlp_fail(section, ASTORE_ERR_FORMAT, k, "reserved fields are not zero", err);
    }
    uint64_t n_weights = (uint64_t)e->n_in * e->n_out;
    uint64_t weights_start = *previous_end;
    if (!array_ok(section, e->weights_offset, n_weights, previous_end) ||
        !array_ok(section, e->bias_offset, e->n_out, previous_end)) {
        return mlp_fail(section, ASTORE_ERR_FORMAT, k,
                        "weights or bias lie outside the section, overlap, are out of "
                        "order or misaligned",
                        err);
    }
    uint64_t weights_end = (uint64_t)e->weights_offset + 4u * n_weights;
    if (e->weights_offset != astore_align_up(weights_start) ||
        e->bias_offset != astore_align_up(weights_end) ||
        !astore_all_zero(body + weights_start, e->weights_offset - weights_start) ||
        !astore_all_zero(body + weights_end, e->bias_offset - weights_end)) {
        return mlp_fail(section, ASTORE_ERR_FORMAT, k,
                        "not canonical: weights and bias must start at the first multiple "
                        "of 64 after what precedes them, with zero bytes between",
                        err);
    }
    if (e->n_in > *max_width) *max_width = e->n_in;
    if (e->n_out > *max_width) *max_width = e->n_out;
    return ASTORE_OK;
}

/* Pass 3: the layer table of the model, its arrays used in place (little-endian host,
 * aligned buffer) or decoded; every weight and bias finite. */
static astore_status place_layers(astore_mlp *m, const astore_section *section,
                                  const uint8_t *body, uint32_t n_layers,
                                  const astore_mlp_layer *entries, astore_error *err) {
    uint64_t total_floats = 0;
    for (uint32_t k = 0; k < n_layers; k++) {
        total_floats += (uint64_t)entries[k].n_in * entries[k].n_out + entries[k].n_out;
    }
    /* total_floats * 4 <= section length: the arrays are disjoint and inside it */
    bool in_place = astore_host_is_little_endian() && ((uintptr_t)body % 8u) == 0;
    size_t bytes = sizeof(astore_dense) * n_layers +
                   (in_place ? 0 : sizeof(float) * (size_t)total_floats);
    m->owned = malloc(bytes);
    if (m->owned == NULL) {
        return astore_fail(err, ASTORE_ERR_NOMEM, ASTORE_NO_OFFSET, "out of memory");
    }
    astore_dense *layers = m->owned;
    float *decoded = (float *)(void *)(layers + n_layers);
    for (uint32_t k = 0; k < n_layers; k++) {
        const astore_mlp_layer *e = &entries[k];
        size_t n_weights = (size_t)e->n_in * e->n_out;
        layers[k].n_in = e->n_in;
        layers[k].n_out = e->n_out;
        layers[k].activation = e->activation;
        layers[k].alpha = e->alpha;
        if (in_place) {
            layers[k].weights = (const float *)(const void *)(body + e->weights_offset);
            layers[k].bias = (const float *)(const void *)(body + e->bias_offset);
        } else {
            decode_floats(body + e->weights_offset, n_weights, decoded);
            layers[k].weights = decoded;
            decoded += n_weights;
            decode_floats(body + e->bias_offset, e->n_out, decoded);
            layers[k].bias = decoded;
            decoded += e->n_out;
        }
        if (!all_finite(layers[k].weights, n_weights) || !all_finite(layers[k].bias, e->n_out)) {
            astore_mlp_release(m);
            return mlp_fail(section, ASTORE_ERR_FORMAT, k, "a weight or bias is not finite", err);
        }
    }
    m->layers = layers;
    return ASTORE_OK;
}

astore_status astore_mlp_load(const astore_container *container, const astore_section *section,
                              astore_mlp *m, astore_error *err) {
    memset(m, 0, sizeof *m);
    const uint8_t *body = container->data + section->offset;
    astore_cursor cursor = astore_cursor_make(body, (size_t)section->length, section->offset);
    astore_mlp_header h;
    astore_status status = read_header(section, &cursor, &h, err);
    if (status != ASTORE_OK) return status;
    /* Pass 2: the layer table, each layer chained to the one before. */
    astore_mlp_layer entries[ASTORE_MLP_MAX_LAYERS];
    uint64_t previous_end = (uint64_t)h.layers_offset + 32u * (uint64_t)h.n_layers;
    uint32_t max_width = 0;
    for (uint32_t k = 0; k < h.n_layers; k++) {
        status = read_layer(section, body, &h, k, entries, &previous_end, &max_width, err);
        if (status != ASTORE_OK) return status;
    }
    if (section->length != previous_end) {
        return astore_fail(err, ASTORE_ERR_FORMAT, section->offset,
                           "MLP_ is not canonical: the section is %llu bytes, its last bias "
                           "ends at %llu",
                           (unsigned long long)section->length,
                           (unsigned long long)previous_end);
    }
    if (entries[h.n_layers - 1].n_out != h.n_outputs) {
        return astore_fail(err, ASTORE_ERR_FORMAT, section->offset + 8,
                           "MLP_ header says %u outputs, the last layer gives %u",
                           (unsigned)h.n_outputs, (unsigned)entries[h.n_layers - 1].n_out);
    }
    status = place_layers(m, section, body, h.n_layers, entries, err);
    if (status != ASTORE_OK) return status;
    m->n_layers = h.n_layers;
    m->n_features = h.n_features;
    m->n_outputs = h.n_outputs;
    m->max_width = max_width;
    choose_kernel(m);
    return ASTORE_OK;
}

void astore_mlp_release(astore_mlp *m) {
    free(m->owned);
    m->owned = NULL;
    m->layers = NULL;
}

/* ---- the kernel, instantiated per vector width ---------------------------------------- */

/* float32 constants as exact literals (no arithmetic on constants, see mlp_kernel.h) */
#define ROUND_MAGIC 0x1.8p23f        /* 1.5 * 2^23: x + it rounds x to an integer (|x| < 2^22) */
#define ROUND_MAGIC_BITS 0x4B400000u /* its bit pattern                                       */
#define LOG2_E 0x1.715476p0f         /* log2(e)                                               */
#define LN2_HIGH 0x1.62e4p-1f        /* ln 2 to 16 bits: n * LN2_HIGH is exact                */
#define LN2_LOW 0x1.7f7d1cp-20f      /* ln 2 - LN2_HIGH                                       */
#define EXP_C3 0x1.555556p-3f        /* 1/6, 1/24, 1/120, 1/720, 1/5040 rounded to float32    */
#define EXP_C4 0x1.555556p-5f
#define EXP_C5 0x1.111112p-7f
#define EXP_C6 0x1.6c16c2p-10f
#define EXP_C7 0x1.a01a02p-13f
#define TANH_C3 -0x1.555556p-2f      /* -1/3, 2/15, -17/315 rounded to float32                */
#define TANH_C5 0x1.111112p-3f
#define TANH_C7 -0x1.ba1ba2p-5f

#if (defined(__GNUC__) || defined(__clang__)) && !(defined(__arm__) && defined(__clang__)) && \
    !defined(ASTORE_NO_SIMD)
#define HAVE_VECTORS 1
#define ALIGNED(n) __attribute__((aligned(n)))
#else
#define ALIGNED(n)
#endif

#ifdef HAVE_VECTORS
/* Lane-wise helpers for GCC/clang vectors: a comparison gives -1 (all ones) or 0 per lane. */
#define SELECT(m, a, b) ((VEC)(((m) & (MASK)(a)) | (~(m) & (MASK)(b))))
#define REPEAT4(v) v, v, v, v
#define REPEAT8(v) REPEAT4(v), REPEAT4(v)
#define REPEAT16(v) REPEAT8(v), REPEAT8(v)
#define SPLAT(out, value)                                                                   \
    do {                                                                                    \
        const float splat_value_ = (value);                                                 \
        (out) = (VEC){REPEAT_LANES(splat_value_)};                                          \
    } while (0)
#define BITS_OF(out, v) ((out) = (BITS)(v))
#define FLOAT_OF(out, bits) ((out) = (VEC)(bits))
#define LOAD(out, p) memcpy(&(out), (p), sizeof(VEC))
#define STORE(p, v) memcpy((p), &(v), sizeof(VEC))

typedef float f32x4 __attribute__((vector_size(16)));
typedef int32_t i32x4 __attribute__((vector_size(16)));
typedef uint32_t u32x4 __attribute__((vector_size(16)));
#define KERNEL(name) name##_generic
#define KERNEL_TARGET
#define VEC f32x4
#define MASK i32x4
#define BITS u32x4
#define LANES 4
#define REPEAT_LANES REPEAT4
#include "mlp_kernel.h"

#if defined(__x86_64__)
#define HAVE_X86_KERNELS 1
typedef float f32x8 __attribute__((vector_size(32)));
typedef int32_t i32x8 __attribute__((vector_size(32)));
typedef uint32_t u32x8 __attribute__((vector_size(32)));
#define KERNEL(name) name##_avx
#define KERNEL_TARGET __attribute__((target("avx")))
#define VEC f32x8
#define MASK i32x8
#define BITS u32x8
#define LANES 8
#define REPEAT_LANES REPEAT8
#include "mlp_kernel.h"

typedef float f32x16 __attribute__((vector_size(64)));
typedef int32_t i32x16 __attribute__((vector_size(64)));
typedef uint32_t u32x16 __attribute__((vector_size(64)));
#define KERNEL(name) name##_avx512
#define KERNEL_TARGET __attribute__((target("avx512f")))
#define VEC f32x16
#define MASK i32x16
#define BITS u32x16
#define LANES 16
#define REPEAT_LANES REPEAT16
#include "mlp_kernel.h"
#endif /* __x86_64__ */

#else /* plain C: one lane */
static inline uint32_t bits_of_float(float value) {
    uint32_t bits;
    memcpy(&bits, &value, sizeof bits);
    return bits;
}
static inline float float_of_bits(uint32_t bits) {
    float value;
    memcpy(&value, &bits, sizeof value);
    return value;
}
#define SELECT(m, a, b) ((m) ? (a) : (b))
#define SPLAT(out, value) ((out) = (value))
#define BITS_OF(out, v) ((out) = bits_of_float(v))
#define FLOAT_OF(out, bits) ((out) = float_of_bits(bits))
#define LOAD(out, p) ((out) = *(p))
#define STORE(p, v) (*(p) = (v))
#define KERNEL(name) name##_generic
#define KERNEL_TARGET
#define VEC float
#define MASK int
#define BITS uint32_t
#define LANES 1
#include "mlp_kernel.h"
#define LANES_GENERIC 1
#endif /* HAVE_VECTORS */

#ifndef LANES_GENERIC
#define LANES_GENERIC 4
#endif

static bool kernel_allowed(const char *name) {
    const char *forced = getenv("ASTORE_MLP_KERNEL");
    if (forced == NULL || forced[0] == '\0') return true;
    if (strcmp(forced, "generic") == 0) return false;
    if (strcmp(forced, "avx") == 0) return strcmp(name, "avx512") != 0;
    return true;
}

static void choose_kernel(astore_mlp *m) {
    m->forward = m->forward_narrow = forward_generic;
    m->lanes = m->narrow_lanes = LANES_GENERIC;
#ifdef HAVE_X86_KERNELS
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && kernel_allowed("avx512") &&
        16u * m->max_width <= SCRATCH_FLOATS) {
        m->forward = forward_avx512;
        m->lanes = 16;
    } else if (__builtin_cpu_supports("avx") && kernel_allowed("avx")) {
        m->forward = forward_avx;
        m->lanes = 8;
    }
#else
    (void)kernel_allowed;
#endif
    uint32_t rows = SCRATCH_FLOATS / m->max_width / m->lanes * m->lanes;
    m->block_rows = rows > MAX_BLOCK_ROWS ? MAX_BLOCK_ROWS : rows;
}

void astore_mlp_score_rows(const astore_mlp *m, const float *x, size_t n_rows, double *out) {
    float buffer_a[SCRATCH_FLOATS] ALIGNED(64);
    float buffer_b[SCRATCH_FLOATS] ALIGNED(64);
    const size_t n_in = m->n_features, n_out = m->n_outputs;
    for (size_t start = 0; start < n_rows; start += m->block_rows) {
        size_t count = n_rows - start < m->block_rows ? n_rows - start : m->block_rows;
        /* a few rows (single events) go to the narrow kernel: less padding, same bits */
        bool narrow = count <= m->narrow_lanes;
        size_t step = narrow ? m->narrow_lanes : m->lanes;
        size_t lanes = (count + step - 1) / step * step;
        const float *rows = x + start * n_in;
        /* the block as [feature][row]; padding rows are zero */
        for (size_t i = 0; i < n_in; i++) {
            float *column = buffer_a + i * lanes;
            for (size_t r = 0; r < count; r++) column[r] = rows[r * n_in + i];
            for (size_t r = count; r < lanes; r++) column[r] = 0.0f;
        }
        const float *result = (narrow ? m->forward_narrow : m->forward)(m, buffer_a, buffer_b, lanes);
        double *target = out + start * n_out;
        for (size_t r = 0; r < count; r++) {
            for (size_t j = 0; j < n_out; j++) target[r * n_out + j] = result[j * lanes + r];
        }
    }
}
