/*
 * meta.c -- the META section: a bounded MessagePack reader, and the fields of META that
 * every reader relies on (listed at astore_model_open in astore.h).
 *
 * The reader accepts what msgpack-python's unpackb(raw=False, strict_map_key=True) accepts,
 * which is how pyastore decodes META, so the C core and Python agree on what is valid
 * msgpack: every type of the msgpack specification; strings that are valid UTF-8 (no
 * overlong forms, surrogates or code points past U+10FFFF); map keys that are strings or
 * binary; extension types 0..127, and -1 for timestamps of 4, 8 or 12 bytes with at most
 * 999999999 nanoseconds (the other negative types are reserved); at most
 * ASTORE_MSGPACK_MAX_DEPTH arrays and maps open at once; and exactly one value filling the
 * section. Lengths are big-endian, read byte by byte; every length is
 * checked against the bytes left before it is used, and an array or map may announce no
 * more elements than bytes are left (each takes at least one), which bounds every
 * allocation by the section's size. Skipping is iterative, so hostile nesting cannot
 * exhaust the stack. Errors are ASTORE_ERR_FORMAT with the offset of the offending item.
 *
 * META must also be in its one canonical encoding (check_canonical below): the shortest
 * encoding of every value, float64 floats, string keys in strictly increasing order.
 */
#include <stdlib.h>
#include <string.h>

#include "astore_internal.h"

static astore_status malformed(astore_error *err, uint64_t offset, const char *problem) {
    return astore_fail(err, ASTORE_ERR_FORMAT, offset, "META is not valid msgpack: %s",
                       problem);
}

static bool read_big_endian(astore_cursor *cursor, size_t size, uint64_t *out) {
    uint8_t bytes[8];
    if (!astore_read_bytes(cursor, bytes, size)) return false;
    uint64_t value = 0;
    for (size_t i = 0; i < size; i++) value = (value << 8) | bytes[i];
    *out = value;
    return true;
}

/* UTF-8 as Python's strict decoder takes it (RFC 3629). */
static bool is_utf8(const uint8_t *s, size_t length) {
    size_t i = 0;
    while (i < length) {
        uint8_t b = s[i];
        size_t extra;
        uint8_t low = 0x80, high = 0xBF; /* allowed range of the second byte */
        if (b < 0x80) {
            i++;
            continue;
        } else if (b >= 0xC2 && b <= 0xDF) {
            extra = 1;
        } else if (b >= 0xE0 && b <= 0xEF) {
            extra = 2;
            if (b == 0xE0) low = 0xA0;  /* no overlong forms */
            if (b == 0xED) high = 0x9F; /* no surrogates     */
        } else if (b >= 0xF0 && b <= 0xF4) {
            extra = 3;
            if (b == 0xF0) low = 0x90;  /* no overlong forms   */
            if (b == 0xF4) high = 0x8F; /* nothing past 10FFFF */
        } else {
            return false;
        }
        if (length - i - 1 < extra) return false;
        if (s[i + 1] < low || s[i + 1] > high) return false;
        for (size_t k = 2; k <= extra; k++) {
            if ((s[i + k] & 0xC0) != 0x80) return false;
        }
        i += extra + 1;
    }
    return true;
}

/* A timestamp (extension type -1) as msgpack-python decodes it. */
static bool is_timestamp(const uint8_t *data, uint32_t length) {
    astore_cursor cursor = astore_cursor_make(data, length, 0);
    uint64_t value = 0;
    if (length == 4) return true;
    if (length == 8) return read_big_endian(&cursor, 8, &value) && (value >> 34) <= 999999999u;
    if (length == 12) return read_big_endian(&cursor, 4, &value) && value <= 999999999u;
    return false;
}

