/*
 * container.c -- framing of an .astore container: header, section table, section bounds,
 * store key. Integrity comes before interpretation: nothing here reads a section body
 * except SIGN, whose fixed layout holds the recorded store key.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "astore_internal.h"
#include "sha256.h"

#define ASTORE_LIBRARY_VERSION "1.0.0"

/* Indexed by status, by name: an entry cannot drift to another status. */
static const char *const status_names[] = {
    [ASTORE_OK] = "ASTORE_OK",
    [ASTORE_ERR_ARGUMENT] = "ASTORE_ERR_ARGUMENT",
    [ASTORE_ERR_TRUNCATED] = "ASTORE_ERR_TRUNCATED",
    [ASTORE_ERR_FORMAT] = "ASTORE_ERR_FORMAT",
    [ASTORE_ERR_VERSION] = "ASTORE_ERR_VERSION",
    [ASTORE_ERR_INTEGRITY] = "ASTORE_ERR_INTEGRITY",
    [ASTORE_ERR_UNSUPPORTED] = "ASTORE_ERR_UNSUPPORTED",
    [ASTORE_ERR_NOMEM] = "ASTORE_ERR_NOMEM",
    [ASTORE_ERR_INPUT] = "ASTORE_ERR_INPUT",
};

ASTORE_STATIC_ASSERT(sizeof status_names / sizeof status_names[0] == ASTORE_STATUS_COUNT,
                     one_status_name_per_status);

const char *astore_status_name(astore_status status) {
    if ((unsigned)status >= ASTORE_STATUS_COUNT || status_names[status] == NULL) {
        return "ASTORE_ERR_UNKNOWN";
    }
    return status_names[status];
}

const char *astore_version(void) { return ASTORE_LIBRARY_VERSION; }

void astore_format_version(uint16_t *major, uint16_t *minor) {
    if (major) *major = ASTORE_FORMAT_MAJOR;
    if (minor) *minor = ASTORE_FORMAT_MINOR;
}

void astore_error_reset(astore_error *err) {
    if (err == NULL) return;
    err->status = ASTORE_OK;
    err->offset = ASTORE_NO_OFFSET;
    err->row = ASTORE_NO_ROW;
    err->column = ASTORE_NO_COLUMN;
    err->message[0] = '\0';
}

static bool record_first(astore_error *err, astore_status status, uint64_t offset,
                         const char *format, va_list args) {
    if (err == NULL || err->status != ASTORE_OK) return false;
    err->status = status;
    err->offset = offset;
    vsnprintf(err->message, sizeof err->message, format, args);
    return true;
}

astore_status astore_fail(astore_error *err, astore_status status, uint64_t offset,
                          const char *format, ...) {
    va_list args;
    va_start(args, format);
    record_first(err, status, offset, format, args);
    va_end(args);
    return status;
}

astore_status astore_fail_cell(astore_error *err, astore_status status, uint64_t row,
                               uint32_t column, const char *format, ...) {
    va_list args;
    va_start(args, format);
    if (record_first(err, status, ASTORE_NO_OFFSET, format, args)) {
        err->row = row;
        err->column = column;
    }
    va_end(args);
    return status;
}

void astore_to_hex(const uint8_t *bytes, size_t count, char *out) {
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < count; i++) {
        out[2 * i] = digits[bytes[i] >> 4];
        out[2 * i + 1] = digits[bytes[i] & 15];
    }
    out[2 * count] = '\0';
}

/* ---- the little-endian cursor ---------------------------------------------------------- */

bool astore_read_bytes(astore_cursor *cursor, void *out, size_t count) {
    if (astore_cursor_left(cursor) < count) return false;
    memcpy(out, cursor->data + cursor->position, count);
    cursor->position += count;
    return true;
}

bool astore_read_u16(astore_cursor *cursor, uint16_t *out) {
    uint8_t b[2];
    if (!astore_read_bytes(cursor, b, sizeof b)) return false;
    *out = (uint16_t)(b[0] | (b[1] << 8));
    return true;
}

bool astore_read_u32(astore_cursor *cursor, uint32_t *out) {
    uint8_t b[4];
    if (!astore_read_bytes(cursor, b, sizeof b)) return false;
    *out = astore_load_u32le(b);
    return true;
}

