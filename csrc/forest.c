/*
 * forest.c -- the FRST section: validation at load, the walk chosen at load, scoring.
 *
 * Load checks every count, offset, feature index and child reference, and that children
 * come after their parent (preorder), which rules out cycles; scoring then walks trees with
 * no checks. At load the forest also gets its walk (choose_walk): the bit-vector walk of
 * quickscorer.c when every tree has at most 64 leaves (measured faster on every such forest,
 * from 100 trees of depth 4 to 1,000 of depth 6), else the node walk here; and the widest
 * instruction set the CPU has (AVX-512 on nodes packed into 8 bytes, AVX2, scalar).
 *
 * The node walk takes rows in blocks: each tree is walked for every row of the block while
 * its nodes are hot in cache, and the independent walks of the rows overlap in the CPU. A
 * single row has no other rows to overlap with, so it walks 32 or 64 trees at once as vector
 * lanes instead. Sums are float64 in tree order, so results do not depend on the walk, the
 * instruction set, the block size or the threads.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "astore_internal.h"
#include "astore_math.h"

#define ROW_BLOCK 64
#define QS_CUT_DEPTH 6u /* deep trees: the levels above it (<= 63 nodes) go by bit vectors */
#define TREE_GROUPS 4 /* single-row AVX2 path: groups of 8 trees walked together */
#ifndef WIDE_TREE_GROUPS
#define WIDE_TREE_GROUPS 8 /* single-row AVX-512 path: groups of 16 trees walked together */
#endif

static bool aligned_in_place(const uint8_t *pointer, size_t alignment) {
    return astore_host_is_little_endian() && ((uintptr_t)pointer % alignment) == 0;
}

static astore_status check_array(const astore_section *section, uint32_t offset,
                                 uint64_t count, uint64_t item_size, const char *what,
                                 astore_error *err) {
    uint64_t bytes = count * item_size; /* count < 2^32 and item_size <= 64: no overflow */
    if (offset % 8u != 0 || offset < sizeof(astore_forest_header) || offset > section->length ||
        bytes > section->length - offset) {
        return astore_fail(err, ASTORE_ERR_FORMAT, section->offset,
                           "FRST %s array [%u, +%llu) lies outside the %llu-byte section or "
                           "is misaligned",
                           what, (unsigned)offset, (unsigned long long)bytes,
                           (unsigned long long)section->length);
    }
    return ASTORE_OK;
}

static astore_status validate_tree(const astore_forest *f, uint32_t t, const astore_section *s,
                                   uint32_t total_nodes, uint32_t total_leaves,
                                   uint32_t *next_set, astore_error *err) {
    const astore_tree_entry *tree = &f->trees[t];
    if (tree->n_leaves != tree->n_nodes + 1u || tree->first_node > total_nodes ||
        tree->n_nodes > total_nodes - tree->first_node || tree->first_leaf > total_leaves ||
        tree->n_leaves > total_leaves - tree->first_leaf || tree->reserved != 0) {
        return astore_fail(err, ASTORE_ERR_FORMAT, s->offset,
                           "tree %u: node range or leaf range out of bounds", (unsigned)t);
    }
    if (f->leaf_width == 1 ? tree->output >= f->n_outputs : tree->output != 0) {
        return astore_fail(err, ASTORE_ERR_FORMAT, s->offset,
                           "tree %u: output index %u out of range", (unsigned)t,
                           (unsigned)tree->output);
    }
    const astore_tree_node *nodes = f->nodes + tree->first_node;
    for (uint32_t i = 0; i < tree->n_nodes; i++) {
        uint32_t split = nodes[i].split;
        uint32_t child = nodes[i].child;
        bool left_leaf = (split & ASTORE_NODE_LEFT_LEAF) != 0;
        bool right_leaf = (split & ASTORE_NODE_RIGHT_LEAF) != 0;
        bool categorical = (split & ASTORE_NODE_CATEGORICAL) != 0;
        uint32_t set = 0;
        if (categorical) memcpy(&set, &nodes[i].threshold, sizeof set);
        const char *problem = NULL;
        if (categorical && f->n_sets == 0) problem = "categorical split but no CATS section";
        else if (categorical && set != *next_set)
            problem = "categorical split's set is not the next CATS set (node order)";
        else if (categorical && set >= f->n_sets) problem = "categorical split's set out of range";
        else if ((split & ASTORE_NODE_FEATURE_MASK) >= f->n_features) problem = "feature out of range";
        else if (!categorical && isnan(nodes[i].threshold)) problem = "NaN threshold";
        else if (!left_leaf && i + 1u >= tree->n_nodes) problem = "left child out of range";
        else if (left_leaf && right_leaf && (child >= tree->n_leaves - 1u)) problem = "leaf out of range";
        else if (left_leaf && !right_leaf && (child >= tree->n_leaves || i + 1u >= tree->n_nodes))
            problem = "child out of range";
        else if (!left_leaf && right_leaf && child >= tree->n_leaves) problem = "leaf out of range";
        else if (!left_leaf && !right_leaf && (child <= i + 1u || child >= tree->n_nodes))
            problem = "right child out of range or not after its parent";
        if (problem != NULL) {
            return astore_fail(err, ASTORE_ERR_FORMAT, s->offset,
                               "tree %u node %u: %s", (unsigned)t, (unsigned)i, problem);
        }
        if (categorical) (*next_set)++;
    }
    return ASTORE_OK;
}

/*
 * CATS: the header, the set table and the words (astore_format.h), in their one canonical
 * layout; used in place on a little-endian host with an aligned buffer, else decoded. The
 * section's length bounds every count before anything is allocated or read.
 */