/* Bytes of the fixed-size scalars and of the length fields, by first byte (0: neither). */
static void item_layout(uint8_t b, astore_msgpack_kind *kind, size_t *fixed,
                        size_t *length_size) {
    *fixed = 0;
    *length_size = 0;
    if (b <= 0x7F || b >= 0xE0) {
        *kind = ASTORE_MSGPACK_INT;
    } else if (b == 0xC0) {
        *kind = ASTORE_MSGPACK_NIL;
    } else if (b == 0xC2 || b == 0xC3) {
        *kind = ASTORE_MSGPACK_BOOL;
    } else if (b >= 0xC4 && b <= 0xC6) {
        *kind = ASTORE_MSGPACK_BIN;
        *length_size = (size_t)1 << (b - 0xC4);
    } else if (b >= 0xC7 && b <= 0xC9) {
        *kind = ASTORE_MSGPACK_EXT;
        *length_size = (size_t)1 << (b - 0xC7);
    } else if (b == 0xCA || b == 0xCB) {
        *kind = ASTORE_MSGPACK_FLOAT;
        *fixed = b == 0xCA ? 4 : 8;
    } else if (b >= 0xCC && b <= 0xD3) {
        *kind = ASTORE_MSGPACK_INT;
        *fixed = (size_t)1 << ((b - 0xCC) % 4);
    } else if (b >= 0xD4 && b <= 0xD8) {
        *kind = ASTORE_MSGPACK_EXT;
        *fixed = (size_t)1 << (b - 0xD4);
    } else if ((b >= 0xA0 && b <= 0xBF) || (b >= 0xD9 && b <= 0xDB)) {
        *kind = ASTORE_MSGPACK_STR;
        *length_size = b >= 0xD9 ? (size_t)1 << (b - 0xD9) : 0;
    } else if ((b >= 0x90 && b <= 0x9F) || b == 0xDC || b == 0xDD) {
        *kind = ASTORE_MSGPACK_ARRAY;
        *length_size = b == 0xDC ? 2 : b == 0xDD ? 4 : 0;
    } else { /* 0x80..0x8F, 0xDE, 0xDF: maps; 0xC1 is never used and rejected by the caller */
        *kind = ASTORE_MSGPACK_MAP;
        *length_size = b == 0xDE ? 2 : b == 0xDF ? 4 : 0;
    }
}

/* The first byte and the length or number fields of an item: its kind, its count, and for
 * extensions their type; the cursor is left at the item's data (or elements). */
static astore_status read_item_header(astore_cursor *cursor, astore_msgpack_item *item,
                                      uint8_t *ext_type, astore_error *err) {
    item->offset = astore_cursor_offset(cursor);
    item->count = 0;
    item->data = NULL;
    uint8_t b;
    if (!astore_read_bytes(cursor, &b, 1)) {
        return malformed(err, item->offset, "the section ends where a value should start");
    }
    if (b == 0xC1) return malformed(err, item->offset, "byte 0xc1, which msgpack never uses");
    size_t fixed, length_size;
    item_layout(b, &item->kind, &fixed, &length_size);
    if (item->kind == ASTORE_MSGPACK_EXT) {
        uint64_t length = fixed;
        if ((length_size > 0 && !read_big_endian(cursor, length_size, &length)) ||
            !astore_read_bytes(cursor, ext_type, 1)) {
            return malformed(err, item->offset, "an extension header is cut short");
        }
        fixed = 0;
        item->count = (uint32_t)length;
    } else if (length_size > 0) {
        uint64_t length = 0;
        if (!read_big_endian(cursor, length_size, &length)) {
            return malformed(err, item->offset, "a length is cut short");
        }
        item->count = (uint32_t)length;
    } else if (item->kind == ASTORE_MSGPACK_STR) {
        item->count = b & 0x1Fu;
    } else if (item->kind == ASTORE_MSGPACK_ARRAY || item->kind == ASTORE_MSGPACK_MAP) {
        item->count = b & 0x0Fu;
    }
    if (fixed > astore_cursor_left(cursor)) {
        return malformed(err, item->offset, "a number is cut short");
    }
    cursor->position += fixed;
    return ASTORE_OK;
}