bool astore_read_u64(astore_cursor *cursor, uint64_t *out) {
    uint32_t low, high;
    if (!astore_read_u32(cursor, &low) || !astore_read_u32(cursor, &high)) return false;
    *out = ((uint64_t)high << 32) | low;
    return true;
}

bool astore_read_f32(astore_cursor *cursor, float *out) {
    uint32_t bits;
    if (!astore_read_u32(cursor, &bits)) return false;
    memcpy(out, &bits, sizeof bits);
    return true;
}

bool astore_read_f64(astore_cursor *cursor, double *out) {
    uint64_t bits;
    if (!astore_read_u64(cursor, &bits)) return false;
    memcpy(out, &bits, sizeof bits);
    return true;
}

static bool is_known_section(const char type[5]) {
    return memcmp(type, ASTORE_SECTION_META, 4) == 0 ||
           memcmp(type, ASTORE_SECTION_FOREST, 4) == 0 ||
           memcmp(type, ASTORE_SECTION_MLP, 4) == 0 ||
           memcmp(type, ASTORE_SECTION_TRANSFORM, 4) == 0 ||
           memcmp(type, ASTORE_SECTION_CATEGORY_SETS, 4) == 0 ||
           memcmp(type, ASTORE_SECTION_SIGNATURE, 4) == 0;
}

/* A section type is four of 'A'-'Z', '0'-'9' and '_' (the known types and any later one). */
static bool is_valid_type(const uint8_t type[4]) {
    for (int i = 0; i < 4; i++) {
        uint8_t b = type[i];
        if (!((b >= 'A' && b <= 'Z') || (b >= '0' && b <= '9') || b == '_')) return false;
    }
    return true;
}

/* The minor version that defined a known section type. */
static uint16_t section_minor(const char type[5]) {
    if (memcmp(type, ASTORE_SECTION_CATEGORY_SETS, 4) == 0) return 2;
    return memcmp(type, ASTORE_SECTION_MLP, 4) == 0 ||
                   memcmp(type, ASTORE_SECTION_TRANSFORM, 4) == 0
               ? 1
               : 0;
}

/* Where a known section stands in a canonical file: META, XFRM, the payload, CATS, SIGN. */
static int section_rank(const char type[5]) {
    if (memcmp(type, ASTORE_SECTION_META, 4) == 0) return 0;
    if (memcmp(type, ASTORE_SECTION_TRANSFORM, 4) == 0) return 1;
    if (memcmp(type, ASTORE_SECTION_CATEGORY_SETS, 4) == 0) return 3;
    if (memcmp(type, ASTORE_SECTION_SIGNATURE, 4) == 0) return 4;
    return 2; /* FRST, MLP_ */
}


/* ---- framing ------------------------------------------------------------------------- */