static astore_status load_category_sets(const astore_container *container,
                                        const astore_section *section, astore_forest *f,
                                        astore_error *err) {
    const uint8_t *body = container->data + section->offset;
    astore_cursor cursor = astore_cursor_make(body, (size_t)section->length, section->offset);
    astore_cats_header h;
    if (!astore_read_u32(&cursor, &h.n_sets) || !astore_read_u32(&cursor, &h.n_words) ||
        !astore_read_u32(&cursor, &h.sets_offset) || !astore_read_u32(&cursor, &h.words_offset) ||
        !astore_read_u32(&cursor, &h.flags) ||
        !astore_read_bytes(&cursor, h.reserved, sizeof h.reserved)) {
        return astore_fail(err, ASTORE_ERR_FORMAT, section->offset,
                           "CATS section is %llu bytes, shorter than its 64-byte header",
                           (unsigned long long)section->length);
    }
    if (h.flags != 0) {
        return astore_fail(err, ASTORE_ERR_VERSION, section->offset + 16,
                           "CATS flags 0x%x unknown (written by a newer version?)",
                           (unsigned)h.flags);
    }
    if (!astore_all_zero(h.reserved, sizeof h.reserved)) {
        return astore_fail(err, ASTORE_ERR_FORMAT, section->offset + 20,
                           "CATS reserved header bytes are not zero");
    }
    uint64_t table_end = 64u + 8u * (uint64_t)h.n_sets;
    uint64_t end = (uint64_t)h.words_offset + 4u * (uint64_t)h.n_words;
    if (h.n_sets == 0 || h.sets_offset != 64u || h.words_offset != astore_align_up(table_end) ||
        end != section->length) {
        return astore_fail(err, ASTORE_ERR_FORMAT, section->offset,
                           "CATS header: %u sets at %u and %u words at %u do not fill the "
                           "%llu-byte section in its canonical layout (sets at 64, words at "
                           "the next multiple of 64)",
                           (unsigned)h.n_sets, (unsigned)h.sets_offset, (unsigned)h.n_words,
                           (unsigned)h.words_offset, (unsigned long long)section->length);
    }
    if (!astore_all_zero(body + table_end, h.words_offset - table_end)) {
        return astore_fail(err, ASTORE_ERR_FORMAT, section->offset + table_end,
                           "CATS padding before the words is not zero");
    }
    if (aligned_in_place(body, 8)) {
        f->sets = (const astore_category_set *)(const void *)(body + h.sets_offset);
        f->set_words = (const uint32_t *)(const void *)(body + h.words_offset);
    } else {
        size_t bytes = sizeof(astore_category_set) * h.n_sets + sizeof(uint32_t) * h.n_words;
        uint8_t *owned = malloc(bytes > 0 ? bytes : 1u);
        if (owned == NULL) {
            return astore_fail(err, ASTORE_ERR_NOMEM, ASTORE_NO_OFFSET, "out of memory");
        }
        f->owned_sets = owned;
        astore_category_set *sets = (astore_category_set *)(void *)owned;
        uint32_t *words = (uint32_t *)(void *)(owned + sizeof(astore_category_set) * h.n_sets);
        astore_cursor c = astore_cursor_make(body + 64, (size_t)(section->length - 64), 0);
        for (uint32_t k = 0; k < h.n_sets; k++) {
            bool ok = astore_read_u32(&c, &sets[k].first_word) &&
                      astore_read_u32(&c, &sets[k].n_words);
            (void)ok; /* inside the section: checked above */
        }
        c = astore_cursor_make(body + h.words_offset, 4u * (size_t)h.n_words, 0);
        for (uint32_t k = 0; k < h.n_words; k++) {
            bool ok = astore_read_u32(&c, &words[k]);
            (void)ok;
        }
        f->sets = sets;
        f->set_words = words;
    }
    uint64_t next_word = 0;
    for (uint32_t k = 0; k < h.n_sets; k++) {
        const astore_category_set *set = &f->sets[k];
        const char *problem = NULL;
        if (set->first_word != next_word) problem = "does not start where the set before ends";
        else if (set->n_words == 0 || set->n_words > ASTORE_CATS_MAX_WORDS)
            problem = "has no words or more than 2^19 (codes below 2^24)";
        else if ((uint64_t)set->first_word + set->n_words > h.n_words)
            problem = "runs past the words";
        else if (f->set_words[set->first_word + set->n_words - 1u] == 0)
            problem = "ends in a zero word (not its shortest form)";
        if (problem != NULL) {
            return astore_fail(err, ASTORE_ERR_FORMAT, section->offset + 64u + 8u * (uint64_t)k,
                               "CATS set %u %s", (unsigned)k, problem);
        }
        next_word += set->n_words;
    }
    if (next_word != h.n_words) {
        return astore_fail(err, ASTORE_ERR_FORMAT, section->offset + 4,
                           "CATS sets use %llu words, its header says %u",
                           (unsigned long long)next_word, (unsigned)h.n_words);
    }
    f->n_sets = h.n_sets;
    return ASTORE_OK;
}

/* Decodes the arrays into `owned`, laid out as base scores, trees, nodes, leaves (the
 * doubles first, so every array is aligned for its type). */
static void decode_arrays(const uint8_t *body, const astore_forest_header *h, void *owned,
                          astore_forest *f) {
    uint8_t *cursor = owned;
    double *base = (double *)(void *)cursor;
    cursor += sizeof(double) * h->n_outputs;
    astore_tree_entry *trees = (astore_tree_entry *)(void *)cursor;
    cursor += sizeof(astore_tree_entry) * h->n_trees;
    astore_tree_node *nodes = (astore_tree_node *)(void *)cursor;
    cursor += sizeof(astore_tree_node) * h->n_nodes;
    float *leaves = (float *)(void *)cursor;
    for (uint32_t t = 0; t < h->n_trees; t++) {
        astore_cursor c = astore_cursor_make(body + h->trees_offset + 24u * t, 24, 0);
        bool ok = astore_read_u32(&c, &trees[t].first_node) &&
                  astore_read_u32(&c, &trees[t].n_nodes) &&
                  astore_read_u32(&c, &trees[t].first_leaf) &&
                  astore_read_u32(&c, &trees[t].n_leaves) &&
                  astore_read_u32(&c, &trees[t].output) && astore_read_u32(&c, &trees[t].reserved);
        (void)ok; /* bounds were checked by check_array */
    }
    for (uint32_t i = 0; i < h->n_nodes; i++) {
        astore_cursor c = astore_cursor_make(body + h->nodes_offset + 12u * i, 12, 0);
        bool ok = astore_read_u32(&c, &nodes[i].split) &&
                  astore_read_f32(&c, &nodes[i].threshold) && astore_read_u32(&c, &nodes[i].child);
        (void)ok;
    }
    for (uint32_t k = 0; k < h->n_outputs; k++) {
        astore_cursor c = astore_cursor_make(body + h->base_offset + 8u * k, 8, 0);
        bool ok = astore_read_f64(&c, &base[k]);
        (void)ok;
    }
    size_t n_leaf_values = (size_t)h->n_leaves * h->leaf_width;
    for (size_t i = 0; i < n_leaf_values; i++) {
        astore_cursor c = astore_cursor_make(body + h->leaves_offset + 4u * i, 4, 0);
        bool ok = astore_read_f32(&c, &leaves[i]);
        (void)ok;
    }
    f->trees = trees;
    f->nodes = nodes;
    f->base_score = base;
    f->leaves = leaves;
}

/* Pass 1: the 64-byte header, and where its four arrays lie. */
static astore_status read_header(const astore_section *section, astore_cursor *cursor,
                                 astore_forest_header *h, astore_error *err) {
    if (!astore_read_u32(cursor, &h->n_trees) || !astore_read_u32(cursor, &h->n_features) ||
        !astore_read_u32(cursor, &h->n_outputs) || !astore_read_u32(cursor, &h->leaf_width) ||
        !astore_read_u32(cursor, &h->post_transform) ||
        !astore_read_u32(cursor, &h->aggregation) || !astore_read_u32(cursor, &h->n_nodes) ||
        !astore_read_u32(cursor, &h->n_leaves) || !astore_read_u32(cursor, &h->trees_offset) ||
        !astore_read_u32(cursor, &h->nodes_offset) ||
        !astore_read_u32(cursor, &h->leaves_offset) ||
        !astore_read_u32(cursor, &h->base_offset) || !astore_read_u32(cursor, &h->flags) ||
        !astore_read_bytes(cursor, h->reserved, sizeof h->reserved)) {
        return astore_fail(err, ASTORE_ERR_FORMAT, section->offset,
                           "FRST section is %llu bytes, shorter than its 64-byte header",
                           (unsigned long long)section->length);
    }
    if (!astore_all_zero(h->reserved, sizeof h->reserved)) {
        return astore_fail(err, ASTORE_ERR_FORMAT, section->offset + 52,
                           "FRST reserved header bytes are not zero");
    }
    if (h->n_trees == 0 || h->n_features == 0 || h->n_features > ASTORE_NODE_FEATURE_MASK ||
        h->n_outputs == 0 || h->n_outputs > 65536u) {
        return astore_fail(err, ASTORE_ERR_FORMAT, section->offset,
                           "FRST header: %u trees, %u features, %u outputs is not a forest",
                           (unsigned)h->n_trees, (unsigned)h->n_features,
                           (unsigned)h->n_outputs);
    }
    if (h->leaf_width != 1 && h->leaf_width != h->n_outputs) {
        return astore_fail(err, ASTORE_ERR_FORMAT, section->offset + 12,
                           "FRST leaf width %u must be 1 or the output count %u",
                           (unsigned)h->leaf_width, (unsigned)h->n_outputs);
    }
    if (h->flags != 0) {
        return astore_fail(err, ASTORE_ERR_VERSION, section->offset + 48,
                           "FRST flags 0x%x unknown (written by a newer version?)",
                           (unsigned)h->flags);
    }
    if (h->post_transform > ASTORE_POST_SOFTMAX || h->aggregation > ASTORE_AGGREGATE_MEAN) {
        return astore_fail(err, ASTORE_ERR_UNSUPPORTED, section->offset + 16,
                           "FRST post-transform %u or aggregation %u unknown",
                           (unsigned)h->post_transform, (unsigned)h->aggregation);
    }
    astore_status status;
    if ((status = check_array(section, h->trees_offset, h->n_trees, 24, "tree", err)) ||
        (status = check_array(section, h->nodes_offset, h->n_nodes, 12, "node", err)) ||
        (status = check_array(section, h->leaves_offset, (uint64_t)h->n_leaves * h->leaf_width,
                              4, "leaf", err)) ||
        (status = check_array(section, h->base_offset, h->n_outputs, 8, "base score", err))) {
        return status;
    }
    if ((uint64_t)h->n_leaves * h->leaf_width > UINT32_MAX) {
        return astore_fail(err, ASTORE_ERR_FORMAT, section->offset, "FRST too many leaf values");
    }
    return ASTORE_OK;
}