astore_status astore_msgpack_read(astore_cursor *cursor, astore_msgpack_item *item,
                                  astore_error *err) {
    uint8_t ext_type = 0;
    astore_status status = read_item_header(cursor, item, &ext_type, err);
    if (status != ASTORE_OK) return status;
    const size_t left = astore_cursor_left(cursor);
    switch (item->kind) {
    case ASTORE_MSGPACK_STR:
    case ASTORE_MSGPACK_BIN:
    case ASTORE_MSGPACK_EXT:
        if (item->count > left) {
            return malformed(err, item->offset,
                             item->kind == ASTORE_MSGPACK_STR   ? "a string runs past the end"
                             : item->kind == ASTORE_MSGPACK_BIN ? "binary data runs past the end"
                                                                : "extension data runs past "
                                                                  "the end");
        }
        item->data = cursor->data + cursor->position;
        cursor->position += item->count;
        if (item->kind == ASTORE_MSGPACK_STR && !is_utf8(item->data, item->count)) {
            return malformed(err, item->offset, "a string is not UTF-8");
        }
        if (item->kind == ASTORE_MSGPACK_EXT && ext_type == 0xFF &&
            !is_timestamp(item->data, item->count)) {
            return malformed(err, item->offset, "an invalid timestamp");
        }
        if (item->kind == ASTORE_MSGPACK_EXT && ext_type >= 0x80 && ext_type != 0xFF) {
            return malformed(err, item->offset, "a reserved (negative) extension type");
        }
        return ASTORE_OK;
    case ASTORE_MSGPACK_ARRAY:
        if (item->count > left) {
            return malformed(err, item->offset, "an array announces more items than bytes left");
        }
        return ASTORE_OK;
    case ASTORE_MSGPACK_MAP:
        if (item->count > left / 2) {
            return malformed(err, item->offset, "a map announces more entries than bytes left");
        }
        return ASTORE_OK;
    default:
        return ASTORE_OK;
    }
}

astore_status astore_msgpack_skip(astore_cursor *cursor, unsigned open, astore_error *err) {
    uint64_t remaining[ASTORE_MSGPACK_MAX_DEPTH]; /* elements left in each open container */
    bool is_map[ASTORE_MSGPACK_MAX_DEPTH];
    size_t depth = 0;
    do {
        bool is_key = depth > 0 && is_map[depth - 1] && remaining[depth - 1] % 2 == 0;
        if (depth > 0) remaining[depth - 1]--;
        astore_msgpack_item item;
        astore_status status = astore_msgpack_read(cursor, &item, err);
        if (status != ASTORE_OK) return status;
        if (is_key && item.kind != ASTORE_MSGPACK_STR && item.kind != ASTORE_MSGPACK_BIN) {
            return malformed(err, item.offset, "a map key is not a string");
        }
        if (item.kind == ASTORE_MSGPACK_ARRAY || item.kind == ASTORE_MSGPACK_MAP) {
            if ((size_t)open + depth + 1 > ASTORE_MSGPACK_MAX_DEPTH) {
                return malformed(err, item.offset, "arrays and maps nest more than 1024 deep");
            }
            if (item.count > 0) {
                bool map = item.kind == ASTORE_MSGPACK_MAP;
                remaining[depth] = map ? 2 * (uint64_t)item.count : item.count;
                is_map[depth] = map;
                depth++;
            }
        }
        while (depth > 0 && remaining[depth - 1] == 0) depth--;
    } while (depth > 0);
    return ASTORE_OK;
}

/* ---- canonical encoding ------------------------------------------------------------------ */

static uint64_t big_endian_at(const uint8_t *bytes, size_t size) {
    uint64_t value = 0;
    for (size_t i = 0; i < size; i++) value = (value << 8) | bytes[i];
    return value;
}

/*
 * Why the item whose bytes start at `raw` (already read whole as `item`) is not in its one
 * canonical encoding -- the one msgpack-python's packb(use_bin_type=True,
 * use_single_float=False) writes -- or NULL when it is.
 */
