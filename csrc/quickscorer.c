/*
 * quickscorer.c -- forests of small trees scored by bit-vector traversal (the QuickScorer
 * family), derived at load from the FRST arrays; the container format does not change.
 *
 * A tree with at most 64 leaves gets a 64-bit leaf set per row, all ones at the start. A
 * split node whose test fails for the row (the row goes right) cannot lead to a leaf of its
 * left subtree, so it clears those leaves' bits; once every failing node of the tree has
 * cleared its bits, the lowest bit still set is the exit leaf, whatever the order the nodes
 * were applied in. (Leaves are numbered depth first, so a leaf left of the exit leaf is in the
 * left subtree of a node on the exit path where the row went right; every leaf of a failing
 * node's left subtree is cleared; the exit leaf is in no failing node's left subtree.)
 *
 * Which nodes fail for a row is found per feature: a node `x < t` fails exactly when t <= x
 * (for a number x), so with every node of a feature sorted by threshold, the failing ones are
 * a prefix of the list, walked until the first threshold above x -- sequential reads, one
 * mispredicted branch per feature, no pointer chasing. A NaN fails the nodes whose missing
 * values go right (no DEFAULT_LEFT bit): a second list per feature, applied whole. Results
 * are therefore those of the node-by-node walk, bit for bit: the same exit leaves, added in
 * tree order.
 *
 * Trees are taken in blocks of at most QS_TREE_BLOCK so that a group's leaf sets stay in L1.
 * Rows go through in groups: AVX-512 (and AVX2) compare one threshold against the group's
 * 16 or 8 values at once and update the tree's leaf sets of the group together; the list of
 * a feature is walked until its threshold exceeds every value of the group. Each list ends
 * with a sentinel whose threshold is NaN (no value is >= NaN), so the walks need no bound.
 * NEON (aarch64) takes groups of 4 rows the same way.
 * Where the CPU has AVX-512 VBMI and GFNI, whole blocks of 64 rows go transposed instead
 * (score_block64_avx512: one bit per row for each leaf, so a node updates all 64 rows in
 * one operation), measured 1.4-1.6x faster than 16-row groups on every forest tried.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "astore_internal.h"

#ifndef QS_TREE_BLOCK
#define QS_TREE_BLOCK 128u /* a block's 64-row leaf sets: <= 8192 leaves, 64 KiB */
#endif

typedef struct astore_qs_entry {
    float threshold; /* the node's threshold; NaN in a list's sentinel */
    uint32_t tree;   /* the node's tree, counted from the first tree of its block */
    uint64_t keep;   /* every bit but those of the leaves of the node's left subtree */
} astore_qs_entry;

struct astore_quickscorer {
    uint32_t n_blocks;
    uint32_t n_features;
    /* lists, block-major then feature: list b * n_features + j spans
     * entries[starts[i], starts[i + 1]) and its sentinel is the last entry */
    uint32_t *starts;
    uint32_t *nan_starts; /* the same for nan_entries, without sentinels */
    astore_qs_entry *entries;
    astore_qs_entry *nan_entries;
    /* tree t's frontier: codes[frontier_start[t], frontier_start[t + 1]) -- its leaves
     * (LEAF_TAG | leaf), or for a deep tree cut at depth `cut` also its nodes at the cut */
    uint32_t *frontier_start;
    uint32_t *codes;
    uint32_t cut; /* UINT32_MAX: no tree is cut (every tree has at most 64 leaves) */
    size_t bytes;
    bool transposed; /* 64-row blocks (AVX-512 with VBMI and GFNI, checked at load) */
};

static uint64_t bits_below(uint32_t n) { return n >= 64u ? ~(uint64_t)0 : (((uint64_t)1 << n) - 1u); }

static int lowest_set_bit(uint64_t v) {
#if defined(__GNUC__) || defined(__clang__)
    return __builtin_ctzll(v);
#else
    int n = 0;
    while ((v & 1u) == 0) {
        v >>= 1;
        n++;
    }
    return n;
#endif
}

static int compare_entries(const void *a, const void *b) {
    const astore_qs_entry *x = a, *y = b;
    if (x->threshold < y->threshold) return -1;
    if (x->threshold > y->threshold) return 1;
    return (x->tree > y->tree) - (x->tree < y->tree);
}

/* A list per feature and tree block: forests with far more features than nodes (most lists
 * empty) keep the node walk, so a container cannot make the loader allocate lists for 2^28
 * features it never splits on. */
bool astore_qs_lists_fit(const astore_forest *f) {
    uint64_t n_blocks = (f->n_trees + QS_TREE_BLOCK - 1u) / QS_TREE_BLOCK;
    return n_blocks * f->n_features <= 4u * ((uint64_t)f->n_nodes_total + f->n_trees) + 4096u;
}

bool astore_qs_applies(const astore_forest *f) {
    for (uint32_t t = 0; t < f->n_trees; t++) {
        if (f->trees[t].n_leaves > 64u) return false;
    }
    return astore_qs_lists_fit(f);
}

void astore_qs_release(astore_quickscorer *qs) {
    if (qs == NULL) return;
    free(qs->starts);
    free(qs->nan_starts);
    free(qs->entries);
    free(qs->nan_entries);
    free(qs->frontier_start);
    free(qs->codes);
    free(qs);
}

size_t astore_qs_bytes(const astore_quickscorer *qs) { return qs == NULL ? 0 : qs->bytes; }