/*
 * One byte representation per forest: the four arrays follow the header in the order trees,
 * nodes, leaves, base scores, each at the first multiple of 64 after what precedes it, with
 * zero bytes between, and the section ends with the base scores.
 */
static astore_status check_canonical_layout(const uint8_t *body, const astore_section *section,
                                            const astore_forest_header *h, astore_error *err) {
    static const char *const names[4] = {"tree", "node", "leaf", "base score"};
    const uint32_t offsets[4] = {h->trees_offset, h->nodes_offset, h->leaves_offset,
                                 h->base_offset};
    const uint64_t sizes[4] = {24u * (uint64_t)h->n_trees, 12u * (uint64_t)h->n_nodes,
                               4u * (uint64_t)h->n_leaves * h->leaf_width,
                               8u * (uint64_t)h->n_outputs};
    uint64_t end = sizeof(astore_forest_header);
    for (int k = 0; k < 4; k++) {
        if (offsets[k] != astore_align_up(end)) {
            return astore_fail(err, ASTORE_ERR_FORMAT, section->offset + 32 + 4u * (unsigned)k,
                               "FRST is not canonical: the %s array starts at %u, not at %llu "
                               "(arrays follow each other at the next multiple of 64)",
                               names[k], (unsigned)offsets[k],
                               (unsigned long long)astore_align_up(end));
        }
        /* offsets[k] lies inside the section (check_array), so the gap does too */
        if (!astore_all_zero(body + end, offsets[k] - end)) {
            return astore_fail(err, ASTORE_ERR_FORMAT, section->offset + end,
                               "FRST padding before the %s array is not zero", names[k]);
        }
        end = offsets[k] + sizes[k];
    }
    if (section->length != end) {
        return astore_fail(err, ASTORE_ERR_FORMAT, section->offset,
                           "FRST is not canonical: the section is %llu bytes, its base scores "
                           "end at %llu",
                           (unsigned long long)section->length, (unsigned long long)end);
    }
    return ASTORE_OK;
}

/* Pass 2: the arrays, used in place (little-endian host, aligned buffer) or decoded. */
static astore_status place_arrays(const uint8_t *body, const astore_forest_header *h,
                                  astore_forest *f, astore_error *err) {
    if (aligned_in_place(body, 8)) {
        f->trees = (const astore_tree_entry *)(const void *)(body + h->trees_offset);
        f->nodes = (const astore_tree_node *)(const void *)(body + h->nodes_offset);
        f->leaves = (const float *)(const void *)(body + h->leaves_offset);
        f->base_score = (const double *)(const void *)(body + h->base_offset);
        return ASTORE_OK;
    }
    size_t bytes = sizeof(double) * h->n_outputs + sizeof(astore_tree_entry) * h->n_trees +
                   sizeof(astore_tree_node) * h->n_nodes +
                   sizeof(float) * (size_t)h->n_leaves * h->leaf_width;
    f->owned = malloc(bytes);
    if (f->owned == NULL) {
        return astore_fail(err, ASTORE_ERR_NOMEM, ASTORE_NO_OFFSET, "out of memory");
    }
    decode_arrays(body, h, f->owned, f);
    return ASTORE_OK;
}

/*
 * One byte representation per tree: a walk in preorder (a node, its left subtree, its right
 * subtree) meets split node 0, 1, 2, ... and leaf 0, 1, 2, ... in that order, each once, so
 * no two nodes share a subtree or a leaf and the leaves are in depth-first order.
 * validate_tree has checked every index; `pending` holds up to tree->n_nodes entries.
 */
static astore_status check_canonical_tree(const astore_forest *f, uint32_t t,
                                          const astore_section *s, uint32_t *pending,
                                          astore_error *err) {
    const astore_tree_entry *tree = &f->trees[t];
    const astore_tree_node *nodes = f->nodes + tree->first_node;
    uint32_t next_node = 0, next_leaf = 0, depth = 0;
    const char *problem = NULL;
    uint32_t at = 0;
    bool visit = tree->n_nodes > 0;
    if (!visit) next_leaf = 1; /* a tree that is one leaf */
    while (visit && problem == NULL) {
        if (at != next_node) {
            problem = "split node reached out of preorder (a shared subtree?)";
            break;
        }
        next_node++;
        uint32_t split = nodes[at].split, child = nodes[at].child;
        if ((split & ASTORE_NODE_LEFT_LEAF) == 0) {
            pending[depth++] = at; /* its right child comes after the left subtree */
            at++;
            continue;
        }
        if (child != next_leaf) {
            problem = "leaf out of depth-first order (a shared leaf?)";
            break;
        }
        next_leaf++;
        if ((split & ASTORE_NODE_RIGHT_LEAF) == 0) { /* the right child is node at + 1 */
            at++;
            continue;
        }
        next_leaf++; /* the right leaf, child + 1 */
        visit = false;
        while (depth > 0 && !visit && problem == NULL) { /* the right child of the nearest pending ancestor */
            uint32_t parent = pending[--depth];
            uint32_t right = nodes[parent].child;
            if ((nodes[parent].split & ASTORE_NODE_RIGHT_LEAF) == 0) {
                at = right;
                visit = true;
            } else if (right != next_leaf) {
                problem = "leaf out of depth-first order (a shared leaf?)";
            } else {
                next_leaf++;
            }
        }
    }
    if (problem == NULL && (next_node != tree->n_nodes || next_leaf != tree->n_leaves)) {
        problem = "not every node and leaf is reached once";
    }
    if (problem != NULL) {
        return astore_fail(err, ASTORE_ERR_FORMAT, s->offset, "tree %u is not canonical: %s",
                           (unsigned)t, problem);
    }
    return ASTORE_OK;
}

/* Pass 3: every tree, and that the trees use exactly the nodes and leaves there are, each
 * tree's ranges following the one before. */