static astore_status parse_header(astore_container *c, astore_cursor *cursor,
                                  uint32_t *section_count, astore_error *err) {
    uint8_t magic[ASTORE_MAGIC_LEN];
    if (!astore_read_bytes(cursor, magic, sizeof magic)) {
        return astore_fail(err, ASTORE_ERR_TRUNCATED, c->length,
                           "file is %zu bytes, too short for the 8-byte magic", c->length);
    }
    if (memcmp(magic, ASTORE_MAGIC, ASTORE_MAGIC_LEN) != 0) {
        return astore_fail(err, ASTORE_ERR_FORMAT, 0, "not an .astore container (bad magic)");
    }
    uint16_t major = 0, minor = 0;
    if (!astore_read_u16(cursor, &major) || !astore_read_u16(cursor, &minor)) {
        return astore_fail(err, ASTORE_ERR_TRUNCATED, c->length,
                           "file ends inside the format version");
    }
    if (major != ASTORE_FORMAT_MAJOR) {
        return astore_fail(err, ASTORE_ERR_VERSION, 8,
                           "format version %u.%u is not supported (this reader reads %u.x)",
                           (unsigned)major, (unsigned)minor, (unsigned)ASTORE_FORMAT_MAJOR);
    }
    c->format_major = major;
    c->format_minor = minor;
    uint32_t header_size = 0, table_offset = 0, flags = 0;
    uint64_t file_size = 0;
    uint8_t reserved[28];
    if (!astore_read_u32(cursor, &header_size) || !astore_read_u64(cursor, &file_size) ||
        !astore_read_u32(cursor, section_count) || !astore_read_u32(cursor, &table_offset) ||
        !astore_read_u32(cursor, &flags) || !astore_read_bytes(cursor, reserved, 28)) {
        return astore_fail(err, ASTORE_ERR_TRUNCATED, c->length,
                           "file is %zu bytes, shorter than the 64-byte header", c->length);
    }
    if (header_size != sizeof(astore_file_header)) {
        return astore_fail(err, ASTORE_ERR_FORMAT, 12, "header size is %u, expected 64",
                           (unsigned)header_size);
    }
    if (file_size != (uint64_t)c->length) {
        astore_status status = file_size > (uint64_t)c->length ? ASTORE_ERR_TRUNCATED
                                                                : ASTORE_ERR_FORMAT;
        return astore_fail(err, status, 16,
                           "header announces %llu bytes but the file has %zu",
                           (unsigned long long)file_size, c->length);
    }
    if (*section_count < 2 || *section_count > ASTORE_MAX_SECTIONS) {
        return astore_fail(err, ASTORE_ERR_FORMAT, 24,
                           "section count %u is outside 2..%u", (unsigned)*section_count,
                           (unsigned)ASTORE_MAX_SECTIONS);
    }
    if (table_offset != sizeof(astore_file_header)) {
        return astore_fail(err, ASTORE_ERR_FORMAT, 28,
                           "section table offset is %u, expected 64", (unsigned)table_offset);
    }
    if (flags != 0) {
        return astore_fail(err, ASTORE_ERR_VERSION, 32,
                           "unknown header flags 0x%08x (written by a newer version?)",
                           (unsigned)flags);
    }
    if (!astore_all_zero(reserved, sizeof reserved)) {
        return astore_fail(err, ASTORE_ERR_FORMAT, 36, "reserved header bytes are not zero");
    }
    return ASTORE_OK;
}

/* Reads table entry `i` into c->sections[i]: its fields, a valid type, known flags. */
static astore_status read_section_entry(astore_container *c, astore_cursor *cursor, uint32_t i,
                                        astore_error *err) {
    uint64_t entry_offset = astore_cursor_offset(cursor);
    uint8_t type[4];
    uint32_t flags = 0;
    uint64_t offset = 0, length = 0, reserved = 0;
    if (!astore_read_bytes(cursor, type, 4) || !astore_read_u32(cursor, &flags) ||
        !astore_read_u64(cursor, &offset) || !astore_read_u64(cursor, &length) ||
        !astore_read_u64(cursor, &reserved)) {
        return astore_fail(err, ASTORE_ERR_TRUNCATED, entry_offset,
                           "file ends inside section table entry %u", (unsigned)i);
    }
    astore_section *s = &c->sections[i];
    if (!is_valid_type(type)) {
        return astore_fail(err, ASTORE_ERR_FORMAT, entry_offset,
                           "section %u has a type that is not four of A-Z, 0-9 and _",
                           (unsigned)i);
    }
    memcpy(s->type, type, 4);
    s->type[4] = '\0';
    s->flags = flags;
    s->offset = offset;
    s->length = length;
    if ((flags & ~ASTORE_SECTION_CRITICAL) != 0 || reserved != 0) {
        return astore_fail(err, ASTORE_ERR_FORMAT, entry_offset,
                           "section %u (%s) has unknown flags or reserved bits set",
                           (unsigned)i, s->type);
    }
    return ASTORE_OK;
}

/* Section `i` lies inside the file, 64-aligned, after what precedes it (`previous_end`),
 * with zero padding in between. */