/* Trees of block b. */
static uint32_t block_trees(const astore_forest *f, uint32_t b) {
    uint32_t t0 = b * QS_TREE_BLOCK;
    return f->n_trees - t0 < QS_TREE_BLOCK ? f->n_trees - t0 : QS_TREE_BLOCK;
}

/*
 * The frontier of a tree: its leaves, or -- when the tree is cut at depth `cut` (the top of a
 * deep tree) -- its leaves above the cut and its nodes at the cut, in depth-first order, at
 * most 64 either way. Frontier items are coded as the node walk codes a position: LEAF_TAG |
 * leaf, or a (tree-local) split node to walk on from. The nodes above the cut are the ones the
 * bit vectors evaluate; a node's left subtree covers a run of frontier items.
 */
#define QS_LEAF_TAG 0x80000000u

typedef struct frontier_visit {
    const astore_forest *f;
    astore_quickscorer *qs;
    const astore_tree_node *nodes;
    uint32_t cut;         /* depth of the cut; UINT32_MAX: not cut */
    uint32_t local_tree;  /* the tree within its block */
    size_t list_base;     /* first list of the tree's block */
    uint32_t *fill;       /* NULL: count the lists' entries; else where each list fills next */
    uint32_t *nan_fill;
    uint32_t *codes;      /* the tree's frontier codes (filling only) */
    uint32_t count;       /* frontier items so far */
} frontier_visit;

static void visit_leaf(frontier_visit *v, uint32_t leaf) {
    if (v->codes != NULL) v->codes[v->count] = QS_LEAF_TAG | leaf;
    v->count++;
}

static void visit_node(frontier_visit *v, uint32_t i, uint32_t depth) {
    if (depth == v->cut) {
        if (v->codes != NULL) v->codes[v->count] = i;
        v->count++;
        return;
    }
    const astore_tree_node *node = &v->nodes[i];
    bool left_leaf = (node->split & ASTORE_NODE_LEFT_LEAF) != 0;
    bool right_leaf = (node->split & ASTORE_NODE_RIGHT_LEAF) != 0;
    uint32_t lo = v->count;
    if (left_leaf) visit_leaf(v, node->child);
    else visit_node(v, i + 1u, depth + 1u);
    uint32_t hi = v->count;
    if (right_leaf) visit_leaf(v, left_leaf ? node->child + 1u : node->child);
    else visit_node(v, left_leaf ? i + 1u : node->child, depth + 1u);
    size_t list = v->list_base + (node->split & ASTORE_NODE_FEATURE_MASK);
    bool nan_right = (node->split & ASTORE_NODE_DEFAULT_LEFT) == 0;
    if (v->fill == NULL) { /* counting */
        v->qs->starts[list + 1u]++;
        if (nan_right) v->qs->nan_starts[list + 1u]++;
        return;
    }
    astore_qs_entry entry;
    entry.threshold = node->threshold;
    entry.tree = v->local_tree;
    entry.keep = ~(bits_below(hi) & ~bits_below(lo));
    v->qs->entries[v->fill[list]++] = entry;
    if (nan_right) v->qs->nan_entries[v->nan_fill[list]++] = entry;
}

/* Visits every tree: counting (fill NULL) or filling the lists and the frontier codes. */
static void visit_trees(const astore_forest *f, astore_quickscorer *qs, uint32_t *fill,
                        uint32_t *nan_fill) {
    for (uint32_t t = 0; t < f->n_trees; t++) {
        const astore_tree_entry *tree = &f->trees[t];
        frontier_visit v = {f, qs, f->nodes + tree->first_node,
                            tree->n_leaves <= 64u ? UINT32_MAX : qs->cut, t % QS_TREE_BLOCK,
                            (size_t)(t / QS_TREE_BLOCK) * f->n_features, fill, nan_fill,
                            fill != NULL ? qs->codes + qs->frontier_start[t] : NULL, 0};
        if (tree->n_nodes == 0) visit_leaf(&v, 0);
        else visit_node(&v, 0, 0);
        if (fill == NULL) qs->frontier_start[t + 1u] = qs->frontier_start[t] + v.count;
    }
}