static astore_status validate_trees(const astore_forest *f, const astore_section *section,
                                    const astore_forest_header *h, astore_error *err) {
    uint64_t nodes_seen = 0, leaves_seen = 0;
    uint32_t next_set = 0;
    uint32_t *pending = malloc(sizeof(uint32_t) * ((size_t)h->n_nodes + 1u));
    if (pending == NULL) {
        return astore_fail(err, ASTORE_ERR_NOMEM, ASTORE_NO_OFFSET, "out of memory");
    }
    for (uint32_t t = 0; t < h->n_trees; t++) {
        astore_status status =
            validate_tree(f, t, section, h->n_nodes, h->n_leaves, &next_set, err);
        if (status == ASTORE_OK &&
            (f->trees[t].first_node != nodes_seen || f->trees[t].first_leaf != leaves_seen)) {
            status = astore_fail(err, ASTORE_ERR_FORMAT, section->offset,
                                 "tree %u is not canonical: its nodes start at %u and its "
                                 "leaves at %u, not where the tree before ends (%llu, %llu)",
                                 (unsigned)t, (unsigned)f->trees[t].first_node,
                                 (unsigned)f->trees[t].first_leaf,
                                 (unsigned long long)nodes_seen,
                                 (unsigned long long)leaves_seen);
        }
        if (status == ASTORE_OK) status = check_canonical_tree(f, t, section, pending, err);
        if (status != ASTORE_OK) {
            free(pending);
            return status;
        }
        nodes_seen += f->trees[t].n_nodes;
        leaves_seen += f->trees[t].n_leaves;
    }
    free(pending);
    if (nodes_seen != h->n_nodes || leaves_seen != h->n_leaves) {
        return astore_fail(err, ASTORE_ERR_FORMAT, section->offset,
                           "FRST trees use %llu nodes and %llu leaves, header says %u and %u",
                           (unsigned long long)nodes_seen, (unsigned long long)leaves_seen,
                           (unsigned)h->n_nodes, (unsigned)h->n_leaves);
    }
    if (next_set != f->n_sets) {
        return astore_fail(err, ASTORE_ERR_FORMAT, section->offset,
                           "CATS holds %u sets but FRST has %u categorical splits",
                           (unsigned)f->n_sets, (unsigned)next_set);
    }
    return ASTORE_OK;
}

/*
 * The AVX-512 walk reads nodes packed into 8 bytes at load (astore_forest.packed): the
 * threshold's bits, then a word holding the feature (bits 0-11), RIGHT_LEAF (12), LEFT_LEAF
 * (13), DEFAULT_LEFT (14) and the child (15-31) -- one 64-bit gather element per visit
 * instead of three 32-bit ones. Forests whose features or children do not fit keep the
 * 12-byte walk.
 */
#define PACKED_FEATURE_BITS 12u
#define PACKED_CHILD_SHIFT 15u

static bool pack_nodes(astore_forest *f) {
    if (f->n_features > (1u << PACKED_FEATURE_BITS)) return false;
    for (uint32_t i = 0; i < f->n_nodes_total; i++) {
        if (f->nodes[i].child >= (1u << (32u - PACKED_CHILD_SHIFT))) return false;
    }
    uint64_t *packed = malloc(sizeof(uint64_t) * ((size_t)f->n_nodes_total + 1u));
    if (packed == NULL) return false;
    for (uint32_t i = 0; i < f->n_nodes_total; i++) {
        const astore_tree_node *node = &f->nodes[i];
        uint32_t bits;
        memcpy(&bits, &node->threshold, sizeof bits);
        uint32_t word = (node->split & ASTORE_NODE_FEATURE_MASK) |
                        ((node->split >> 28) & 7u) << PACKED_FEATURE_BITS |
                        node->child << PACKED_CHILD_SHIFT;
        packed[i] = (uint64_t)bits | (uint64_t)word << 32;
    }
    f->packed = packed;
    return true;
}

/* Above this, the AVX2 walk does not copy the sets and a categorical forest walks scalar. */
#define PADDED_SETS_MAX_BYTES ((size_t)8u << 20)

/*
 * The sets of a categorical forest for the AVX2 walk: every set copied into a slot of the
 * longest set's width, zero words after its own, so set s starts at s * padded_width and
 * every code below 32 * padded_width reads a word of its own set -- one gather per step
 * instead of three. False when the copy would pass PADDED_SETS_MAX_BYTES or memory is short.
 */
static bool pad_sets(astore_forest *f) {
    uint32_t width = 1;
    for (uint32_t s = 0; s < f->n_sets; s++) {
        if (f->sets[s].n_words > width) width = f->sets[s].n_words;
    }
    size_t words = (size_t)f->n_sets * width;
    if (words > PADDED_SETS_MAX_BYTES / sizeof(uint32_t)) return false;
    uint32_t *padded = calloc(words, sizeof(uint32_t));
    if (padded == NULL) return false;
    for (uint32_t s = 0; s < f->n_sets; s++) {
        memcpy(padded + (size_t)s * width, f->set_words + f->sets[s].first_word,
               sizeof(uint32_t) * f->sets[s].n_words);
    }
    f->padded_words = padded;
    f->padded_width = width;
    return true;
}

/* The widest instruction set this CPU gives the tree walks. */
static astore_tree_isa cpu_tree_isa(void) {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__)) && !defined(ASTORE_NO_SIMD)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl")) {
        return ASTORE_ISA_AVX512;
    }
    if (__builtin_cpu_supports("avx2")) return ASTORE_ISA_AVX2;
#elif defined(__aarch64__) && !defined(ASTORE_NO_SIMD)
    return ASTORE_ISA_NEON; /* every aarch64 CPU has Advanced SIMD */
#endif
    return ASTORE_ISA_SCALAR;
}

/*
 * The walk and instruction set, chosen once at load. ASTORE_TREE_WALK, when set, overrides
 * the choice for diagnosis and for the tests that prove every walk gives the same bits:
 * "nodes" or "quickscorer" (taken only where it applies), optionally followed by "-scalar",
 * "-avx2" or "-avx512" (never wider than the CPU has).
 */
static astore_status choose_walk(astore_forest *f, astore_error *err) {
    f->isa = cpu_tree_isa();
    /* categorical splits: the node walk (bit vectors and packed AVX-512 nodes hold
     * thresholds only), scalar or AVX2 */
    f->walk = f->n_sets == 0 && astore_qs_applies(f) ? ASTORE_WALK_QUICKSCORER
                                                     : ASTORE_WALK_NODES;
    if (f->n_sets > 0 && f->isa == ASTORE_ISA_AVX512) f->isa = ASTORE_ISA_AVX2;
    const char *forced = getenv("ASTORE_TREE_WALK");
    if (forced != NULL && forced[0] != '\0') {
        if (strncmp(forced, "nodes", 5) == 0) f->walk = ASTORE_WALK_NODES;
        const char *isa = strchr(forced, '-');
        if (isa != NULL) {
            astore_tree_isa cap = strcmp(isa, "-scalar") == 0 ? ASTORE_ISA_SCALAR
                                  : strcmp(isa, "-avx2") == 0 ? ASTORE_ISA_AVX2
                                                               : ASTORE_ISA_AVX512;
            if (f->isa == ASTORE_ISA_NEON ? cap == ASTORE_ISA_SCALAR : cap < f->isa) {
                f->isa = cap;
            }
        }
    }
    if (f->isa == ASTORE_ISA_AVX512 && !pack_nodes(f)) f->isa = ASTORE_ISA_AVX2;
    if (f->n_sets > 0 && f->isa == ASTORE_ISA_AVX2 && !pad_sets(f)) f->isa = ASTORE_ISA_SCALAR;
    if (f->walk == ASTORE_WALK_QUICKSCORER) {
        return astore_qs_build(f, UINT32_MAX, &f->quickscorer, err);
    }
    /* deep trees: bit vectors for their top 6 levels, then nodes -- where the CPU has the
     * 64-row transposed walk (measured faster than the node walk on M2 and M3 there) */
    bool forced_nodes = forced != NULL && strncmp(forced, "nodes", 5) == 0;
    if (!forced_nodes && f->isa == ASTORE_ISA_AVX512 && astore_qs_transposed_cpu() &&
        astore_qs_lists_fit(f)) {
        f->walk = ASTORE_WALK_QUICKSCORER_NODES;
        return astore_qs_build(f, QS_CUT_DEPTH, &f->quickscorer, err);
    }
    return ASTORE_OK;
}