static const char *non_canonical(const uint8_t *raw, const astore_msgpack_item *item) {
    const uint8_t b = raw[0];
    const uint32_t n = item->count;
    switch (item->kind) {
    case ASTORE_MSGPACK_INT:
        if (b >= 0xCC && b <= 0xCF) {
            static const uint64_t floor[4] = {0x80u, 0x100u, 0x10000u, 0x100000000u};
            size_t size = (size_t)1 << (b - 0xCC);
            return big_endian_at(raw + 1, size) < floor[b - 0xCC]
                       ? "an integer in a longer encoding than its value needs" : NULL;
        }
        if (b >= 0xD0 && b <= 0xD3) {
            static const uint64_t floor[4] = {32u, 0x80u, 0x8000u, 0x80000000u};
            size_t size = (size_t)1 << (b - 0xD0);
            uint64_t bits = big_endian_at(raw + 1, size);
            uint64_t sign = (uint64_t)1 << (8 * size - 1);
            if ((bits & sign) == 0) return "a non-negative integer in a signed encoding";
            uint64_t magnitude = (~bits & (sign - 1)) + 1; /* of the negative value */
            return magnitude <= floor[b - 0xD0]
                       ? "an integer in a longer encoding than its value needs" : NULL;
        }
        return NULL;
    case ASTORE_MSGPACK_FLOAT:
        return b == 0xCA ? "a float32 (META floats are float64)" : NULL;
    case ASTORE_MSGPACK_STR:
        if ((b == 0xD9 && n < 32) || (b == 0xDA && n <= 0xFF) || (b == 0xDB && n <= 0xFFFF)) {
            return "a string length in a longer encoding than it needs";
        }
        return NULL;
    case ASTORE_MSGPACK_BIN:
        if ((b == 0xC5 && n <= 0xFF) || (b == 0xC6 && n <= 0xFFFF)) {
            return "a binary length in a longer encoding than it needs";
        }
        return NULL;
    case ASTORE_MSGPACK_ARRAY:
    case ASTORE_MSGPACK_MAP:
        if (((b == 0xDC || b == 0xDE) && n < 16) || ((b == 0xDD || b == 0xDF) && n <= 0xFFFF)) {
            return "an array or map length in a longer encoding than it needs";
        }
        return NULL;
    case ASTORE_MSGPACK_EXT: {
        bool fixed_size = n == 1 || n == 2 || n == 4 || n == 8 || n == 16;
        if ((b == 0xC7 && fixed_size) || (b == 0xC8 && n <= 0xFF) ||
            (b == 0xC9 && n <= 0xFFFF)) {
            return "an extension length in a longer encoding than it needs";
        }
        uint8_t type = item->data[-1]; /* the type byte precedes the data */
        if (type == 0xFF && n == 8) {
            uint64_t value = big_endian_at(item->data, 8);
            if ((value >> 34) == 0 && value <= 0xFFFFFFFFu) {
                return "a timestamp in 64 bits that fits in 32";
            }
        }
        if (type == 0xFF && n == 12 && (big_endian_at(item->data + 4, 8) >> 34) == 0) {
            return "a timestamp in 96 bits that fits in 64";
        }
        return NULL;
    }
    default:
        return NULL;
    }
}

/* Key `a` sorts before key `b`: bytewise, a prefix first (UTF-8 keeps code point order). */
static bool key_before(const uint8_t *a, size_t a_length, const uint8_t *b, size_t b_length) {
    size_t common = a_length < b_length ? a_length : b_length;
    int order = common ? memcmp(a, b, common) : 0;
    return order < 0 || (order == 0 && a_length < b_length);
}

/*
 * META is in its one canonical encoding (docs/FORMAT.md): every item as non_canonical
 * wants it, map keys strings in strictly increasing order (so none twice). The bytes were
 * checked as msgpack before (astore_msgpack_skip), so the walk only compares.
 */