astore_status astore_qs_build(const astore_forest *f, uint32_t cut, astore_quickscorer **out,
                              astore_error *err) {
    *out = NULL;
    astore_quickscorer *qs = calloc(1, sizeof *qs);
    if (qs == NULL) return astore_fail(err, ASTORE_ERR_NOMEM, ASTORE_NO_OFFSET, "out of memory");
    qs->n_features = f->n_features;
    qs->n_blocks = (f->n_trees + QS_TREE_BLOCK - 1u) / QS_TREE_BLOCK;
    qs->cut = cut;
    size_t n_lists = (size_t)qs->n_blocks * f->n_features;
    qs->starts = calloc(n_lists + 1u, sizeof(uint32_t));
    qs->nan_starts = calloc(n_lists + 1u, sizeof(uint32_t));
    qs->frontier_start = calloc((size_t)f->n_trees + 1u, sizeof(uint32_t));
    uint32_t *fill = malloc(sizeof(uint32_t) * 2u * (n_lists + 1u));
    if (qs->starts == NULL || qs->nan_starts == NULL || qs->frontier_start == NULL ||
        fill == NULL) {
        free(fill);
        astore_qs_release(qs);
        return astore_fail(err, ASTORE_ERR_NOMEM, ASTORE_NO_OFFSET, "out of memory");
    }
    /* counts per list, then offsets: every list ends with a sentinel */
    visit_trees(f, qs, NULL, NULL);
    for (size_t i = 0; i < n_lists; i++) {
        qs->starts[i + 1u] += qs->starts[i] + 1u;
        qs->nan_starts[i + 1u] += qs->nan_starts[i];
    }
    size_t n_entries = qs->starts[n_lists];
    size_t n_codes = qs->frontier_start[f->n_trees];
    qs->entries = malloc(sizeof(astore_qs_entry) * n_entries);
    qs->nan_entries = malloc(sizeof(astore_qs_entry) * (qs->nan_starts[n_lists] + 1u));
    qs->codes = malloc(sizeof(uint32_t) * (n_codes + 1u));
    if (qs->entries == NULL || qs->nan_entries == NULL || qs->codes == NULL) {
        free(fill);
        astore_qs_release(qs);
        return astore_fail(err, ASTORE_ERR_NOMEM, ASTORE_NO_OFFSET, "out of memory");
    }
    qs->bytes = sizeof *qs + 2u * sizeof(uint32_t) * (n_lists + 1u) +
                sizeof(uint32_t) * ((size_t)f->n_trees + 1u + n_codes + 1u) +
                sizeof(astore_qs_entry) * (n_entries + qs->nan_starts[n_lists] + 1u);
    uint32_t *nan_fill = fill + n_lists + 1u;
    memcpy(fill, qs->starts, sizeof(uint32_t) * (n_lists + 1u));
    memcpy(nan_fill, qs->nan_starts, sizeof(uint32_t) * (n_lists + 1u));
    visit_trees(f, qs, fill, nan_fill);
    for (size_t i = 0; i < n_lists; i++) {
        qsort(qs->entries + qs->starts[i], fill[i] - qs->starts[i], sizeof(astore_qs_entry),
              compare_entries);
        astore_qs_entry *sentinel = &qs->entries[qs->starts[i + 1u] - 1u];
        sentinel->threshold = NAN;
        sentinel->tree = 0;
        sentinel->keep = ~(uint64_t)0;
    }
    free(fill);
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__)) && !defined(ASTORE_NO_SIMD)
    qs->transposed = f->isa == ASTORE_ISA_AVX512 && astore_qs_transposed_cpu();
#endif
    *out = qs;
    return ASTORE_OK;
}

bool astore_qs_transposed_cpu(void) {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__)) && !defined(ASTORE_NO_SIMD)
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512cd") &&
           __builtin_cpu_supports("avx512vbmi") && __builtin_cpu_supports("gfni");
#else
    return false;
#endif
}

/* Adds the exit leaves of trees [t0, t0 + n) for `lanes` rows; leaf_sets[t * stride + r]. */
static void add_exit_leaves(const astore_forest *f, uint32_t t0, uint32_t n,
                            const uint64_t *leaf_sets, size_t stride, size_t lanes, double *acc) {
    size_t n_out = f->n_outputs;
    for (uint32_t k = 0; k < n; k++) {
        const astore_tree_entry *tree = &f->trees[t0 + k];
        const float *leaves = f->leaves + (size_t)tree->first_leaf * f->leaf_width;
        const uint64_t *sets = leaf_sets + (size_t)k * stride;
        if (f->leaf_width == 1) {
            double *target = acc + tree->output;
            for (size_t r = 0; r < lanes; r++) target[r * n_out] += leaves[lowest_set_bit(sets[r])];
        } else {
            for (size_t r = 0; r < lanes; r++) {
                const float *leaf = leaves + (size_t)lowest_set_bit(sets[r]) * n_out;
                for (size_t j = 0; j < n_out; j++) acc[r * n_out + j] += leaf[j];
            }
        }
    }
}

/* One row, one value at a time. */
static void score_row_scalar(const astore_forest *f, const astore_quickscorer *qs,
                             const float *row, double *acc) {
    uint64_t sets[QS_TREE_BLOCK];
    for (uint32_t b = 0; b < qs->n_blocks; b++) {
        uint32_t n = block_trees(f, b);
        for (uint32_t k = 0; k < n; k++) sets[k] = ~(uint64_t)0;
        const uint32_t *starts = qs->starts + (size_t)b * qs->n_features;
        const uint32_t *nan_starts = qs->nan_starts + (size_t)b * qs->n_features;
        for (uint32_t j = 0; j < qs->n_features; j++) {
            float x = row[j];
            if (x != x) {
                for (uint32_t k = nan_starts[j]; k < nan_starts[j + 1u]; k++) {
                    sets[qs->nan_entries[k].tree] &= qs->nan_entries[k].keep;
                }
                continue;
            }
            for (const astore_qs_entry *e = qs->entries + starts[j]; e->threshold <= x; e++) {
                sets[e->tree] &= e->keep;
            }
        }
        add_exit_leaves(f, b * QS_TREE_BLOCK, n, sets, 1, 1, acc);
    }
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__)) && !defined(ASTORE_NO_SIMD)
#define QS_HAVE_X86 1
#include <immintrin.h>

#define QS_LANES 8

/* The exit leaves of 8 rows' leaf sets of trees [t0, t0 + n), added in tree order; single
 * output per tree (leaf_width 1). The lowest set bit is 63 minus the leading zeros of
 * set & -set (a leaf set is never empty: its exit leaf stays). */