astore_status astore_forest_load(const astore_container *container,
                                 const astore_section *section, const astore_section *cats,
                                 astore_forest *f, astore_error *err) {
    memset(f, 0, sizeof *f);
    const uint8_t *body = container->data + section->offset;
    astore_cursor cursor = astore_cursor_make(body, (size_t)section->length, section->offset);
    astore_forest_header h;
    astore_status status = read_header(section, &cursor, &h, err);
    if (status == ASTORE_OK) status = check_canonical_layout(body, section, &h, err);
    if (status != ASTORE_OK) return status;
    f->n_trees = h.n_trees;
    f->n_nodes_total = h.n_nodes;
    f->n_features = h.n_features;
    f->n_outputs = h.n_outputs;
    f->leaf_width = h.leaf_width;
    f->post_transform = h.post_transform;
    f->aggregation = h.aggregation;
    status = place_arrays(body, &h, f, err);
    if (status == ASTORE_OK && cats != NULL) status = load_category_sets(container, cats, f, err);
    if (status == ASTORE_OK) status = validate_trees(f, section, &h, err);
    if (status == ASTORE_OK) status = choose_walk(f, err);
    if (status != ASTORE_OK) astore_forest_release(f);
    return status;
}

void astore_forest_release(astore_forest *f) {
    free(f->owned);
    f->owned = NULL;
    free(f->owned_sets);
    f->owned_sets = NULL;
    free(f->packed);
    f->packed = NULL;
    free(f->padded_words);
    f->padded_words = NULL;
    astore_qs_release(f->quickscorer);
    f->quickscorer = NULL;
}

const char *astore_forest_walk_name(const astore_forest *f) {
    static const char *const names[3][4] = {
        {"nodes-scalar", "nodes-avx2", "nodes-avx512", "nodes-scalar"},
        {"quickscorer-scalar", "quickscorer-avx2", "quickscorer-avx512", "quickscorer-neon"},
        {"quickscorer+nodes-scalar", "quickscorer+nodes-avx2", "quickscorer+nodes-avx512",
         "quickscorer+nodes-neon"}};
    return names[f->walk][f->isa];
}

size_t astore_forest_walk_bytes(const astore_forest *f) {
    return astore_qs_bytes(f->quickscorer) +
           (f->packed != NULL ? sizeof(uint64_t) * ((size_t)f->n_nodes_total + 1u) : 0u) +
           (f->padded_words != NULL
                ? sizeof(uint32_t) * (size_t)f->n_sets * f->padded_width : 0u);
}

#define LEAF_TAG 0x80000000u

/*
 * What a step does, by (go_left, LEFT_LEAF, RIGHT_LEAF) -- see the child table in
 * astore_format.h: bit 0 "go to node i+1" (else to `child`), bit 1 "add 1 to child" (the right
 * leaf of a node whose two children are leaves), LEAF_TAG "the target is a leaf".
 */
static const uint32_t step_code[8] = {
    /* right:  go_left=0 */
    0u,                  /* ll=0 rl=0: node child        */
    LEAF_TAG,            /* ll=0 rl=1: leaf child        */
    1u,                  /* ll=1 rl=0: node i+1          */
    LEAF_TAG | 2u,       /* ll=1 rl=1: leaf child+1      */
    /* left:   go_left=1 */
    1u,                  /* ll=0 rl=0: node i+1          */
    1u,                  /* ll=0 rl=1: node i+1          */
    LEAF_TAG,            /* ll=1 rl=0: leaf child        */
    LEAF_TAG,            /* ll=1 rl=1: leaf child        */
};

/*
 * One step down for every row of a block at once. pos[r] is a split node of the tree, or
 * LEAF_TAG | leaf once the row has reached a leaf (then it stays). The step has no
 * data-dependent branch, so the walks of the block's rows overlap in the CPU instead of
 * stalling on mispredicted comparisons. Returns non-zero when every row is at a leaf.
 */
static inline uint32_t step_block(const astore_tree_node *nodes, const float *rows, size_t n_cols,
                                  size_t block, uint32_t *pos) {
    uint32_t all_done = LEAF_TAG;
    for (size_t r = 0; r < block; r++) {
        uint32_t p = pos[r];
        uint32_t done = 0u - (p >> 31);  /* all ones once at a leaf */
        uint32_t i = p & ~done;           /* a finished row reads node 0 (hot) and keeps p */
        uint32_t split = nodes[i].split;
        float threshold = nodes[i].threshold;
        uint32_t child = nodes[i].child;
        float x = rows[r * n_cols + (split & ASTORE_NODE_FEATURE_MASK)];
        uint32_t go_left = (uint32_t)(x < threshold) | ((uint32_t)(x != x) & (split >> 30));
        uint32_t code = step_code[(go_left << 2) | ((split >> 28) & 3u)];
        uint32_t successor = 0u - (code & 1u);
        uint32_t target = ((i + 1u) & successor) | ((child + (code >> 1 & 1u)) & ~successor);
        p = (p & done) | ((target | (code & LEAF_TAG)) & ~done);
        pos[r] = p;
        all_done &= p;
    }
    return all_done;
}

/* Whether a categorical split sends the non-NaN x left: x is an integer code whose bit is
 * set in the node's set (docs/FORMAT.md, "CATS"). */
static inline uint32_t in_category_set(const astore_forest *f, const astore_tree_node *node,
                                       float x) {
    uint32_t index;
    memcpy(&index, &node->threshold, sizeof index);
    const astore_category_set *set = &f->sets[index];
    if (!(x >= 0.0f && x < (float)(32u * set->n_words))) return 0u; /* NaN, negative, beyond */
    uint32_t code = (uint32_t)x;
    if ((float)code != x) return 0u; /* a fraction is no code */
    return (f->set_words[set->first_word + code / 32u] >> (code % 32u)) & 1u;
}

/* step_block for forests with categorical splits, without vectors: each node's decision by
 * its kind, finished rows skipped. Measured faster here than a branch-free step like
 * step_block's, which must read a set and a word at every node. */
static uint32_t step_block_categorical(const astore_forest *f, const astore_tree_node *nodes,
                                       const float *rows, size_t n_cols, size_t block,
                                       uint32_t *pos) {
    uint32_t all_done = LEAF_TAG;
    for (size_t r = 0; r < block; r++) {
        uint32_t p = pos[r];
        if (p & LEAF_TAG) continue;
        const astore_tree_node *node = &nodes[p];
        uint32_t split = node->split;
        float x = rows[r * n_cols + (split & ASTORE_NODE_FEATURE_MASK)];
        uint32_t go_left;
        if (x != x) go_left = (split >> 30) & 1u;
        else if (split & ASTORE_NODE_CATEGORICAL) go_left = in_category_set(f, node, x);
        else go_left = (uint32_t)(x < node->threshold);
        uint32_t code = step_code[(go_left << 2) | ((split >> 28) & 3u)];
        uint32_t target = (code & 1u) ? p + 1u : node->child + (code >> 1 & 1u);
        p = target | (code & LEAF_TAG);
        pos[r] = p;
        all_done &= p;
    }
    return all_done;
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__)) && !defined(ASTORE_NO_SIMD)
#define ASTORE_HAVE_AVX2_PATH 1
#include <immintrin.h>

