/*
 * astore_format.h -- the on-disk layout of an .astore container, version 1.2.
 *
 * This header is the one home of the byte layout. Every record is little-endian; the
 * structs below document offsets, types and meanings and carry compile-time size checks.
 * The parser never casts the file buffer onto the header, table or section headers: it reads
 * each field with the little-endian cursor in container.c. Only the scoring arrays of a
 * section (tree nodes, leaf values, base scores, MLP weights and biases) are used in place
 * after validation, on little-endian hosts when the buffer is suitably aligned; elsewhere
 * they are decoded into an owned copy at load time (XFRM, being small, always is).
 * docs/FORMAT.md describes the same layout in prose.
 */
#ifndef ASTORE_FORMAT_H
#define ASTORE_FORMAT_H

#include <stdint.h>

/* ---- file header: 64 bytes at offset 0 ------------------------------------------------ */
#define ASTORE_MAGIC "\x89" "AST\r\n\x1a\n" /* 8 bytes, PNG-style: catches 7-bit and CRLF mangling */
#define ASTORE_MAGIC_LEN 8
#define ASTORE_FORMAT_MAJOR 1
#define ASTORE_FORMAT_MINOR 2 /* 1.1 adds the critical MLP_ and XFRM sections, 1.2 the
                                 critical CATS section; a file is written with the lowest
                                 minor its sections need (1.0 without any of them) */
#define ASTORE_ALIGN 64
#define ASTORE_MAX_SECTIONS 256

typedef struct astore_file_header {
    uint8_t magic[8];              /*  0: ASTORE_MAGIC                                        */
    uint16_t format_major;         /*  8: incompatible changes; readers reject unknown majors  */
    uint16_t format_minor;         /* 10: compatible additions (new optional sections)         */
    uint32_t header_size;          /* 12: 64                                                   */
    uint64_t file_size;            /* 16: total bytes of the container, signature included     */
    uint32_t section_count;        /* 24: entries in the section table, 2..ASTORE_MAX_SECTIONS */
    uint32_t section_table_offset; /* 28: 64 (the table follows the header)                    */
    uint32_t flags;                /* 32: 0 in 1.0; readers reject unknown bits                */
    uint8_t reserved[28];          /* 36: zero                                                 */
} astore_file_header;

/* ---- section table entry: 32 bytes each, at section_table_offset ---------------------- */
#define ASTORE_SECTION_CRITICAL 0x1u /* a reader that does not know the type must reject */

typedef struct astore_section_entry {
    uint8_t type[4];   /*  0: four ASCII characters, e.g. "META"                             */
    uint32_t flags;    /*  4: ASTORE_SECTION_CRITICAL; other bits zero                       */
    uint64_t offset;   /*  8: from the file start; the next multiple of 64; in file order   */
    uint64_t length;   /* 16: bytes of the body, without the zero padding that follows      */
    uint64_t reserved; /* 24: zero                                                           */
} astore_section_entry;

/* Section types. A container holds exactly one payload (FRST or MLP_), optionally XFRM. */
#define ASTORE_SECTION_META "META" /* critical: msgpack map of metadata (docs/FORMAT.md)    */
#define ASTORE_SECTION_FOREST "FRST" /* critical: a tree ensemble                             */
#define ASTORE_SECTION_MLP "MLP_" /* critical (1.1): a dense feed-forward network            */
#define ASTORE_SECTION_TRANSFORM "XFRM" /* critical (1.1): feature transforms before the model */
#define ASTORE_SECTION_CATEGORY_SETS "CATS" /* critical (1.2): the sets of FRST's categorical splits */
#define ASTORE_SECTION_SIGNATURE "SIGN" /* critical: store key and signature; always last   */

/* ---- SIGN section: 136 bytes, the last section, ending at file_size ------------------- */
#define ASTORE_SIGNATURE_NONE 0u
#define ASTORE_SIGNATURE_ED25519 1u
#define ASTORE_SIGNATURE_SECTION_LENGTH 136