__attribute__((target("avx512f,avx512vl,avx512cd"))) static void add_exit_leaves_avx512(
    const astore_forest *f, uint32_t t0, uint32_t n, const __m512i *sets, size_t stride,
    double *acc, size_t lanes_in_group) {
    size_t n_out = f->n_outputs;
    const __m512i sixty_three = _mm512_set1_epi64(63);
    const long long w = (long long)n_out;
    for (size_t half = 0; half < lanes_in_group / 8u; half++) {
        __m512d sum[4];
        bool vector_sums = n_out <= 4u;
        const __m512i rows = _mm512_setr_epi64(0, w, 2 * w, 3 * w, 4 * w, 5 * w, 6 * w, 7 * w);
        double *base = acc + half * 8u * n_out;
        if (vector_sums) {
            for (size_t j = 0; j < n_out; j++) {
                sum[j] = _mm512_i64gather_pd(_mm512_add_epi64(rows, _mm512_set1_epi64((long long)j)),
                                             base, 8);
            }
        }
        for (uint32_t k = 0; k < n; k++) {
            const astore_tree_entry *tree = &f->trees[t0 + k];
            __m512i set = sets[(size_t)k * stride + half];
            __m512i lowest = _mm512_and_si512(set, _mm512_sub_epi64(_mm512_setzero_si512(), set));
            __m512i leaf = _mm512_add_epi64(_mm512_sub_epi64(sixty_three, _mm512_lzcnt_epi64(lowest)),
                                            _mm512_set1_epi64((long long)tree->first_leaf));
            __m512d value = _mm512_cvtps_pd(_mm512_i64gather_ps(leaf, f->leaves, 4));
            if (vector_sums) {
                sum[tree->output] = _mm512_add_pd(sum[tree->output], value);
            } else {
                double values[8];
                _mm512_storeu_pd(values, value);
                for (int r = 0; r < 8; r++) base[(size_t)r * n_out + tree->output] += values[r];
            }
        }
        if (vector_sums) {
            for (size_t j = 0; j < n_out; j++) {
                _mm512_i64scatter_pd(base, _mm512_add_epi64(rows, _mm512_set1_epi64((long long)j)),
                                     sum[j], 8);
            }
        }
    }
}

/* 8 rows: lane r of a 512-bit vector is row r's leaf set of one tree. */
__attribute__((target("avx512f,avx512vl,avx512cd"))) static void score_group_avx512(
    const astore_forest *f, const astore_quickscorer *qs, const float *rows, size_t n_cols,
    double *acc) {
    __m512i sets[QS_TREE_BLOCK];
    float column[QS_LANES];
    for (uint32_t b = 0; b < qs->n_blocks; b++) {
        uint32_t t0 = b * QS_TREE_BLOCK;
        uint32_t n = f->n_trees - t0 < QS_TREE_BLOCK ? f->n_trees - t0 : QS_TREE_BLOCK;
        for (uint32_t k = 0; k < n; k++) sets[k] = _mm512_set1_epi64(-1);
        const uint32_t *starts = qs->starts + (size_t)b * qs->n_features;
        const uint32_t *nan_starts = qs->nan_starts + (size_t)b * qs->n_features;
        for (uint32_t j = 0; j < qs->n_features; j++) {
            for (int r = 0; r < QS_LANES; r++) column[r] = rows[(size_t)r * n_cols + j];
            __m256 x = _mm256_loadu_ps(column);
            __mmask8 nan = _mm256_cmp_ps_mask(x, x, _CMP_UNORD_Q);
            if (nan) {
                for (uint32_t k = nan_starts[j]; k < nan_starts[j + 1u]; k++) {
                    const astore_qs_entry *e = &qs->nan_entries[k];
                    sets[e->tree] = _mm512_mask_and_epi64(sets[e->tree], nan, sets[e->tree],
                                                          _mm512_set1_epi64((long long)e->keep));
                }
            }
            for (const astore_qs_entry *e = qs->entries + starts[j];; e++) {
                __mmask8 fails = _mm256_cmp_ps_mask(_mm256_set1_ps(e->threshold), x, _CMP_LE_OQ);
                if (!fails) break;
                sets[e->tree] = _mm512_mask_and_epi64(sets[e->tree], fails, sets[e->tree],
                                                      _mm512_set1_epi64((long long)e->keep));
            }
        }
        if (f->leaf_width == 1) {
            add_exit_leaves_avx512(f, t0, n, sets, 1, acc, QS_LANES);
        } else {
            add_exit_leaves(f, t0, n, (const uint64_t *)(const void *)sets, QS_LANES, QS_LANES,
                            acc);
        }
    }
}

#define QS_WIDE_LANES 16