static astore_status check_canonical(astore_cursor cursor, astore_error *err) {
    typedef struct open_item {
        uint64_t remaining; /* elements left                                 */
        bool is_map;
        const uint8_t *last_key; /* the map's previous key, NULL before the first */
        size_t last_key_length;
    } open_item;
    open_item *open = malloc(sizeof(open_item) * ASTORE_MSGPACK_MAX_DEPTH);
    if (open == NULL) return astore_fail(err, ASTORE_ERR_NOMEM, ASTORE_NO_OFFSET, "out of memory");
    size_t depth = 0;
    astore_status status = ASTORE_OK;
    do {
        open_item *parent = depth > 0 ? &open[depth - 1] : NULL;
        bool is_key = parent != NULL && parent->is_map && parent->remaining % 2 == 0;
        if (parent != NULL) parent->remaining--;
        const uint8_t *raw = cursor.data + cursor.position;
        astore_msgpack_item item;
        status = astore_msgpack_read(&cursor, &item, err);
        if (status != ASTORE_OK) break;
        const char *problem = non_canonical(raw, &item);
        if (problem == NULL && is_key) {
            if (item.kind != ASTORE_MSGPACK_STR) {
                problem = "a map key that is not a string";
            } else if (parent->last_key != NULL &&
                       !key_before(parent->last_key, parent->last_key_length, item.data,
                                   item.count)) {
                problem = "map keys not in increasing order, or a key given twice";
            } else {
                parent->last_key = item.data;
                parent->last_key_length = item.count;
            }
        }
        if (problem != NULL) {
            status = astore_fail(err, ASTORE_ERR_FORMAT, item.offset,
                                 "META is not canonical msgpack: %s", problem);
            break;
        }
        if ((item.kind == ASTORE_MSGPACK_ARRAY || item.kind == ASTORE_MSGPACK_MAP) &&
            item.count > 0) {
            if (depth == ASTORE_MSGPACK_MAX_DEPTH) { /* not reached: the skip checked it */
                status = malformed(err, item.offset, "arrays and maps nest more than 1024 deep");
                break;
            }
            bool map = item.kind == ASTORE_MSGPACK_MAP;
            open[depth].remaining = map ? 2 * (uint64_t)item.count : item.count;
            open[depth].is_map = map;
            open[depth].last_key = NULL;
            open[depth].last_key_length = 0;
            depth++;
        }
        while (depth > 0 && open[depth - 1].remaining == 0) depth--;
    } while (depth > 0);
    free(open);
    return status;
}

/* ---- the fields of META ----------------------------------------------------------------- */

void astore_quote_name(const char *name, size_t length, char out[ASTORE_QUOTED_NAME_SIZE]) {
    const size_t most = ASTORE_QUOTED_NAME_SIZE - 4; /* room for "..." and the NUL */
    size_t keep = length;
    if (keep > most) {
        keep = most;
        while (keep > 0 && ((unsigned char)name[keep] & 0xC0) == 0x80) keep--;
    }
    memcpy(out, name, keep);
    strcpy(out + keep, keep < length ? "..." : "");
}

/*
 * Reads the map at `position` and records, for each of `n_keys` string keys, the position
 * of its (last) value in `positions`, SIZE_MAX when absent. *is_map is false when the value
 * there is not a map (nothing is recorded then). The bytes were checked whole before.
 */
static astore_status find_fields(astore_cursor cursor, size_t position, unsigned open,
                                 const char *const *keys, size_t n_keys, size_t *positions,
                                 bool *is_map, astore_error *err) {
    cursor.position = position;
    for (size_t k = 0; k < n_keys; k++) positions[k] = SIZE_MAX;
    astore_msgpack_item map;
    astore_status status = astore_msgpack_read(&cursor, &map, err);
    *is_map = status == ASTORE_OK && map.kind == ASTORE_MSGPACK_MAP;
    for (uint32_t i = 0; status == ASTORE_OK && *is_map && i < map.count; i++) {
        astore_msgpack_item key;
        status = astore_msgpack_read(&cursor, &key, err);
        if (status != ASTORE_OK) break;
        for (size_t k = 0; key.kind == ASTORE_MSGPACK_STR && k < n_keys; k++) {
            if (strlen(keys[k]) == key.count && memcmp(keys[k], key.data, key.count) == 0) {
                positions[k] = cursor.position;
            }
        }
        status = astore_msgpack_skip(&cursor, open + 1, err);
    }
    return status;
}

