/*
 * fuzz_section.c -- libFuzzer targets for one section type each: the input is the body of
 * a FUZZ_SECTION section ("META", "FRST", "MLP_" or "XFRM", set at build time), framed with
 * the other sections of a golden container into a canonical, correctly keyed file, opened
 * as a container and a model; an open model scores rows taken from the input.
 *
 * The golden containers are read once, from FUZZ_GOLDEN_DIR (tests/golden, set by the
 * Makefile): tiny_forest.astore for META and FRST, tiny_mlp.astore for MLP_ and XFRM.
 */
#include "fuzz_common.h"

#ifndef FUZZ_SECTION
#error "build with -DFUZZ_SECTION='\"META\"' (or FRST, MLP_, XFRM)"
#endif
#ifndef FUZZ_GOLDEN_DIR
#error "build with -DFUZZ_GOLDEN_DIR='\"path/to/tests/golden\"'"
#endif

#define MAX_GOLDEN_SECTIONS 8

typedef struct golden_section {
    char type[5];
    uint32_t flags;
    uint8_t *body;
    size_t length;
} golden_section;

static golden_section golden[MAX_GOLDEN_SECTIONS];
static size_t golden_count; /* sections before SIGN */
static uint16_t golden_minor;

static uint32_t load_u32(const uint8_t *p) {
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
           ((uint32_t)p[3] << 24);
}

static uint64_t load_u64(const uint8_t *p) {
    return (uint64_t)load_u32(p) | ((uint64_t)load_u32(p + 4) << 32);
}

static void store_u32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}

static void store_u64(uint8_t *p, uint64_t v) {
    store_u32(p, (uint32_t)v);
    store_u32(p + 4, (uint32_t)(v >> 32));
}

/* Reads the golden container's sections (a trusted file: a short read is a setup error). */
static void load_golden(void) {
    const char *name = memcmp(FUZZ_SECTION, "MLP_", 4) == 0 || memcmp(FUZZ_SECTION, "XFRM", 4) == 0
                           ? "tiny_mlp.astore"
                           : "tiny_forest.astore";
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", FUZZ_GOLDEN_DIR, name);
    FILE *file = fopen(path, "rb");
    FUZZ_REQUIRE(file != NULL, "cannot open %s", path);
    static uint8_t bytes[1 << 20];
    size_t length = fread(bytes, 1, sizeof bytes, file);
    fclose(file);
    FUZZ_REQUIRE(length >= 64 && length < sizeof bytes, "%s: %zu bytes", path, length);
    golden_minor = (uint16_t)(bytes[10] | (bytes[11] << 8));
    uint32_t count = load_u32(bytes + 24);
    FUZZ_REQUIRE(count >= 2 && count - 1 <= MAX_GOLDEN_SECTIONS && 64 + 32 * count <= length,
                 "%s: %u sections", path, (unsigned)count);
    for (uint32_t i = 0; i + 1 < count; i++) {
        const uint8_t *entry = bytes + 64 + 32 * i;
        golden_section *s = &golden[golden_count++];
        memcpy(s->type, entry, 4);
        s->type[4] = '\0';
        s->flags = load_u32(entry + 4);
        uint64_t offset = load_u64(entry + 8);
        s->length = (size_t)load_u64(entry + 16);
        FUZZ_REQUIRE(offset <= length && s->length <= length - offset, "%s: section %u", path,
                     (unsigned)i);
        s->body = malloc(s->length ? s->length : 1);
        if (s->body == NULL) abort();
        memcpy(s->body, bytes + offset, s->length);
    }
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t length);

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    load_golden();
    return 0;
}

static size_t align64(size_t value) { return (value + 63) / 64 * 64; }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t length) {
    if (length > (1u << 20)) return 0;
    const size_t count = golden_count + 1;
    size_t offsets[MAX_GOLDEN_SECTIONS + 1];
    size_t lengths[MAX_GOLDEN_SECTIONS + 1];
    const uint8_t *bodies[MAX_GOLDEN_SECTIONS + 1];
    size_t offset = align64(64 + 32 * count);
    for (size_t i = 0; i < golden_count; i++) {
        bool fuzzed = memcmp(golden[i].type, FUZZ_SECTION, 4) == 0;
        bodies[i] = fuzzed ? data : golden[i].body;
        lengths[i] = fuzzed ? length : golden[i].length;
        offsets[i] = offset;
        offset = align64(offset + lengths[i]);
    }
    offsets[golden_count] = offset;
    lengths[golden_count] = FUZZ_SIGN_LENGTH;
    const size_t file_size = offset + FUZZ_SIGN_LENGTH;
    uint8_t *file = calloc(1, file_size);
    if (file == NULL) abort();
    memcpy(file, "\x89" "AST\r\n\x1a\n", 8);
    file[8] = 1;
    file[10] = (uint8_t)golden_minor;
    store_u32(file + 12, 64);
    store_u64(file + 16, file_size);
    store_u32(file + 24, (uint32_t)count);
    store_u32(file + 28, 64);
    for (size_t i = 0; i < count; i++) {
        uint8_t *entry = file + 64 + 32 * i;
        memcpy(entry, i < golden_count ? golden[i].type : "SIGN", 4);
        store_u32(entry + 4, i < golden_count ? golden[i].flags : 1u);
        store_u64(entry + 8, offsets[i]);
        store_u64(entry + 16, lengths[i]);
        if (i < golden_count && lengths[i] > 0) memcpy(file + offsets[i], bodies[i], lengths[i]);
    }
    fuzz_fix_store_key(file, file_size); /* unsigned: algorithm 0, zero key and signature */
    fuzz_open_and_score(file, file_size, data, length);
    free(file);
    return 0;
}