/* 16 rows: a tree's 16 leaf sets in two 512-bit vectors. */
__attribute__((target("avx512f,avx512vl,avx512cd"))) static void
score_group16_avx512(const astore_forest *f, const astore_quickscorer *qs, const float *rows,
                     size_t n_cols, double *acc) {
    __m512i sets[2u * QS_TREE_BLOCK];
    float column[QS_WIDE_LANES];
    for (uint32_t b = 0; b < qs->n_blocks; b++) {
        uint32_t t0 = b * QS_TREE_BLOCK;
        uint32_t n = f->n_trees - t0 < QS_TREE_BLOCK ? f->n_trees - t0 : QS_TREE_BLOCK;
        for (uint32_t k = 0; k < 2u * n; k++) sets[k] = _mm512_set1_epi64(-1);
        const uint32_t *starts = qs->starts + (size_t)b * qs->n_features;
        const uint32_t *nan_starts = qs->nan_starts + (size_t)b * qs->n_features;
        for (uint32_t j = 0; j < qs->n_features; j++) {
            for (int r = 0; r < QS_WIDE_LANES; r++) column[r] = rows[(size_t)r * n_cols + j];
            __m512 x = _mm512_loadu_ps(column);
            __mmask16 nan = _mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q);
            if (nan) {
                for (uint32_t k = nan_starts[j]; k < nan_starts[j + 1u]; k++) {
                    const astore_qs_entry *e = &qs->nan_entries[k];
                    __m512i keep = _mm512_set1_epi64((long long)e->keep);
                    __m512i *s = &sets[2u * e->tree];
                    s[0] = _mm512_mask_and_epi64(s[0], (__mmask8)nan, s[0], keep);
                    s[1] = _mm512_mask_and_epi64(s[1], (__mmask8)(nan >> 8), s[1], keep);
                }
            }
            for (const astore_qs_entry *e = qs->entries + starts[j];; e++) {
                __mmask16 fails = _mm512_cmp_ps_mask(_mm512_set1_ps(e->threshold), x, _CMP_LE_OQ);
                if (!fails) break;
                __m512i keep = _mm512_set1_epi64((long long)e->keep);
                __m512i *s = &sets[2u * e->tree];
                s[0] = _mm512_mask_and_epi64(s[0], (__mmask8)fails, s[0], keep);
                s[1] = _mm512_mask_and_epi64(s[1], (__mmask8)(fails >> 8), s[1], keep);
            }
        }
        if (f->leaf_width == 1) {
            add_exit_leaves_avx512(f, t0, n, sets, 2, acc, QS_WIDE_LANES);
        } else {
            add_exit_leaves(f, t0, n, (const uint64_t *)(const void *)sets, QS_WIDE_LANES,
                            QS_WIDE_LANES, acc);
        }
    }
}

#define QS_BLOCK_ROWS 64

/*
 * The frontier item (leaf, or node at the cut) each of 64 rows exits a tree at, as 64 bytes,
 * from the transposed sets (sets[i]: one bit per row for the tree's item i). The item-by-row
 * bit matrix (at most 64 x 64) is transposed 8 x 8 bits at a time: a byte permutation (VBMI)
 * gathers each 8 x 8 block into a 64-bit word, reversing its rows, and a GF(2) affine
 * transform (GFNI) against the identity transposes it -- byte r of the result then holds
 * items 8p..8p+7 of row r. A row's exit is in the first non-zero such byte, at its lowest bit
 * (every row keeps at least its exit item).
 */
__attribute__((target("avx512f,avx512bw,avx512vbmi,gfni"))) static inline __m512i exit_items64(
    const uint64_t *sets, uint32_t n_items) {
    static const uint8_t low_nibble[16] = {0, 0, 1, 0, 2, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0};
    uint8_t order[64];
    for (int q = 0; q < 8; q++) {
        for (int k = 0; k < 8; k++) order[8 * q + k] = (uint8_t)(8 * (7 - k) + q);
    }
    const __m512i gather = _mm512_loadu_si512(order);
    const __m512i identity = _mm512_set1_epi64(0x8040201008040201LL);
    const __m512i low_table =
        _mm512_broadcast_i32x4(_mm_loadu_si128((const __m128i *)(const void *)low_nibble));
    const __m512i nibble = _mm512_set1_epi8(0x0F);
    __m512i best = _mm512_setzero_si512(), base = _mm512_setzero_si512();
    for (uint32_t p = (n_items + 7u) / 8u; p-- > 0;) {
        uint32_t left = n_items - 8u * p;
        __mmask8 m = left >= 8u ? (__mmask8)0xFF : (__mmask8)((1u << left) - 1u);
        __m512i block = _mm512_permutexvar_epi8(gather, _mm512_maskz_loadu_epi64(m, sets + 8u * p));
        __m512i rows = _mm512_gf2p8affine_epi64_epi8(identity, block, 0);
        __mmask64 present = _mm512_test_epi8_mask(rows, rows);
        best = _mm512_mask_mov_epi8(best, present, rows);
        base = _mm512_mask_mov_epi8(base, present, _mm512_set1_epi8((char)(8u * p)));
    }
    __m512i lowest = _mm512_and_si512(best, _mm512_sub_epi8(_mm512_setzero_si512(), best));
    /* the bit's position: a nibble table, plus 4 when it is in the high nibble */
    __mmask64 high = _mm512_test_epi8_mask(lowest, _mm512_set1_epi8((char)0xF0));
    __m512i bit = _mm512_or_si512(
        _mm512_shuffle_epi8(low_table, _mm512_and_si512(lowest, nibble)),
        _mm512_add_epi8(
            _mm512_shuffle_epi8(low_table, _mm512_and_si512(_mm512_srli_epi16(lowest, 4), nibble)),
            _mm512_maskz_set1_epi8(high, 4)));
    return _mm512_add_epi8(base, bit);
}

/* Adds 64 rows' float32 values (indices into `values`: 64 x 32 bits) to acc in float64. */
__attribute__((target("avx512f"))) static inline void add_values64(const float *values,
                                                                  const uint32_t *index,
                                                                  double *acc) {
    for (int g = 0; g < 4; g++) {
        __m512 value = _mm512_i32gather_ps(_mm512_loadu_si512(index + 16 * g), values, 4);
        __m512d low = _mm512_cvtps_pd(_mm512_castps512_ps256(value));
        __m512d high = _mm512_cvtps_pd(
            _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(value), 1)));
        _mm512_storeu_pd(acc + 16 * g, _mm512_add_pd(_mm512_loadu_pd(acc + 16 * g), low));
        _mm512_storeu_pd(acc + 16 * g + 8, _mm512_add_pd(_mm512_loadu_pd(acc + 16 * g + 8), high));
    }
}