/* The item at `position` when it is of `kind`; false when absent or of another kind. */
static bool item_at(astore_cursor cursor, size_t position, astore_msgpack_kind kind,
                    astore_msgpack_item *item) {
    if (position == SIZE_MAX) return false;
    cursor.position = position;
    return astore_msgpack_read(&cursor, item, NULL) == ASTORE_OK && item->kind == kind;
}

static const char *kind_name(astore_msgpack_kind kind) {
    return kind == ASTORE_MSGPACK_STR   ? "a string"
           : kind == ASTORE_MSGPACK_MAP ? "a map"
                                        : "an array";
}

/* "categorical": the input's cells are categories that the caller maps to codes by the
 * input's `categorical` map before scoring (NaN where its rules say missing); the code column
 * is scored as "as_missing". Readers that predate the policy refuse such a container, which
 * they would otherwise score wrongly (docs/FORMAT.md, "Categorical inputs"). */
static bool parse_policy(const astore_msgpack_item *text, astore_missing_policy *policy) {
    static const char *const names[] = {"as_missing", "impute", "error", "categorical"};
    static const astore_missing_policy policies[] = {
        ASTORE_MISSING_AS_MISSING, ASTORE_MISSING_IMPUTE, ASTORE_MISSING_ERROR,
        ASTORE_MISSING_AS_MISSING};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (strlen(names[i]) == text->count && memcmp(names[i], text->data, text->count) == 0) {
            *policy = policies[i];
            return true;
        }
    }
    return false;
}

/* One element of `inputs` (with_policy) or `outputs`: a map with a `name` string (and a
 * `missing` policy). */
static astore_status parse_variable(astore_cursor cursor, size_t position, const char *field,
                                    size_t index, bool with_policy, astore_input_info *info,
                                    astore_error *err) {
    static const char *const keys[] = {"name", "missing"};
    size_t positions[2];
    bool is_map;
    astore_msgpack_item name, missing;
    uint64_t offset = cursor.base + position;
    astore_status status = find_fields(cursor, position, 2, keys, with_policy ? 2 : 1,
                                       positions, &is_map, err);
    if (status != ASTORE_OK) return status;
    if (!is_map || !item_at(cursor, positions[0], ASTORE_MSGPACK_STR, &name)) {
        return astore_fail(err, ASTORE_ERR_FORMAT, offset, "META %s[%zu] has no name", field,
                           index);
    }
    if (!with_policy) return ASTORE_OK;
    char quoted[ASTORE_QUOTED_NAME_SIZE];
    astore_quote_name((const char *)name.data, name.count, quoted);
    if (!item_at(cursor, positions[1], ASTORE_MSGPACK_STR, &missing) ||
        !parse_policy(&missing, &info->missing_policy)) {
        return astore_fail(err, ASTORE_ERR_FORMAT, offset,
                           "META inputs[%zu] ('%s') has no missing-value policy 'as_missing', "
                           "'impute', 'error' or 'categorical'",
                           index, quoted);
    }
    info->name = (const char *)name.data;
    info->name_length = name.count;
    info->accepts_missing = info->missing_policy != ASTORE_MISSING_ERROR;
    return ASTORE_OK;
}