typedef struct astore_signature_body {
    uint32_t algorithm;    /*   0: ASTORE_SIGNATURE_NONE (unsigned) or ASTORE_SIGNATURE_ED25519 */
    uint32_t reserved;     /*   4: zero                                                        */
    uint8_t store_key[32]; /*   8: SHA-256 of every byte before this section's offset          */
    uint8_t public_key[32];/*  40: the signer's Ed25519 public key (zero when unsigned)         */
    uint8_t signature[64]; /*  72: Ed25519 over the signed message (zero when unsigned)        */
} astore_signature_body;

/* ---- FRST section: a 64-byte header, then arrays at 64-aligned offsets -------------- */
/* Canonical layout (readers refuse any other): trees at 64, nodes, leaves and base scores
 * each at the first multiple of 64 after the array before, zero bytes between, the section
 * ending with the base scores; tree t's ranges follow tree t-1's. */
#define ASTORE_POST_IDENTITY 0u
#define ASTORE_POST_LOGISTIC 1u
#define ASTORE_POST_SOFTMAX 2u
#define ASTORE_AGGREGATE_SUM 0u
#define ASTORE_AGGREGATE_MEAN 1u

typedef struct astore_forest_header {
    uint32_t n_trees;        /*  0: >= 1                                                      */
    uint32_t n_features;     /*  4: columns of an input row                                   */
    uint32_t n_outputs;      /*  8: columns of a result row                                   */
    uint32_t leaf_width;     /* 12: floats per leaf: 1 or n_outputs                           */
    uint32_t post_transform; /* 16: ASTORE_POST_*                                             */
    uint32_t aggregation;    /* 20: ASTORE_AGGREGATE_* (mean divides the tree sum by n_trees) */
    uint32_t n_nodes;        /* 24: split nodes in all trees                                  */
    uint32_t n_leaves;       /* 28: leaves in all trees                                       */
    uint32_t trees_offset;   /* 32: astore_tree_entry[n_trees], from the section start        */
    uint32_t nodes_offset;   /* 36: astore_tree_node[n_nodes]                                 */
    uint32_t leaves_offset;  /* 40: float32[n_leaves * leaf_width]                            */
    uint32_t base_offset;    /* 44: float64[n_outputs]: added to every output before transform */
    uint32_t flags;          /* 48: 0 in 1.0                                                  */
    uint8_t reserved[12];    /* 52: zero                                                      */
} astore_forest_header;

typedef struct astore_tree_entry {
    uint32_t first_node;  /*  0: index of the tree's root in the node array                 */
    uint32_t n_nodes;     /*  4: split nodes of this tree (0: the tree is a single leaf)     */
    uint32_t first_leaf;  /*  8: index of the tree's first leaf in the leaf array            */
    uint32_t n_leaves;    /* 12: n_nodes + 1                                                 */
    uint32_t output;      /* 16: output the leaf adds to when leaf_width == 1; else 0        */
    uint32_t reserved;    /* 20: zero                                                        */
} astore_tree_entry;

/*
 * A split node, 12 bytes. Nodes of a tree are stored in preorder, leaves in depth-first
 * order, both indexed from the tree's first node / first leaf. A row goes left when
 * x[feature] < threshold, and to the default side when x[feature] is NaN. Children:
 *   left split  -> node i+1;            right split -> node `child`, or if left is a leaf node i+1
 *   left leaf   -> leaf `child`;        right leaf  -> leaf `child` (+1 if left is a leaf too)
 * A CATEGORICAL node (1.2, with a CATS section) holds a u32 set index where the threshold
 * is: a row goes left when x[feature] is an integer code in that set, right otherwise.
 */
#define ASTORE_NODE_FEATURE_MASK 0x0FFFFFFFu
#define ASTORE_NODE_RIGHT_LEAF 0x10000000u
#define ASTORE_NODE_LEFT_LEAF 0x20000000u
#define ASTORE_NODE_DEFAULT_LEFT 0x40000000u
#define ASTORE_NODE_CATEGORICAL 0x80000000u

typedef struct astore_tree_node {
    uint32_t split;  /* 0: feature (bits 0-27) | RIGHT_LEAF | LEFT_LEAF | DEFAULT_LEFT | CATEGORICAL */
    float threshold; /* 4: IEEE-754 binary32, not NaN; the u32 set index of a CATEGORICAL node */
    uint32_t child;  /* 8: see above                                                         */
} astore_tree_node;