/* The exit leaves of 64 rows for trees [t0, t0 + n) whose items are all leaves (item i =
 * leaf i), one output: the 64 sums stay in eight registers across the trees. */
__attribute__((target("avx512f,avx512bw,avx512vbmi,gfni"))) static void add_exit_leaves64(
    const astore_forest *f, const astore_quickscorer *qs, uint32_t t0, uint32_t n,
    const uint64_t *alive, uint32_t front0, double *acc) {
    __m512d sum[8];
    uint8_t item[QS_BLOCK_ROWS];
    for (int v = 0; v < 8; v++) sum[v] = _mm512_loadu_pd(acc + 8 * v);
    for (uint32_t k = 0; k < n; k++) {
        uint32_t t = t0 + k, first = qs->frontier_start[t];
        _mm512_storeu_si512(item, exit_items64(alive + (first - front0),
                                               qs->frontier_start[t + 1u] - first));
        const __m512i leaf0 = _mm512_set1_epi32((int)f->trees[t].first_leaf);
        for (int g = 0; g < 4; g++) {
            __m512i index = _mm512_add_epi32(
                _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(const void *)(item + 16 * g))),
                leaf0);
            __m512 value = _mm512_i32gather_ps(index, f->leaves, 4);
            sum[2 * g] = _mm512_add_pd(sum[2 * g], _mm512_cvtps_pd(_mm512_castps512_ps256(value)));
            sum[2 * g + 1] = _mm512_add_pd(
                sum[2 * g + 1],
                _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(value), 1))));
        }
    }
    for (int v = 0; v < 8; v++) _mm512_storeu_pd(acc + 8 * v, sum[v]);
}

/*
 * 64 rows, transposed: alive[i] holds one bit per row for frontier item i of the block's
 * trees (the rows for which no failing node has cleared it). A node failing for the set S of
 * rows (t <= x, or x NaN and the node sends NaN right) clears S from the items of its left
 * subtree -- a run of at most 63 consecutive words -- for all 64 rows at once, where the
 * row-major walk does one operation per row group. Then, tree by tree: each row's exit item;
 * a leaf adds its value, a node at the cut (deep trees) walks on from there by nodes, then
 * adds its leaf -- so every row still adds its trees' leaves in tree order.
 */
__attribute__((target("avx512f,avx512vl,avx512cd,avx512bw,avx512vbmi,gfni"))) static void
score_block64_avx512(const astore_forest *f, const astore_quickscorer *qs, const float *rows,
                     size_t n_cols, double *acc) {
    uint64_t alive[QS_TREE_BLOCK * 64u];
    float column[QS_BLOCK_ROWS];
    uint32_t position[QS_BLOCK_ROWS];
    uint8_t item[QS_BLOCK_ROWS];
    size_t n_out = f->n_outputs;
    for (uint32_t b = 0; b < qs->n_blocks; b++) {
        uint32_t t0 = b * QS_TREE_BLOCK, n = block_trees(f, b);
        uint32_t front0 = qs->frontier_start[t0];
        uint32_t n_items = qs->frontier_start[t0 + n] - front0;
        for (uint32_t i = 0; i < n_items; i++) alive[i] = ~(uint64_t)0;
        const uint32_t *starts = qs->starts + (size_t)b * qs->n_features;
        const uint32_t *nan_starts = qs->nan_starts + (size_t)b * qs->n_features;
        for (uint32_t j = 0; j < qs->n_features; j++) {
            for (int r = 0; r < QS_BLOCK_ROWS; r++) column[r] = rows[(size_t)r * n_cols + j];
            __m512 x0 = _mm512_loadu_ps(column), x1 = _mm512_loadu_ps(column + 16);
            __m512 x2 = _mm512_loadu_ps(column + 32), x3 = _mm512_loadu_ps(column + 48);
            uint64_t nan = (uint64_t)_mm512_cmp_ps_mask(x0, x0, _CMP_UNORD_Q) |
                           (uint64_t)_mm512_cmp_ps_mask(x1, x1, _CMP_UNORD_Q) << 16 |
                           (uint64_t)_mm512_cmp_ps_mask(x2, x2, _CMP_UNORD_Q) << 32 |
                           (uint64_t)_mm512_cmp_ps_mask(x3, x3, _CMP_UNORD_Q) << 48;
            const astore_qs_entry *e = qs->entries + starts[j];
            const astore_qs_entry *nan_e = qs->nan_entries + nan_starts[j];
            const astore_qs_entry *nan_end = qs->nan_entries + nan_starts[j + 1u];
            for (int pass = 0; pass < 2; pass++) {
                for (;; e++) {
                    uint64_t fails;
                    if (pass == 0) {
                        __m512 t = _mm512_set1_ps(e->threshold);
                        fails = (uint64_t)_mm512_cmp_ps_mask(t, x0, _CMP_LE_OQ) |
                                (uint64_t)_mm512_cmp_ps_mask(t, x1, _CMP_LE_OQ) << 16 |
                                (uint64_t)_mm512_cmp_ps_mask(t, x2, _CMP_LE_OQ) << 32 |
                                (uint64_t)_mm512_cmp_ps_mask(t, x3, _CMP_LE_OQ) << 48;
                        if (fails == 0) break;
                    } else {
                        if (nan == 0 || nan_e == nan_end) break;
                        e = nan_e++;
                        fails = nan;
                    }
                    uint64_t cleared = ~e->keep; /* the left subtree's items, contiguous */
                    uint32_t lo = (uint32_t)__builtin_ctzll(cleared);
                    uint32_t count = (uint32_t)__builtin_popcountll(cleared);
                    uint64_t *target = alive + (qs->frontier_start[t0 + e->tree] - front0) + lo;
                    if (count <= 8u) { /* most nodes: plain stores forward to later loads */
                        for (uint32_t k = 0; k < count; k++) target[k] &= ~fails;
                        continue;
                    }
                    __m512i keep_rows = _mm512_set1_epi64((long long)~fails);
                    for (uint32_t k = 0; k < count; k += 8u) {
                        uint32_t left = count - k;
                        __mmask8 m = left >= 8u ? (__mmask8)0xFF : (__mmask8)((1u << left) - 1u);
                        __m512i v = _mm512_maskz_loadu_epi64(m, target + k);
                        _mm512_mask_storeu_epi64(target + k, m, _mm512_and_si512(v, keep_rows));
                    }
                }
            }
        }
        if (qs->cut == UINT32_MAX && n_out == 1) { /* every item a leaf: sums in registers */
            add_exit_leaves64(f, qs, t0, n, alive, front0, acc);
            continue;
        }
        for (uint32_t k = 0; k < n; k++) {
            uint32_t t = t0 + k;
            const astore_tree_entry *tree = &f->trees[t];
            uint32_t first = qs->frontier_start[t];
            _mm512_storeu_si512(item, exit_items64(alive + (first - front0),
                                                   qs->frontier_start[t + 1u] - first));
            for (int r = 0; r < QS_BLOCK_ROWS; r++) position[r] = qs->codes[first + item[r]];
            if (qs->cut != UINT32_MAX) astore_forest_walk_on(f, t, rows, n_cols, position);
            if (n_out == 1) {
                for (int r = 0; r < QS_BLOCK_ROWS; r++) {
                    position[r] = (position[r] & ~QS_LEAF_TAG) + tree->first_leaf;
                }
                add_values64(f->leaves, position, acc);
                continue;
            }
            const float *leaves = f->leaves + (size_t)tree->first_leaf * f->leaf_width;
            for (size_t r = 0; r < QS_BLOCK_ROWS; r++) {
                size_t leaf = position[r] & ~QS_LEAF_TAG;
                if (f->leaf_width == 1) {
                    acc[r * n_out + tree->output] += leaves[leaf];
                } else {
                    for (size_t o = 0; o < n_out; o++) acc[r * n_out + o] += leaves[leaf * n_out + o];
                }
            }
        }
    }
}