/* Orders inputs by name (bytes, then length) and equal names by position in `inputs`. */
static int compare_names(const void *a, const void *b) {
    const astore_input_info *x = *(const astore_input_info *const *)a;
    const astore_input_info *y = *(const astore_input_info *const *)b;
    size_t common = x->name_length < y->name_length ? x->name_length : y->name_length;
    int order = common > 0 ? memcmp(x->name, y->name, common) : 0;
    if (order != 0) return order;
    if (x->name_length != y->name_length) return x->name_length < y->name_length ? -1 : 1;
    return (x > y) - (x < y);
}

static bool same_name(const astore_input_info *x, const astore_input_info *y) {
    return x->name_length == y->name_length &&
           (x->name_length == 0 || memcmp(x->name, y->name, x->name_length) == 0);
}

/*
 * Input names are unique, byte for byte: a row is matched to the inputs by name, so two
 * inputs of one name would make one of them unreachable. Sorting puts equal names side by
 * side in O(n log n) (a hostile META may hold many inputs); the one reported is the first
 * repeat in input order: inputs[later] whose name inputs[earlier] already had.
 */
static astore_status check_unique_names(astore_cursor cursor, size_t position,
                                        const astore_meta *meta, astore_error *err) {
    size_t n = meta->n_inputs;
    if (n < 2) return ASTORE_OK;
    const astore_input_info **sorted = malloc(n * sizeof *sorted);
    if (sorted == NULL) {
        return astore_fail(err, ASTORE_ERR_NOMEM, ASTORE_NO_OFFSET, "out of memory");
    }
    for (size_t i = 0; i < n; i++) sorted[i] = &meta->inputs[i];
    qsort(sorted, n, sizeof *sorted, compare_names);
    size_t earlier = SIZE_MAX, later = SIZE_MAX, run = 0;
    for (size_t k = 1; k < n; k++) {
        if (!same_name(sorted[run], sorted[k])) {
            run = k;
        } else if (k == run + 1 && (size_t)(sorted[k] - meta->inputs) < later) {
            earlier = (size_t)(sorted[run] - meta->inputs);
            later = (size_t)(sorted[k] - meta->inputs);
        }
    }
    free(sorted);
    if (later == SIZE_MAX) return ASTORE_OK;
    /* the offset of inputs[later], for the message: walk the array up to it */
    astore_msgpack_item array;
    cursor.position = position;
    astore_status status = astore_msgpack_read(&cursor, &array, err);
    for (size_t i = 0; status == ASTORE_OK && i < later; i++) {
        status = astore_msgpack_skip(&cursor, 2, err);
    }
    if (status != ASTORE_OK) return status;
    char quoted[ASTORE_QUOTED_NAME_SIZE];
    astore_quote_name(meta->inputs[later].name, meta->inputs[later].name_length, quoted);
    return astore_fail(err, ASTORE_ERR_FORMAT, cursor.base + cursor.position,
                       "META inputs[%zu] and inputs[%zu] are both named '%s': input names "
                       "must be unique",
                       earlier, later, quoted);
}

/* `inputs` (into meta->inputs) or `outputs` (counted): an array of variables. */
static astore_status parse_variables(astore_cursor cursor, size_t position, bool inputs,
                                     astore_meta *meta, astore_error *err) {
    astore_msgpack_item array;
    cursor.position = position;
    astore_status status = astore_msgpack_read(&cursor, &array, err);
    if (status != ASTORE_OK) return status;
    if (inputs) {
        /* count <= bytes of the section (checked by the reader): a bounded allocation */
        meta->inputs = calloc(array.count ? array.count : 1, sizeof *meta->inputs);
        meta->refused = calloc(array.count ? array.count : 1, sizeof *meta->refused);
        if (meta->inputs == NULL || meta->refused == NULL) {
            return astore_fail(err, ASTORE_ERR_NOMEM, ASTORE_NO_OFFSET, "out of memory");
        }
        meta->n_inputs = array.count;
        meta->inputs_offset = array.offset;
    } else {
        meta->n_outputs = array.count;
        meta->outputs_offset = array.offset;
    }
    for (uint32_t i = 0; i < array.count; i++) {
        astore_input_info output;
        astore_input_info *info = inputs ? &meta->inputs[i] : &output;
        status = parse_variable(cursor, cursor.position, inputs ? "inputs" : "outputs", i,
                                inputs, info, err);
        if (status == ASTORE_OK) status = astore_msgpack_skip(&cursor, 2, err);
        if (status != ASTORE_OK) return status;
        if (inputs && info->missing_policy == ASTORE_MISSING_ERROR) {
            meta->refused[meta->n_refused++] = i;
        }
    }
    return inputs ? check_unique_names(cursor, position, meta, err) : ASTORE_OK;
}