/*
 * The step of step_block for 8 walks per instruction (AVX2 gathers). Walk k is at p[k] in the
 * node array starting `first_word[k]` 32-bit words into `nodes` (3 words a node) and reads its
 * features at x + column_base[k]. Decisions are exact float comparisons, so results are
 * bit-identical to the scalar step. Used only when the CPU has AVX2 (checked once).
 */
/*
 * The decision at 8 walks of a forest with categorical splits: at lanes on a CATEGORICAL
 * node, whether the value is a code of the node's set (in_category_set), else `less`. Sets
 * are read from their padded copy (pad_sets): every lane gathers one word of its set (set 0
 * at a numeric node, word 0 when the value is no code), in bounds.
 */
__attribute__((target("avx2"))) static inline __m256i avx2_category_decision(
    const astore_forest *f, __m256i split, __m256 threshold, __m256 value, __m256i less) {
    __m256i categorical = _mm256_srai_epi32(split, 31);
    __m256i set = _mm256_and_si256(_mm256_castps_si256(threshold), categorical);
    __m256i first = _mm256_mullo_epi32(set, _mm256_set1_epi32((int)f->padded_width));
    __m256 limit = _mm256_set1_ps((float)(32u * f->padded_width));
    __m256 in_range = _mm256_and_ps(_mm256_cmp_ps(value, _mm256_setzero_ps(), _CMP_GE_OQ),
                                    _mm256_cmp_ps(value, limit, _CMP_LT_OQ));
    __m256 code_value = _mm256_and_ps(value, in_range); /* +0.0 where no code */
    __m256i code = _mm256_cvttps_epi32(code_value);
    __m256 exact = _mm256_cmp_ps(_mm256_cvtepi32_ps(code), code_value, _CMP_EQ_OQ);
    __m256i word = _mm256_i32gather_epi32((const int *)(const void *)f->padded_words,
                                          _mm256_add_epi32(first, _mm256_srli_epi32(code, 5)), 4);
    __m256i bit = _mm256_srlv_epi32(word, _mm256_and_si256(code, _mm256_set1_epi32(31)));
    __m256i member = _mm256_and_si256(
        _mm256_cmpeq_epi32(_mm256_and_si256(bit, _mm256_set1_epi32(1)), _mm256_set1_epi32(1)),
        _mm256_castps_si256(_mm256_and_ps(in_range, exact)));
    return _mm256_blendv_epi8(less, member, categorical);
}

__attribute__((target("avx2"))) static inline __m256i avx2_advance(const astore_tree_node *nodes,
                                                                    const float *x, __m256i p,
                                                                    __m256i first_word,
                                                                    __m256i column_base,
                                                                    const astore_forest *sets) {
    const int *words = (const int *)(const void *)nodes;
    const float *floats = (const float *)(const void *)nodes;
    const __m256i table = _mm256_setr_epi32((int)step_code[0], (int)step_code[1], (int)step_code[2],
                                            (int)step_code[3], (int)step_code[4], (int)step_code[5],
                                            (int)step_code[6], (int)step_code[7]);
    const __m256i one = _mm256_set1_epi32(1);
    __m256i done = _mm256_srai_epi32(p, 31);
    __m256i i = _mm256_andnot_si256(done, p);
    __m256i word = _mm256_add_epi32(first_word, _mm256_add_epi32(_mm256_add_epi32(i, i), i));
    __m256i split = _mm256_i32gather_epi32(words, word, 4);
    __m256 threshold = _mm256_i32gather_ps(floats + 1, word, 4);
    __m256i child = _mm256_i32gather_epi32(words + 2, word, 4);
    __m256i column = _mm256_add_epi32(
        _mm256_and_si256(split, _mm256_set1_epi32((int)ASTORE_NODE_FEATURE_MASK)), column_base);
    __m256 value = _mm256_i32gather_ps(x, column, 4);
    __m256i less = _mm256_castps_si256(_mm256_cmp_ps(value, threshold, _CMP_LT_OQ));
    if (sets != NULL) less = avx2_category_decision(sets, split, threshold, value, less);
    __m256 nan = _mm256_cmp_ps(value, value, _CMP_UNORD_Q);
    __m256i default_left = _mm256_srai_epi32(_mm256_slli_epi32(split, 1), 31);
    __m256i go_left = _mm256_or_si256(less,
                                      _mm256_and_si256(_mm256_castps_si256(nan), default_left));
    __m256i index = _mm256_or_si256(_mm256_and_si256(go_left, _mm256_set1_epi32(4)),
                                    _mm256_and_si256(_mm256_srli_epi32(split, 28), _mm256_set1_epi32(3)));
    __m256i code = _mm256_permutevar8x32_epi32(table, index);
    __m256i successor = _mm256_srai_epi32(_mm256_slli_epi32(code, 31), 31);
    __m256i add = _mm256_and_si256(_mm256_srli_epi32(code, 1), one);
    __m256i target = _mm256_blendv_epi8(_mm256_add_epi32(child, add), _mm256_add_epi32(i, one),
                                        successor);
    target = _mm256_or_si256(target, _mm256_and_si256(code, _mm256_set1_epi32((int)LEAF_TAG)));
    return _mm256_blendv_epi8(target, p, done);
}

/* step_block for a whole block (a multiple of 8 rows) of one tree; `sets` is the forest when
 * it has categorical splits, else NULL. */
__attribute__((target("avx2"))) static uint32_t step_block_avx2(const astore_tree_node *nodes,
                                                                 const float *rows,
                                                                 size_t n_cols, size_t block,
                                                                 uint32_t *pos,
                                                                 const astore_forest *sets) {
    const __m256i lane_rows = _mm256_mullo_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7),
                                                 _mm256_set1_epi32((int)n_cols));
    int all_done = 0xFF;
    for (size_t r = 0; r < block; r += 8) {
        __m256i p = _mm256_loadu_si256((const __m256i *)(const void *)(pos + r));
        __m256i column_base = _mm256_add_epi32(lane_rows, _mm256_set1_epi32((int)(r * n_cols)));
        p = avx2_advance(nodes, rows, p, _mm256_setzero_si256(), column_base, sets);
        _mm256_storeu_si256((__m256i *)(void *)(pos + r), p);
        all_done &= _mm256_movemask_ps(_mm256_castsi256_ps(p));
    }
    return all_done == 0xFF ? LEAF_TAG : 0u;
}

/* avx2_advance for 16 walks per instruction on packed nodes: the same steps, the same bits.
 * Walk k is at p[k] in the packed array starting at node first[k]. */