/* 8 rows with AVX2: a tree's 8 leaf sets in two 256-bit vectors. */
__attribute__((target("avx2"))) static void score_group_avx2(const astore_forest *f,
                                                              const astore_quickscorer *qs,
                                                              const float *rows, size_t n_cols,
                                                              double *acc) {
    __m256i sets[2u * QS_TREE_BLOCK];
    float column[QS_LANES];
    for (uint32_t b = 0; b < qs->n_blocks; b++) {
        uint32_t t0 = b * QS_TREE_BLOCK;
        uint32_t n = f->n_trees - t0 < QS_TREE_BLOCK ? f->n_trees - t0 : QS_TREE_BLOCK;
        for (uint32_t k = 0; k < 2u * n; k++) sets[k] = _mm256_set1_epi64x(-1);
        const uint32_t *starts = qs->starts + (size_t)b * qs->n_features;
        const uint32_t *nan_starts = qs->nan_starts + (size_t)b * qs->n_features;
        for (uint32_t j = 0; j < qs->n_features; j++) {
            for (int r = 0; r < QS_LANES; r++) column[r] = rows[(size_t)r * n_cols + j];
            __m256 x = _mm256_loadu_ps(column);
            /* all ones in the lanes that keep every leaf: not NaN */
            __m256i number = _mm256_castps_si256(_mm256_cmp_ps(x, x, _CMP_ORD_Q));
            if (_mm256_movemask_ps(_mm256_castsi256_ps(number)) != 0xFF) {
                __m256i lo = _mm256_cvtepi32_epi64(_mm256_castsi256_si128(number));
                __m256i hi = _mm256_cvtepi32_epi64(_mm256_extracti128_si256(number, 1));
                for (uint32_t k = nan_starts[j]; k < nan_starts[j + 1u]; k++) {
                    const astore_qs_entry *e = &qs->nan_entries[k];
                    __m256i keep = _mm256_set1_epi64x((long long)e->keep);
                    __m256i *s = &sets[2u * e->tree];
                    s[0] = _mm256_and_si256(s[0], _mm256_or_si256(keep, lo));
                    s[1] = _mm256_and_si256(s[1], _mm256_or_si256(keep, hi));
                }
            }
            for (const astore_qs_entry *e = qs->entries + starts[j];; e++) {
                /* lanes where the node holds (x < t) or x is NaN: nothing to clear */
                __m256i holds = _mm256_castps_si256(
                    _mm256_cmp_ps(_mm256_set1_ps(e->threshold), x, _CMP_NLE_UQ));
                if (_mm256_movemask_ps(_mm256_castsi256_ps(holds)) == 0xFF) break;
                __m256i lo = _mm256_cvtepi32_epi64(_mm256_castsi256_si128(holds));
                __m256i hi = _mm256_cvtepi32_epi64(_mm256_extracti128_si256(holds, 1));
                __m256i keep = _mm256_set1_epi64x((long long)e->keep);
                __m256i *s = &sets[2u * e->tree];
                s[0] = _mm256_and_si256(s[0], _mm256_or_si256(keep, lo));
                s[1] = _mm256_and_si256(s[1], _mm256_or_si256(keep, hi));
            }
        }
        add_exit_leaves(f, t0, n, (const uint64_t *)(const void *)sets, QS_LANES, QS_LANES, acc);
    }
}