static astore_status check_section_bounds(const astore_container *c, uint32_t i,
                                          uint64_t entry_offset, uint64_t previous_end,
                                          astore_error *err) {
    const astore_section *s = &c->sections[i];
    if (s->offset % ASTORE_ALIGN != 0) {
        return astore_fail(err, ASTORE_ERR_FORMAT, entry_offset + 8,
                           "section %u (%s) offset %llu is not a multiple of 64", (unsigned)i,
                           s->type, (unsigned long long)s->offset);
    }
    if (s->offset < previous_end) {
        return astore_fail(err, ASTORE_ERR_FORMAT, entry_offset + 8,
                           "section %u (%s) at offset %llu overlaps what precedes it "
                           "(which ends at %llu)",
                           (unsigned)i, s->type, (unsigned long long)s->offset,
                           (unsigned long long)previous_end);
    }
    if (s->offset > (uint64_t)c->length || s->length > (uint64_t)c->length - s->offset) {
        return astore_fail(err, ASTORE_ERR_TRUNCATED, entry_offset + 16,
                           "section %u (%s) [%llu, +%llu) extends past the end of the "
                           "%zu-byte file",
                           (unsigned)i, s->type, (unsigned long long)s->offset,
                           (unsigned long long)s->length, c->length);
    }
    if (!astore_all_zero(c->data + previous_end, (size_t)(s->offset - previous_end))) {
        return astore_fail(err, ASTORE_ERR_FORMAT, previous_end,
                           "padding before section %u (%s) is not zero", (unsigned)i, s->type);
    }
    if (s->offset != astore_align_up(previous_end)) {
        return astore_fail(err, ASTORE_ERR_FORMAT, entry_offset + 8,
                           "section %u (%s) starts at %llu, not at %llu (the first multiple of "
                           "64 after what precedes it): padding is not minimal",
                           (unsigned)i, s->type, (unsigned long long)s->offset,
                           (unsigned long long)astore_align_up(previous_end));
    }
    return ASTORE_OK;
}

/* Section `i`'s type appears once, and is known when the section is critical. */
static astore_status check_section_type(const astore_container *c, uint32_t i,
                                        uint64_t entry_offset, astore_error *err) {
    const astore_section *s = &c->sections[i];
    for (uint32_t j = 0; j < i; j++) {
        if (memcmp(c->sections[j].type, s->type, 4) == 0) {
            return astore_fail(err, ASTORE_ERR_FORMAT, entry_offset,
                               "section type %s appears twice", s->type);
        }
    }
    if (!is_known_section(s->type) && (s->flags & ASTORE_SECTION_CRITICAL)) {
        return astore_fail(err, ASTORE_ERR_VERSION, entry_offset,
                           "unknown critical section %s (written by a newer version?)",
                           s->type);
    }
    if (is_known_section(s->type) && (s->flags & ASTORE_SECTION_CRITICAL) == 0) {
        return astore_fail(err, ASTORE_ERR_FORMAT, entry_offset + 4,
                           "section %s must be marked critical", s->type);
    }
    return ASTORE_OK;
}

/*
 * One byte representation per model, at the framing level: known sections in the order
 * META, XFRM, payload, CATS, SIGN, and format_minor the lowest minor that defines every section
 * used. A section this reader does not know comes from a later minor, so a file holding
 * one must claim a minor above ASTORE_FORMAT_MINOR (whose own rules this reader cannot
 * check further); a file of only known sections must claim exactly the minor they need.
 */
static astore_status check_canonical_framing(const astore_container *c, astore_error *err) {
    uint16_t needed = 0;
    bool unknown = false;
    int rank = -1;
    for (size_t i = 0; i < c->section_count; i++) {
        const astore_section *s = &c->sections[i];
        if (!is_known_section(s->type)) {
            unknown = true;
            continue;
        }
        if (section_minor(s->type) > needed) needed = section_minor(s->type);
        if (section_rank(s->type) < rank) {
            return astore_fail(err, ASTORE_ERR_FORMAT, 64 + 32u * (uint64_t)i,
                               "section %s is out of order (META, XFRM, the payload, then CATS)",
                               s->type);
        }
        rank = section_rank(s->type);
    }
    if (unknown ? c->format_minor <= ASTORE_FORMAT_MINOR : c->format_minor != needed) {
        return astore_fail(err, ASTORE_ERR_FORMAT, 10,
                           "format_minor is %u but the sections need exactly %u%s",
                           (unsigned)c->format_minor,
                           (unsigned)(unknown ? ASTORE_FORMAT_MINOR + 1 : needed),
                           unknown ? " or more (a section this reader does not know)" : "");
    }
    return ASTORE_OK;
}