enum { FIELD_NAME, FIELD_CREATED, FIELD_ALGORITHM, FIELD_INPUTS, FIELD_OUTPUTS, FIELD_RULES,
       FIELD_COUNT };

static astore_status parse_fields(astore_cursor cursor, astore_meta *meta, astore_error *err) {
    static const char *const keys[FIELD_COUNT] = {"name",   "created", "algorithm",
                                                  "inputs", "outputs", "score_rules"};
    static const astore_msgpack_kind kinds[FIELD_COUNT] = {
        ASTORE_MSGPACK_STR,   ASTORE_MSGPACK_STR,   ASTORE_MSGPACK_MAP,
        ASTORE_MSGPACK_ARRAY, ASTORE_MSGPACK_ARRAY, ASTORE_MSGPACK_MAP};
    size_t positions[FIELD_COUNT];
    bool is_map;
    astore_status status = find_fields(cursor, 0, 0, keys, FIELD_COUNT, positions, &is_map, err);
    if (status != ASTORE_OK) return status;
    if (!is_map) return astore_fail(err, ASTORE_ERR_FORMAT, cursor.base, "META is not a map");
    for (size_t k = 0; k < FIELD_COUNT; k++) {
        astore_msgpack_item item;
        if (!item_at(cursor, positions[k], kinds[k], &item)) {
            return astore_fail(err, ASTORE_ERR_FORMAT,
                               positions[k] == SIZE_MAX ? cursor.base : cursor.base + positions[k],
                               "META field '%s' is missing or not %s", keys[k],
                               kind_name(kinds[k]));
        }
    }
    status = parse_variables(cursor, positions[FIELD_INPUTS], true, meta, err);
    if (status == ASTORE_OK) {
        status = parse_variables(cursor, positions[FIELD_OUTPUTS], false, meta, err);
    }
    if (status != ASTORE_OK) return status;
    static const char *const task_key[] = {"task"};
    size_t task;
    astore_msgpack_item item;
    status = find_fields(cursor, positions[FIELD_RULES], 1, task_key, 1, &task, &is_map, err);
    if (status == ASTORE_OK && !item_at(cursor, task, ASTORE_MSGPACK_STR, &item)) {
        return astore_fail(err, ASTORE_ERR_FORMAT, cursor.base + positions[FIELD_RULES],
                           "META score_rules has no task");
    }
    return status;
}

astore_status astore_meta_parse(const uint8_t *body, size_t length, uint64_t base,
                                astore_meta *meta, astore_error *err) {
    memset(meta, 0, sizeof *meta);
    astore_cursor cursor = astore_cursor_make(body, length, base);
    astore_status status = astore_msgpack_skip(&cursor, 0, err);
    if (status == ASTORE_OK && astore_cursor_left(&cursor) != 0) {
        status = malformed(err, astore_cursor_offset(&cursor),
                           "bytes follow the value that should fill the section");
    }
    if (status == ASTORE_OK) status = check_canonical(astore_cursor_make(body, length, base), err);
    if (status == ASTORE_OK) {
        status = parse_fields(astore_cursor_make(body, length, base), meta, err);
    }
    if (status != ASTORE_OK) astore_meta_release(meta);
    return status;
}

void astore_meta_release(astore_meta *meta) {
    free(meta->inputs);
    free(meta->refused);
    memset(meta, 0, sizeof *meta);
}