#endif

#if defined(__aarch64__) && !defined(ASTORE_NO_SIMD)
#define QS_HAVE_NEON 1
#include <arm_neon.h>

/* A lane mask of 4 float32 comparisons widened to two 2-lane 64-bit masks. */
static inline uint64x2_t widen_low(uint32x4_t m) {
    return vreinterpretq_u64_s64(vmovl_s32(vreinterpret_s32_u32(vget_low_u32(m))));
}
static inline uint64x2_t widen_high(uint32x4_t m) {
    return vreinterpretq_u64_s64(vmovl_s32(vreinterpret_s32_u32(vget_high_u32(m))));
}

/* 4 rows with NEON (aarch64): a tree's 4 leaf sets in two 128-bit vectors. */
static void score_group_neon(const astore_forest *f, const astore_quickscorer *qs,
                             const float *rows, size_t n_cols, double *acc) {
    uint64x2_t sets[2u * QS_TREE_BLOCK];
    float column[4];
    for (uint32_t b = 0; b < qs->n_blocks; b++) {
        uint32_t t0 = b * QS_TREE_BLOCK, n = block_trees(f, b);
        for (uint32_t k = 0; k < 2u * n; k++) sets[k] = vdupq_n_u64(~(uint64_t)0);
        const uint32_t *starts = qs->starts + (size_t)b * qs->n_features;
        const uint32_t *nan_starts = qs->nan_starts + (size_t)b * qs->n_features;
        for (uint32_t j = 0; j < qs->n_features; j++) {
            for (int r = 0; r < 4; r++) column[r] = rows[(size_t)r * n_cols + j];
            float32x4_t x = vld1q_f32(column);
            uint32x4_t number = vceqq_f32(x, x); /* all ones where x is not NaN */
            if (vminvq_u32(number) == 0) {
                uint64x2_t low = widen_low(number), high = widen_high(number);
                for (uint32_t k = nan_starts[j]; k < nan_starts[j + 1u]; k++) {
                    const astore_qs_entry *e = &qs->nan_entries[k];
                    uint64x2_t keep = vdupq_n_u64(e->keep);
                    uint64x2_t *s = &sets[2u * e->tree];
                    s[0] = vandq_u64(s[0], vorrq_u64(keep, low));
                    s[1] = vandq_u64(s[1], vorrq_u64(keep, high));
                }
            }
            for (const astore_qs_entry *e = qs->entries + starts[j];; e++) {
                uint32x4_t fails = vcleq_f32(vdupq_n_f32(e->threshold), x); /* t <= x */
                if (vmaxvq_u32(fails) == 0) break;
                uint64x2_t cleared = vdupq_n_u64(~e->keep);
                uint64x2_t *s = &sets[2u * e->tree];
                s[0] = vbicq_u64(s[0], vandq_u64(cleared, widen_low(fails)));
                s[1] = vbicq_u64(s[1], vandq_u64(cleared, widen_high(fails)));
            }
        }
        add_exit_leaves(f, t0, n, (const uint64_t *)(const void *)sets, 4, 4, acc);
    }
}
#endif

/* Exit leaves of every tree, added into acc (n_rows x n_outputs, zeroed by the caller), for
 * the first rows: all of them on a CPU without a vector path, else whole groups of rows
 * (the caller walks the rest, which a single row's node walk does faster). Returns how many. */
size_t astore_qs_score_rows(const astore_forest *f, const float *x, size_t n_rows, size_t n_cols,
                            double *acc) {
    const astore_quickscorer *qs = f->quickscorer;
    size_t r = 0;
    size_t n_out = f->n_outputs;
#ifdef QS_HAVE_X86
    if (f->isa == ASTORE_ISA_AVX512 && qs->transposed) {
        for (; r + QS_BLOCK_ROWS <= n_rows; r += QS_BLOCK_ROWS) {
            score_block64_avx512(f, qs, x + r * n_cols, n_cols, acc + r * n_out);
        }
    }
    if (qs->cut != UINT32_MAX) return r; /* deep trees: the node walk takes the rest */
    if (f->isa == ASTORE_ISA_AVX512) {
        for (; r + QS_WIDE_LANES <= n_rows; r += QS_WIDE_LANES) {
            score_group16_avx512(f, qs, x + r * n_cols, n_cols, acc + r * n_out);
        }
    }
    if (f->isa == ASTORE_ISA_AVX512) {
        for (; r + QS_LANES <= n_rows; r += QS_LANES) {
            score_group_avx512(f, qs, x + r * n_cols, n_cols, acc + r * n_out);
        }
    } else if (f->isa == ASTORE_ISA_AVX2) {
        for (; r + QS_LANES <= n_rows; r += QS_LANES) {
            score_group_avx2(f, qs, x + r * n_cols, n_cols, acc + r * n_out);
        }
    }
    if (f->isa != ASTORE_ISA_SCALAR) return r;
#endif
#ifdef QS_HAVE_NEON
    if (f->isa == ASTORE_ISA_NEON) {
        for (; r + 4u <= n_rows; r += 4u) {
            score_group_neon(f, qs, x + r * n_cols, n_cols, acc + r * n_out);
        }
    }
#endif
    for (; r < n_rows; r++) score_row_scalar(f, qs, x + r * n_cols, acc + r * n_out);
    return r;
}