/* SIGN is the last section, and only there: critical, 136 bytes, ending the file. */
static astore_status check_signature_placement(const astore_container *c, astore_error *err) {
    const uint64_t table_end = sizeof(astore_file_header) + 32u * (uint64_t)c->section_count;
    const astore_section *last = &c->sections[c->section_count - 1];
    if (memcmp(last->type, ASTORE_SECTION_SIGNATURE, 4) != 0) {
        return astore_fail(err, ASTORE_ERR_FORMAT, table_end - 32,
                           "the last section is %s, expected SIGN", last->type);
    }
    for (size_t i = 0; i + 1 < c->section_count; i++) {
        if (memcmp(c->sections[i].type, ASTORE_SECTION_SIGNATURE, 4) == 0) {
            return astore_fail(err, ASTORE_ERR_FORMAT, 64 + 32u * (uint64_t)i,
                               "SIGN must be the last section");
        }
    }
    if (last->length != ASTORE_SIGNATURE_SECTION_LENGTH ||
        last->offset + last->length != (uint64_t)c->length) {
        return astore_fail(err, ASTORE_ERR_FORMAT, last->offset,
                           "SIGN section must be %u bytes ending the file",
                           (unsigned)ASTORE_SIGNATURE_SECTION_LENGTH);
    }
    if ((last->flags & ASTORE_SECTION_CRITICAL) == 0) {
        return astore_fail(err, ASTORE_ERR_FORMAT, table_end - 32 + 4,
                           "SIGN section must be marked critical");
    }
    return ASTORE_OK;
}

/* The section table: each entry read and checked in file order, then SIGN's placement. */
static astore_status parse_section_table(astore_container *c, astore_cursor *cursor,
                                         uint32_t count, astore_error *err) {
    uint64_t previous_end = sizeof(astore_file_header) + (uint64_t)count * 32u;
    for (uint32_t i = 0; i < count; i++) {
        uint64_t entry_offset = astore_cursor_offset(cursor);
        astore_status status = read_section_entry(c, cursor, i, err);
        if (status == ASTORE_OK) {
            status = check_section_bounds(c, i, entry_offset, previous_end, err);
        }
        if (status == ASTORE_OK) status = check_section_type(c, i, entry_offset, err);
        if (status != ASTORE_OK) return status;
        previous_end = c->sections[i].offset + c->sections[i].length;
    }
    c->section_count = count;
    return check_signature_placement(c, err);
}

static astore_status parse_signature(astore_container *c, astore_error *err) {
    const astore_section *sign = &c->sections[c->section_count - 1];
    astore_cursor cursor = astore_cursor_make(c->data + sign->offset, (size_t)sign->length,
                                              sign->offset);
    uint32_t reserved = 0;
    uint8_t recorded_key[32];
    if (!astore_read_u32(&cursor, &c->signature_algorithm) ||
        !astore_read_u32(&cursor, &reserved) ||
        !astore_read_bytes(&cursor, recorded_key, 32) ||
        !astore_read_bytes(&cursor, c->public_key, 32) ||
        !astore_read_bytes(&cursor, c->signature, 64)) {
        return astore_fail(err, ASTORE_ERR_TRUNCATED, sign->offset, "SIGN section is short");
    }
    astore_sha256(c->data, (size_t)sign->offset, c->store_key);
    if (memcmp(recorded_key, c->store_key, 32) != 0) {
        char expected[65], computed[65];
        astore_to_hex(recorded_key, 32, expected);
        astore_to_hex(c->store_key, 32, computed);
        return astore_fail(err, ASTORE_ERR_INTEGRITY, sign->offset + 8,
                           "store key mismatch: the container records %s but its bytes hash "
                           "to %s (the file was altered or damaged)",
                           expected, computed);
    }
    if (c->signature_algorithm > ASTORE_SIGNATURE_ED25519) {
        return astore_fail(err, ASTORE_ERR_VERSION, sign->offset,
                           "unknown signature algorithm %u (written by a newer version?)",
                           (unsigned)c->signature_algorithm);
    }
    if (reserved != 0) {
        return astore_fail(err, ASTORE_ERR_FORMAT, sign->offset + 4,
                           "reserved SIGN bytes are not zero");
    }
    if (c->signature_algorithm == ASTORE_SIGNATURE_NONE &&
        (!astore_all_zero(c->public_key, 32) || !astore_all_zero(c->signature, 64))) {
        return astore_fail(err, ASTORE_ERR_FORMAT, sign->offset + 40,
                           "unsigned container carries a public key or signature");
    }
    return ASTORE_OK;
}