/* ---- CATS section (1.2): the category sets of FRST's categorical splits ------------- */
/*
 * A 64-byte header, the set table at 64 (8 bytes a set), then the u32 words of every set at
 * the first multiple of 64 after the table, zero bytes between; the section ends with the
 * words. Set s is the bits of words[first_word .. first_word + n_words): code k is in it
 * when bit k % 32 of word first_word + k / 32 is set. Canonical: the sets follow each other
 * (first_word is the sum of the n_words before), each has 1 .. ASTORE_CATS_MAX_WORDS words
 * and a non-zero last word, and the k-th CATEGORICAL node of FRST (node array order) uses
 * set k: n_sets is the number of categorical nodes.
 */
#define ASTORE_CATS_MAX_WORDS (1u << 19) /* codes below 2^24, exact in float32 */

typedef struct astore_cats_header {
    uint32_t n_sets;       /*  0: >= 1, one per categorical node                          */
    uint32_t n_words;      /*  4: u32 words of all sets                                   */
    uint32_t sets_offset;  /*  8: 64: astore_category_set[n_sets]                         */
    uint32_t words_offset; /* 12: uint32[n_words], the first multiple of 64 after the sets  */
    uint32_t flags;        /* 16: 0                                                        */
    uint8_t reserved[44];  /* 20: zero                                                     */
} astore_cats_header;

typedef struct astore_category_set {
    uint32_t first_word; /* 0: index of the set's first word                               */
    uint32_t n_words;    /* 4: 1 .. ASTORE_CATS_MAX_WORDS; the last word is not zero       */
} astore_category_set;

/* ---- MLP_ section: a 64-byte header, a layer table, then float32 arrays -------------- */
/*
 * Every array offset is from the section start: the layer table at 64, each array at the
 * first multiple of 64 after what precedes it (zero bytes between). Layer k maps n_in
 * values to n_out: for each output j, z = bias[j], then z += weights[j * n_in + i] * x[i]
 * for i = 0 .. n_in-1 in that order, each product and sum rounded to float32 (no FMA); then
 * the activation. Activations use the core's own exp (docs/FORMAT.md), not libm.
 */
#define ASTORE_ACTIVATION_IDENTITY 0u
#define ASTORE_ACTIVATION_RELU 1u       /* x < 0 ? 0 : x (NaN stays NaN)               */
#define ASTORE_ACTIVATION_LEAKY_RELU 2u /* x < 0 ? alpha * x : x                       */
#define ASTORE_ACTIVATION_TANH 3u
#define ASTORE_ACTIVATION_SIGMOID 4u    /* 1 / (1 + exp(-x))                           */
#define ASTORE_ACTIVATION_SOFTMAX 5u    /* over the layer's outputs, max subtracted    */
#define ASTORE_MLP_MAX_LAYERS 256u
#define ASTORE_MLP_MAX_WIDTH 1024u /* widest layer (inputs or outputs) this reader scores */

typedef struct astore_mlp_header {
    uint32_t n_layers;      /*  0: 1 .. ASTORE_MLP_MAX_LAYERS                              */
    uint32_t n_features;    /*  4: columns of an input row = layer 0's n_in                */
    uint32_t n_outputs;     /*  8: columns of a result row = the last layer's n_out        */
    uint32_t layers_offset; /* 12: astore_mlp_layer[n_layers], from the section start      */
    uint32_t flags;         /* 16: 0                                                        */
    uint8_t reserved[44];   /* 20: zero                                                     */
} astore_mlp_header;

typedef struct astore_mlp_layer {
    uint32_t n_in;           /*  0: inputs: n_features, or the previous layer's n_out      */
    uint32_t n_out;          /*  4: outputs (units), 1 .. ASTORE_MLP_MAX_WIDTH              */
    uint32_t activation;     /*  8: ASTORE_ACTIVATION_*                                     */
    float alpha;             /* 12: leaky relu slope (finite); 0 for other activations      */
    uint32_t weights_offset; /* 16: float32[n_out][n_in], row-major, finite                 */
    uint32_t bias_offset;    /* 20: float32[n_out], finite                                   */
    uint32_t reserved[2];    /* 24: zero                                                     */
} astore_mlp_layer;