__attribute__((target("avx512f"))) static inline __m512i avx512_advance(
    const uint64_t *packed, const float *x, __m512i p, __m512i first, __m512i column_base) {
    const __m512i table = _mm512_setr_epi32(
        (int)step_code[0], (int)step_code[1], (int)step_code[2], (int)step_code[3],
        (int)step_code[4], (int)step_code[5], (int)step_code[6], (int)step_code[7],
        (int)step_code[0], (int)step_code[1], (int)step_code[2], (int)step_code[3],
        (int)step_code[4], (int)step_code[5], (int)step_code[6], (int)step_code[7]);
    const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const __m512i odd = _mm512_add_epi32(even, _mm512_set1_epi32(1));
    const __m512i one = _mm512_set1_epi32(1);
    __mmask16 live = _mm512_cmpgt_epi32_mask(p, _mm512_set1_epi32(-1)); /* not at a leaf */
    __m512i node = _mm512_add_epi32(first, p);
    __m512i low = _mm512_mask_i32gather_epi64(_mm512_setzero_si512(), (__mmask8)live,
                                              _mm512_castsi512_si256(node), packed, 8);
    __m512i high = _mm512_mask_i32gather_epi64(_mm512_setzero_si512(), (__mmask8)(live >> 8),
                                               _mm512_extracti64x4_epi64(node, 1), packed, 8);
    __m512 threshold = _mm512_castsi512_ps(_mm512_permutex2var_epi32(low, even, high));
    __m512i word = _mm512_permutex2var_epi32(low, odd, high);
    __m512i column = _mm512_add_epi32(
        _mm512_and_si512(word, _mm512_set1_epi32((1 << PACKED_FEATURE_BITS) - 1)), column_base);
    __m512 value = _mm512_mask_i32gather_ps(_mm512_setzero_ps(), live, column, x, 4);
    __mmask16 less = _mm512_cmp_ps_mask(value, threshold, _CMP_LT_OQ);
    __mmask16 nan = _mm512_cmp_ps_mask(value, value, _CMP_UNORD_Q);
    __mmask16 default_left =
        _mm512_test_epi32_mask(word, _mm512_set1_epi32(4 << PACKED_FEATURE_BITS));
    __mmask16 go_left = less | (nan & default_left);
    __m512i index = _mm512_and_si512(_mm512_srli_epi32(word, PACKED_FEATURE_BITS), _mm512_set1_epi32(3));
    index = _mm512_mask_or_epi32(index, go_left, index, _mm512_set1_epi32(4));
    __m512i code = _mm512_permutexvar_epi32(index, table);
    __mmask16 successor = _mm512_test_epi32_mask(code, one);
    __m512i child = _mm512_srli_epi32(word, PACKED_CHILD_SHIFT);
    __m512i add = _mm512_and_si512(_mm512_srli_epi32(code, 1), one);
    __m512i target = _mm512_mask_blend_epi32(successor, _mm512_add_epi32(child, add),
                                             _mm512_add_epi32(p, one));
    target = _mm512_or_si512(target, _mm512_and_si512(code, _mm512_set1_epi32((int)LEAF_TAG)));
    return _mm512_mask_blend_epi32(live, p, target);
}

/* step_block for a whole block (a multiple of 16 rows) of one tree, AVX-512. */
__attribute__((target("avx512f"))) static uint32_t step_block_avx512(
    const uint64_t *packed, uint32_t first_node, const float *rows, size_t n_cols, size_t block,
    uint32_t *pos) {
    const __m512i lane_rows = _mm512_mullo_epi32(
        _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
        _mm512_set1_epi32((int)n_cols));
    const __m512i first = _mm512_set1_epi32((int)first_node);
    __mmask16 all_done = 0xFFFF;
    for (size_t r = 0; r < block; r += 16) {
        __m512i p = _mm512_loadu_si512(pos + r);
        __m512i column_base = _mm512_add_epi32(lane_rows, _mm512_set1_epi32((int)(r * n_cols)));
        p = avx512_advance(packed, rows, p, first, column_base);
        _mm512_storeu_si512(pos + r, p);
        all_done &= _mm512_cmplt_epi32_mask(p, _mm512_setzero_si512());
    }
    return all_done == 0xFFFF ? LEAF_TAG : 0u;
}

/*
 * One row through 8 x TREE_GROUPS trees at once: lane k of group g walks tree t0 + 8g + k. A
 * single event has no other rows to overlap with, so the trees supply the independent walks;
 * several groups in one loop let the gathers of one group wait while another computes. Writes
 * each tree's (tree-local) leaf index; the caller adds the leaves in tree order.
 */
__attribute__((target("avx2"))) static void walk_trees_avx2(const astore_forest *f, uint32_t t0,
                                                             uint32_t n, const float *row,
                                                             uint32_t *leaf) {
    int first_word[8 * TREE_GROUPS];
    uint32_t start[8 * TREE_GROUPS];
    for (uint32_t k = 0; k < 8 * TREE_GROUPS; k++) { /* lanes past the n trees start done */
        const astore_tree_entry *tree = &f->trees[t0 + (k < n ? k : 0u)];
        first_word[k] = (int)(3u * tree->first_node);
        start[k] = k >= n || tree->n_nodes == 0 ? LEAF_TAG : 0u;
    }
    const astore_forest *sets = f->n_sets > 0 ? f : NULL;
    __m256i base[TREE_GROUPS], p[TREE_GROUPS];
    for (int g = 0; g < TREE_GROUPS; g++) {
        base[g] = _mm256_loadu_si256((const __m256i *)(const void *)(first_word + 8 * g));
        p[g] = _mm256_loadu_si256((const __m256i *)(const void *)(start + 8 * g));
    }
    for (;;) {
        __m256i all = p[0];
        for (int g = 1; g < TREE_GROUPS; g++) all = _mm256_and_si256(all, p[g]);
        if (_mm256_movemask_ps(_mm256_castsi256_ps(all)) == 0xFF) break;
        for (int g = 0; g < TREE_GROUPS; g++) {
            p[g] = avx2_advance(f->nodes, row, p[g], base[g], _mm256_setzero_si256(), sets);
        }
    }
    for (int g = 0; g < TREE_GROUPS; g++) {
        _mm256_storeu_si256((__m256i *)(void *)(leaf + 8 * g), p[g]);
    }
}

#endif

static void post_transform(const astore_forest *f, double *out, size_t n_rows) {
    size_t n_out = f->n_outputs;
    double scale = f->aggregation == ASTORE_AGGREGATE_MEAN ? 1.0 / (double)f->n_trees : 1.0;
    for (size_t r = 0; r < n_rows; r++) {
        double *o = out + r * n_out;
        for (size_t k = 0; k < n_out; k++) {
            double value = f->aggregation == ASTORE_AGGREGATE_MEAN ? o[k] * scale : o[k];
            o[k] = value + f->base_score[k];
        }
        if (f->post_transform == ASTORE_POST_LOGISTIC) {
            for (size_t k = 0; k < n_out; k++) o[k] = 1.0 / (1.0 + astore_exp(-o[k]));
        } else if (f->post_transform == ASTORE_POST_SOFTMAX) {
            double top = o[0];
            for (size_t k = 1; k < n_out; k++) top = o[k] > top ? o[k] : top;
            double total = 0.0;
            for (size_t k = 0; k < n_out; k++) {
                o[k] = astore_exp(o[k] - top);
                total += o[k];
            }
            for (size_t k = 0; k < n_out; k++) o[k] /= total;
        }
    }
}

#ifdef ASTORE_HAVE_AVX2_PATH
/* One row through 16 x WIDE_TREE_GROUPS trees at once (AVX-512 on packed nodes), as
 * walk_trees_avx2; a group whose walks have all ended is skipped. */
__attribute__((target("avx512f"))) static void walk_trees_avx512(const astore_forest *f,
                                                                 uint32_t t0, uint32_t n,
                                                                 const float *row,
                                                                 uint32_t *leaf) {
    uint32_t first[16 * WIDE_TREE_GROUPS], start[16 * WIDE_TREE_GROUPS];
    for (uint32_t k = 0; k < 16 * WIDE_TREE_GROUPS; k++) { /* lanes past the n trees: done */
        const astore_tree_entry *tree = &f->trees[t0 + (k < n ? k : 0u)];
        first[k] = tree->first_node;
        start[k] = k >= n || tree->n_nodes == 0 ? LEAF_TAG : 0u;
    }
    __m512i base[WIDE_TREE_GROUPS], p[WIDE_TREE_GROUPS];
    for (int g = 0; g < WIDE_TREE_GROUPS; g++) {
        base[g] = _mm512_loadu_si512(first + 16 * g);
        p[g] = _mm512_loadu_si512(start + 16 * g);
    }
    const int groups = (int)((n + 15u) / 16u);
    for (;;) {
        __m512i all = p[0];
        for (int g = 1; g < groups; g++) all = _mm512_and_si512(all, p[g]);
        if (_mm512_cmplt_epi32_mask(all, _mm512_setzero_si512()) == 0xFFFF) break;
        for (int g = 0; g < groups; g++) {
            p[g] = avx512_advance(f->packed, row, p[g], base[g], _mm512_setzero_si512());
        }
    }
    for (int g = 0; g < WIDE_TREE_GROUPS; g++) _mm512_storeu_si512(leaf + 16 * g, p[g]);
}