astore_status astore_container_open(const uint8_t *data, size_t length,
                                    astore_container **out, astore_error *err) {
    astore_error_reset(err);
    if (out == NULL || (data == NULL && length > 0)) {
        return astore_fail(err, ASTORE_ERR_ARGUMENT, ASTORE_NO_OFFSET, "NULL argument");
    }
    *out = NULL;
    if (length == 0) {
        return astore_fail(err, ASTORE_ERR_TRUNCATED, 0, "file is empty");
    }
    astore_container *c = calloc(1, sizeof *c);
    if (c == NULL) return astore_fail(err, ASTORE_ERR_NOMEM, ASTORE_NO_OFFSET, "out of memory");
    c->data = data;
    c->length = length;
    if (((uintptr_t)data % 8u) != 0) {
        c->owned_copy = malloc(length);
        if (c->owned_copy == NULL) {
            free(c);
            return astore_fail(err, ASTORE_ERR_NOMEM, ASTORE_NO_OFFSET, "out of memory");
        }
        memcpy(c->owned_copy, data, length);
        c->data = c->owned_copy;
    }
    astore_cursor cursor = astore_cursor_make(c->data, c->length, 0);
    uint32_t section_count = 0;
    astore_status status = parse_header(c, &cursor, &section_count, err);
    if (status == ASTORE_OK) status = parse_section_table(c, &cursor, section_count, err);
    if (status == ASTORE_OK) status = parse_signature(c, err);
    /* after the store key: an altered file is reported as altered, not as non-canonical */
    if (status == ASTORE_OK) status = check_canonical_framing(c, err);
    if (status != ASTORE_OK) {
        astore_container_close(c);
        return status;
    }
    *out = c;
    return ASTORE_OK;
}

void astore_container_close(astore_container *container) {
    if (container == NULL) return;
    free(container->owned_copy);
    free(container);
}

void astore_container_version(const astore_container *container, uint16_t *major,
                              uint16_t *minor) {
    if (major) *major = container->format_major;
    if (minor) *minor = container->format_minor;
}

void astore_container_store_key(const astore_container *container, uint8_t key[32]) {
    memcpy(key, container->store_key, 32);
}

void astore_container_signature(const astore_container *container, uint32_t *algorithm,
                                uint8_t public_key[32], uint8_t signature[64]) {
    if (algorithm) *algorithm = container->signature_algorithm;
    if (public_key) memcpy(public_key, container->public_key, 32);
    if (signature) memcpy(signature, container->signature, 64);
}

size_t astore_container_signed_message(const astore_container *container, uint8_t *buffer,
                                       size_t capacity) {
    char key_hex[65];
    char message[160];
    astore_to_hex(container->store_key, 32, key_hex);
    int written = snprintf(message, sizeof message,
                           "pyastore container signature v1\nformat: %u.%u\n"
                           "store-key: sha256:%s\n",
                           (unsigned)container->format_major, (unsigned)container->format_minor,
                           key_hex);
    size_t length = written > 0 ? (size_t)written : 0;
    if (buffer != NULL) memcpy(buffer, message, length < capacity ? length : capacity);
    return length;
}

size_t astore_container_section_count(const astore_container *container) {
    return container->section_count;
}

static void fill_info(const astore_container *c, const astore_section *s,
                      astore_section_info *info) {
    memcpy(info->type, s->type, 5);
    info->flags = s->flags;
    info->offset = s->offset;
    info->length = s->length;
    info->data = c->data + s->offset;
}

astore_status astore_container_section(const astore_container *container, size_t index,
                                       astore_section_info *info, astore_error *err) {
    astore_error_reset(err);
    if (container == NULL || info == NULL || index >= container->section_count) {
        return astore_fail(err, ASTORE_ERR_ARGUMENT, ASTORE_NO_OFFSET,
                           "no section with index %zu", index);
    }
    fill_info(container, &container->sections[index], info);
    return ASTORE_OK;
}

astore_status astore_container_find(const astore_container *container, const char *type,
                                    astore_section_info *info, astore_error *err) {
    astore_error_reset(err);
    if (container == NULL || type == NULL || info == NULL || strlen(type) != 4) {
        return astore_fail(err, ASTORE_ERR_ARGUMENT, ASTORE_NO_OFFSET,
                           "a section type is 4 characters");
    }
    for (size_t i = 0; i < container->section_count; i++) {
        if (memcmp(container->sections[i].type, type, 4) == 0) {
            fill_info(container, &container->sections[i], info);
            return ASTORE_OK;
        }
    }
    return astore_fail(err, ASTORE_ERR_ARGUMENT, ASTORE_NO_OFFSET, "no %s section", type);
}