/* ---- XFRM section: a 64-byte header, then one 32-byte record per model column ------- */
/*
 * Model column j is computed from raw input column source[j], in float64: a NaN becomes
 * `impute` when ASTORE_XFRM_IMPUTE is set; then the scaling; then the value is rounded to
 * float32 (round to nearest) and given to the payload. Without imputation a NaN stays NaN.
 */
#define ASTORE_XFRM_SCALE_NONE 0u        /* v                 (a = b = 0)                  */
#define ASTORE_XFRM_SCALE_STANDARDIZE 1u /* (v - a) / b       (finite a, finite non-zero b) */
#define ASTORE_XFRM_SCALE_AFFINE 2u      /* v * a + b         (finite a and b)              */
#define ASTORE_XFRM_SCALE_MASK 0xFFu
#define ASTORE_XFRM_IMPUTE 0x100u        /* NaN -> impute (finite)                          */
#define ASTORE_XFRM_MAX_COLUMNS 4096u
#define ASTORE_XFRM_MAX_INPUTS (1u << 20)

typedef struct astore_xfrm_header {
    uint32_t n_inputs;       /*  0: raw input columns (what the caller passes), 1 .. 2^20   */
    uint32_t n_columns;      /*  4: model columns = the payload's n_features, 1 .. 4096      */
    uint32_t columns_offset; /*  8: astore_xfrm_column[n_columns], from the section start   */
    uint32_t flags;          /* 12: 0                                                        */
    uint8_t reserved[48];    /* 16: zero                                                     */
} astore_xfrm_header;

typedef struct astore_xfrm_column {
    uint32_t source; /*  0: raw input column this model column reads, < n_inputs           */
    uint32_t op;     /*  4: ASTORE_XFRM_SCALE_* | ASTORE_XFRM_IMPUTE; other bits zero        */
    double impute;   /*  8: replaces NaN when ASTORE_XFRM_IMPUTE is set; else 0              */
    double a;        /* 16: see ASTORE_XFRM_SCALE_*                                          */
    double b;        /* 24: see ASTORE_XFRM_SCALE_*                                          */
} astore_xfrm_column;

#if defined(__STDC_VERSION__) && __STDC_VERSION__ >= 201112L
#define ASTORE_STATIC_ASSERT(cond, msg) _Static_assert(cond, msg)
#elif defined(__cplusplus)
#define ASTORE_STATIC_ASSERT(cond, msg) static_assert(cond, msg)
#else
#define ASTORE_STATIC_ASSERT(cond, msg) typedef char astore_static_assert_##msg[(cond) ? 1 : -1]
#endif

ASTORE_STATIC_ASSERT(sizeof(astore_file_header) == 64, file_header_is_64_bytes);
ASTORE_STATIC_ASSERT(sizeof(astore_section_entry) == 32, section_entry_is_32_bytes);
ASTORE_STATIC_ASSERT(sizeof(astore_signature_body) == ASTORE_SIGNATURE_SECTION_LENGTH,
                     signature_body_is_136_bytes);
ASTORE_STATIC_ASSERT(sizeof(astore_forest_header) == 64, forest_header_is_64_bytes);
ASTORE_STATIC_ASSERT(sizeof(astore_tree_entry) == 24, tree_entry_is_24_bytes);
ASTORE_STATIC_ASSERT(sizeof(astore_tree_node) == 12, tree_node_is_12_bytes);
ASTORE_STATIC_ASSERT(sizeof(astore_cats_header) == 64, cats_header_is_64_bytes);
ASTORE_STATIC_ASSERT(sizeof(astore_category_set) == 8, category_set_is_8_bytes);
ASTORE_STATIC_ASSERT(sizeof(astore_mlp_header) == 64, mlp_header_is_64_bytes);
ASTORE_STATIC_ASSERT(sizeof(astore_mlp_layer) == 32, mlp_layer_is_32_bytes);
ASTORE_STATIC_ASSERT(sizeof(astore_xfrm_header) == 64, xfrm_header_is_64_bytes);
ASTORE_STATIC_ASSERT(sizeof(astore_xfrm_column) == 32, xfrm_column_is_32_bytes);
ASTORE_STATIC_ASSERT(sizeof(float) == 4, float_is_binary32);

#endif /* ASTORE_FORMAT_H */