/* A single row, a group of trees at a time (walk_trees_avx512 or walk_trees_avx2); leaves
 * are added in tree order, so the result is bit-identical to the block path. */
static void score_one_row_by_trees(const astore_forest *f, const float *row, double *out) {
    const bool wide = f->isa == ASTORE_ISA_AVX512 && f->packed != NULL;
    const uint32_t group = wide ? 16u * WIDE_TREE_GROUPS : 8u * TREE_GROUPS;
    uint32_t leaf[16 * WIDE_TREE_GROUPS];
    double sum = out[0]; /* one output: the sum stays in a register */
    for (uint32_t t0 = 0; t0 < f->n_trees; t0 += group) {
        uint32_t n = f->n_trees - t0 < group ? f->n_trees - t0 : group;
        if (wide) walk_trees_avx512(f, t0, n, row, leaf);
        else walk_trees_avx2(f, t0, n, row, leaf);
        for (uint32_t k = 0; k < n; k++) {
            const astore_tree_entry *tree = &f->trees[t0 + k];
            const float *leaves =
                f->leaves + (size_t)(tree->first_leaf + (leaf[k] & ~LEAF_TAG)) * f->leaf_width;
            if (f->n_outputs == 1) {
                sum += leaves[0];
            } else if (f->leaf_width == 1) {
                out[tree->output] += leaves[0];
            } else {
                for (uint32_t j = 0; j < f->n_outputs; j++) out[j] += leaves[j];
            }
        }
    }
    if (f->n_outputs == 1) out[0] = sum;
    post_transform(f, out, 1);
}
#endif

/* Walks every row of a block down one tree: pos[r] ends as LEAF_TAG | leaf. Each step moves
 * every unfinished row one level down; children follow parents, so this ends within n_nodes
 * steps. Full blocks take the widest vector step the CPU has. */
static inline void walk_block(const astore_forest *f, uint32_t first_node, const float *rows,
                              size_t n_cols, size_t block, uint32_t *pos, astore_tree_isa isa) {
    const astore_tree_node *nodes = f->nodes + first_node;
#ifdef ASTORE_HAVE_AVX2_PATH
    if (f->n_sets > 0 && isa != ASTORE_ISA_SCALAR && block == ROW_BLOCK) {
        while (!step_block_avx2(nodes, rows, n_cols, block, pos, f)) {
        }
        return;
    }
#endif
    if (f->n_sets > 0) {
        while (!step_block_categorical(f, nodes, rows, n_cols, block, pos)) {
        }
        return;
    }
#ifdef ASTORE_HAVE_AVX2_PATH
    if (isa == ASTORE_ISA_AVX512 && f->packed != NULL && block == ROW_BLOCK) {
        while (!step_block_avx512(f->packed, first_node, rows, n_cols, block, pos)) {
        }
        return;
    }
    if (isa != ASTORE_ISA_SCALAR && block == ROW_BLOCK) {
        while (!step_block_avx2(nodes, rows, n_cols, block, pos, NULL)) {
        }
        return;
    }
#else
    (void)isa;
#endif
    while (!step_block(nodes, rows, n_cols, block, pos)) {
    }
}

/* The node walk, rows in blocks of ROW_BLOCK walking each tree while its nodes are hot. */
static void score_rows_by_nodes(const astore_forest *f, const float *x, size_t n_rows,
                                size_t n_cols, double *out) {
    size_t n_out = f->n_outputs;
    uint32_t pos[ROW_BLOCK];
    /* gathers index with 32-bit offsets: a block must span less than 2^31 floats */
    astore_tree_isa isa = n_cols < (size_t)(INT32_MAX / ROW_BLOCK) ? f->isa : ASTORE_ISA_SCALAR;
    for (size_t start = 0; start < n_rows; start += ROW_BLOCK) {
        size_t block = n_rows - start < ROW_BLOCK ? n_rows - start : ROW_BLOCK;
        const float *rows = x + start * n_cols;
        double *acc = out + start * n_out;
        for (uint32_t t = 0; t < f->n_trees; t++) {
            const astore_tree_entry *tree = &f->trees[t];
            const float *leaves = f->leaves + (size_t)tree->first_leaf * f->leaf_width;
            if (tree->n_nodes == 0) {
                for (size_t r = 0; r < block; r++) pos[r] = LEAF_TAG;
            } else {
                memset(pos, 0, sizeof(uint32_t) * block);
                walk_block(f, tree->first_node, rows, n_cols, block, pos, isa);
            }
            if (f->leaf_width == 1) {
                double *target = acc + tree->output;
                for (size_t r = 0; r < block; r++) target[r * n_out] += leaves[pos[r] & ~LEAF_TAG];
            } else {
                for (size_t r = 0; r < block; r++) {
                    const float *leaf = leaves + (size_t)(pos[r] & ~LEAF_TAG) * n_out;
                    for (size_t k = 0; k < n_out; k++) acc[r * n_out + k] += leaf[k];
                }
            }
        }
        post_transform(f, acc, block);
    }
}

void astore_forest_walk_on(const astore_forest *f, uint32_t t, const float *rows, size_t n_cols,
                           uint32_t *pos) {
    astore_tree_isa isa = n_cols < (size_t)(INT32_MAX / ROW_BLOCK) ? f->isa : ASTORE_ISA_SCALAR;
    walk_block(f, f->trees[t].first_node, rows, n_cols, ROW_BLOCK, pos, isa);
}

/* Whether single rows walk their trees as vector lanes (score_one_row_by_trees), which the
 * 32-bit gather offsets allow below 2^31 / 3 nodes. */
static bool trees_in_lanes(const astore_forest *f) {
#ifdef ASTORE_HAVE_AVX2_PATH
    return f->isa != ASTORE_ISA_SCALAR && f->n_nodes_total < (uint32_t)(INT32_MAX / 3);
#else
    (void)f;
    return false;
#endif
}

/*
 * Every walk, one entry: the bit-vector walk takes whole vector groups of rows (all rows
 * without vectors), the node walk whole blocks; the rows left, and single events, walk their
 * trees as vector lanes where the CPU has vectors. Every path gives the same bits.
 */
void astore_forest_score_rows(const astore_forest *f, const float *x, size_t n_rows,
                              size_t n_cols, double *out) {
    size_t n_out = f->n_outputs;
    bool lanes = trees_in_lanes(f);
    size_t done = 0;
    memset(out, 0, sizeof(double) * n_rows * n_out);
    if (f->walk != ASTORE_WALK_NODES) {
        done = astore_qs_score_rows(f, x, n_rows, n_cols, out);
        post_transform(f, out, done);
    } else {
        done = lanes ? n_rows / ROW_BLOCK * ROW_BLOCK : n_rows;
        score_rows_by_nodes(f, x, done, n_cols, out);
    }
    for (size_t r = done; r < n_rows; r++) {
#ifdef ASTORE_HAVE_AVX2_PATH
        if (lanes) {
            score_one_row_by_trees(f, x + r * n_cols, out + r * n_out);
            continue;
        }
#endif
        score_rows_by_nodes(f, x + r * n_cols, 1, n_cols, out + r * n_out);
    }
}
