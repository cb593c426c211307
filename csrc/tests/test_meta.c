/*
 * test_meta.c -- the bounded MessagePack reader and the META checks of meta.c, meant to run
 * under AddressSanitizer + UBSan (csrc/Makefile's `check`).
 *
 *   test_meta
 *
 * 1. every msgpack type is read and skipped exactly (and every truncation of it fails);
 * 2. malformed msgpack of every kind fails with ASTORE_ERR_FORMAT at the offending offset:
 *    the unused byte 0xc1, lengths past the end (str, bin, ext, array, map, 8/16/32-bit
 *    lengths), invalid UTF-8, non-string map keys, invalid timestamps, reserved extension
 *    types;
 * 3. nesting: 1024 open arrays or maps are read, one more is refused, without recursion;
 * 4. META: a valid document parses into its inputs and policies; each missing or mistyped
 *    field fails; a key given twice is refused; two inputs of one name are refused, the
 *    first repeat named with both positions; every truncation and every byte mutation of
 *    a valid META either parses or fails cleanly;
 * 5. canonical encoding: every value in a longer encoding than the one msgpack-python
 *    writes (integers, lengths, extensions, timestamps), float32, unsorted or binary keys
 *    is refused at its offset; the canonical forms next to them are accepted.
 * Prints "N passed, M failed" and exits non-zero on any failure.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../astore_internal.h"
#include "check.h"

#define BASE 1000u /* the container offset the test documents pretend to start at */

/* Skips one value of `bytes` in an exact-size heap copy (so ASan sees any overread). */
static astore_status skip_exact(const uint8_t *bytes, size_t length, size_t *consumed,
                                astore_error *err) {
    uint8_t *copy = malloc(length ? length : 1);
    memcpy(copy, bytes, length);
    astore_cursor cursor = astore_cursor_make(copy, length, BASE);
    astore_error_reset(err);
    astore_status status = astore_msgpack_skip(&cursor, 0, err);
    *consumed = cursor.position;
    free(copy);
    return status;
}

typedef struct sample {
    const char *what;
    const char *bytes;
    size_t length;
} sample;

#define SAMPLE(what, literal) {what, literal, sizeof literal - 1}

static const sample valid[] = {
    SAMPLE("nil", "\xc0"),
    SAMPLE("false", "\xc2"),
    SAMPLE("true", "\xc3"),
    SAMPLE("positive fixint", "\x7f"),
    SAMPLE("negative fixint", "\xe0"),
    SAMPLE("uint8", "\xcc\xff"),
    SAMPLE("uint16", "\xcd\xff\xff"),
    SAMPLE("uint32", "\xce\xff\xff\xff\xff"),
    SAMPLE("uint64", "\xcf\xff\xff\xff\xff\xff\xff\xff\xff"),
    SAMPLE("int8", "\xd0\x80"),
    SAMPLE("int16", "\xd1\x80\x00"),
    SAMPLE("int32", "\xd2\x80\x00\x00\x00"),
    SAMPLE("int64", "\xd3\x80\x00\x00\x00\x00\x00\x00\x00"),
    SAMPLE("float32", "\xca\x3f\x80\x00\x00"),
    SAMPLE("float64", "\xcb\x3f\xf0\x00\x00\x00\x00\x00\x00"),
    SAMPLE("fixstr", "\xa3" "abc"),
    SAMPLE("empty fixstr", "\xa0"),
    SAMPLE("str8", "\xd9\x02" "\xc3\xa9"),
    SAMPLE("str16", "\xda\x00\x04" "\xe2\x82\xac!"),
    SAMPLE("str32", "\xdb\x00\x00\x00\x04" "\xf0\x9f\x98\x80"),
    SAMPLE("bin8", "\xc4\x02\xff\x00"),
    SAMPLE("bin16", "\xc5\x00\x01\xc1"),
    SAMPLE("bin32", "\xc6\x00\x00\x00\x00"),
    SAMPLE("fixext1", "\xd4\x01\x00"),
    SAMPLE("fixext2", "\xd5\x01\x00\x00"),
    SAMPLE("fixext4", "\xd6\x01\x00\x00\x00\x00"),
    SAMPLE("fixext8", "\xd7\x01\x00\x00\x00\x00\x00\x00\x00\x00"),
    SAMPLE("fixext16", "\xd8\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"),
    SAMPLE("ext8", "\xc7\x03\x05" "abc"),
    SAMPLE("ext16", "\xc8\x00\x01\x05" "a"),
    SAMPLE("ext32", "\xc9\x00\x00\x00\x00\x05"),
    SAMPLE("extension type 127", "\xd4\x7f\x00"),
    SAMPLE("timestamp64 through ext8", "\xc7\x08\xff\x00\x00\x00\x00\x00\x00\x00\x00"),
    SAMPLE("timestamp32", "\xd6\xff\xff\xff\xff\xff"),
    SAMPLE("timestamp64", "\xd7\xff\xee\x6b\x27\xfc\x00\x00\x00\x00"), /* 999999999 ns */
    SAMPLE("timestamp96", "\xc7\x0c\xff\x3b\x9a\xc9\xff\x00\x00\x00\x00\x00\x00\x00\x00"),
    SAMPLE("fixarray", "\x93\xc0\xa1x\x91\x90"),
    SAMPLE("array16", "\xdc\x00\x02\xc2\xc3"),
    SAMPLE("array32", "\xdd\x00\x00\x00\x01\x80"),
    SAMPLE("fixmap", "\x82\xa1" "a\x01\xa1" "b\x81\xa1" "c\x90"),
    SAMPLE("map16 with a binary key", "\xde\x00\x01\xc4\x01k\xc0"),
    SAMPLE("map32", "\xdf\x00\x00\x00\x01\xa0\xa0"),
};

typedef struct bad_sample {
    const char *what;
    const char *bytes;
    size_t length;
    size_t error_at; /* offset of the offending item in the sample */
} bad_sample;

#define BAD(what, literal, at) {what, literal, sizeof literal - 1, at}

static const bad_sample invalid[] = {
    BAD("the never-used byte", "\xc1", 0),
    BAD("0xc1 inside an array", "\x92\xc0\xc1", 2),
    BAD("fixstr past the end", "\xa5" "abc", 0),
    BAD("str8 past the end", "\xd9\x05" "abc", 0),
    BAD("str16 past the end", "\xda\x01\x00" "abc", 0),
    BAD("str32 huge", "\xdb\xff\xff\xff\xff" "abc", 0),
    BAD("bin8 past the end", "\xc4\x04" "abc", 0),
    BAD("bin32 huge", "\xc6\xff\xff\xff\xff", 0),
    BAD("ext8 past the end", "\xc7\x09\x01" "abc", 0),
    BAD("ext32 huge", "\xc9\xff\xff\xff\xff\x01", 0),
    BAD("fixext16 short", "\xd8\x01" "abc", 0),
    BAD("float64 short", "\xcb\x00\x00", 0),
    BAD("uint32 short", "\xce\x00", 0),
    BAD("array announcing more items than bytes", "\x95\xc0\xc0", 0),
    BAD("array32 huge", "\xdd\xff\xff\xff\xff\xc0", 0),
    BAD("map announcing more entries than bytes", "\x83\xa1" "a\xc0\xa1", 0),
    BAD("map32 huge", "\xdf\x7f\xff\xff\xff\xa0\xc0", 0),
    BAD("array missing an item", "\x92\xc0", 0),
    BAD("array with an item cut short", "\x92\xcd\x00", 1),
    BAD("map missing a value", "\x81\xa1" "a", 3),
    BAD("invalid UTF-8 start byte", "\xa1\xff", 0),
    BAD("overlong UTF-8", "\xa2\xc0\x80", 0),
    BAD("overlong 3-byte UTF-8", "\xa3\xe0\x80\x80", 0),
    BAD("UTF-8 surrogate", "\xa3\xed\xa0\x80", 0),
    BAD("UTF-8 past U+10FFFF", "\xa4\xf4\x90\x80\x80", 0),
    BAD("UTF-8 cut inside a character", "\xa2\xe2\x82", 0),
    BAD("UTF-8 bad continuation", "\xa2\xc3\x41", 0),
    BAD("integer map key", "\x81\x01\xc0", 1),
    BAD("nil map key", "\x81\xc0\xc0", 1),
    BAD("array map key", "\x81\x90\xc0", 1),
    BAD("nested integer map key", "\x91\x81\xa1" "a\x81\xc3\xc0", 5),
    BAD("timestamp of 2 bytes", "\xd5\xff\x00\x00", 0),
    BAD("timestamp of 16 bytes",
        "\xd8\xff\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00", 0),
    BAD("extension type -2", "\xd4\xfe\x00", 0),
    BAD("extension type -128", "\xc7\x01\x80\x00", 0),
    BAD("timestamp64 nanoseconds too big", "\xd7\xff\xee\x6b\x28\x00\x00\x00\x00\x00", 0),
    BAD("timestamp96 nanoseconds too big",
        "\xc7\x0c\xff\x3b\x9a\xca\x00\x00\x00\x00\x00\x00\x00\x00\x00", 0),
    BAD("empty input", "", 0),
};

static void test_types(void) {
    for (size_t i = 0; i < sizeof valid / sizeof valid[0]; i++) {
        const sample *s = &valid[i];
        size_t consumed = 0;
        astore_error err;
        astore_status status = skip_exact((const uint8_t *)s->bytes, s->length, &consumed, &err);
        CHECK(status == ASTORE_OK && consumed == s->length, "%s: status %s, %zu of %zu bytes: %s",
              s->what, astore_status_name(status), consumed, s->length, err.message);
        for (size_t cut = 0; cut < s->length; cut++) {
            status = skip_exact((const uint8_t *)s->bytes, cut, &consumed, &err);
            CHECK(status == ASTORE_ERR_FORMAT, "%s cut to %zu bytes: %s", s->what, cut,
                  astore_status_name(status));
        }
    }
    for (size_t i = 0; i < sizeof invalid / sizeof invalid[0]; i++) {
        const bad_sample *s = &invalid[i];
        size_t consumed = 0;
        astore_error err;
        astore_status status = skip_exact((const uint8_t *)s->bytes, s->length, &consumed, &err);
        CHECK(status == ASTORE_ERR_FORMAT && err.offset == BASE + s->error_at &&
                  strncmp(err.message, "META is not valid msgpack: ", 27) == 0,
              "%s: status %s at offset %llu (expected %zu): %s", s->what,
              astore_status_name(status), (unsigned long long)err.offset, BASE + s->error_at,
              err.message);
    }
    /* first error wins: a later failure does not overwrite the record */
    astore_error err;
    astore_error_reset(&err);
    astore_cursor cursor = astore_cursor_make((const uint8_t *)"\xc1\xc1", 2, 0);
    CHECK(astore_msgpack_skip(&cursor, 0, &err) == ASTORE_ERR_FORMAT && err.offset == 0,
          "first 0xc1");
    cursor.position = 1;
    CHECK(astore_msgpack_skip(&cursor, 0, &err) == ASTORE_ERR_FORMAT && err.offset == 0,
          "a second error replaced the first");
    astore_msgpack_item item;
    cursor = astore_cursor_make((const uint8_t *)"\x92\xa1z", 3, 0);
    CHECK(astore_msgpack_read(&cursor, &item, NULL) == ASTORE_OK &&
              item.kind == ASTORE_MSGPACK_ARRAY && item.count == 2 && cursor.position == 1,
          "read gives the array header only");
    CHECK(astore_msgpack_read(&cursor, &item, NULL) == ASTORE_OK &&
              item.kind == ASTORE_MSGPACK_STR && item.count == 1 && item.data[0] == 'z' &&
              item.offset == 1,
          "read gives a string with its data");
}

/* `depth` nested containers (each opened by `opener`), then `leaf`. */
static void test_depth_with(uint8_t opener, size_t per_level, const char *level, uint8_t leaf) {
    for (size_t depth = ASTORE_MSGPACK_MAX_DEPTH - 1; depth <= ASTORE_MSGPACK_MAX_DEPTH + 1;
         depth++) {
        size_t length = depth * per_level + 1;
        uint8_t *bytes = malloc(length);
        for (size_t d = 0; d < depth; d++) {
            bytes[d * per_level] = opener;
            memcpy(bytes + d * per_level + 1, level, per_level - 1);
        }
        bytes[length - 1] = leaf;
        size_t consumed = 0;
        astore_error err;
        astore_status status = skip_exact(bytes, length, &consumed, &err);
        size_t containers = depth + (leaf == 0x90 || leaf == 0x80);
        if (containers <= ASTORE_MSGPACK_MAX_DEPTH) {
            CHECK(status == ASTORE_OK && consumed == length, "%zu containers refused: %s",
                  containers, err.message);
        } else {
            CHECK(status == ASTORE_ERR_FORMAT && strstr(err.message, "1024 deep") != NULL,
                  "%zu containers accepted", containers);
        }
        free(bytes);
    }
}

static void test_depth(void) {
    test_depth_with(0x91, 1, "", 0xc0);      /* [[[...nil]]] */
    test_depth_with(0x91, 1, "", 0x90);      /* [[[...[]]]]: the empty array counts too */
    test_depth_with(0x81, 3, "\xa1k", 0xc0); /* {"k": {"k": ... nil}} */
    test_depth_with(0x81, 3, "\xa1k", 0x80);
    /* a million nested arrays: refused at the limit, without deep recursion */
    size_t length = 1000000;
    uint8_t *bytes = malloc(length);
    memset(bytes, 0x91, length);
    size_t consumed;
    astore_error err;
    CHECK(skip_exact(bytes, length, &consumed, &err) == ASTORE_ERR_FORMAT &&
              err.offset == BASE + ASTORE_MSGPACK_MAX_DEPTH,
          "a million nested arrays: offset %llu", (unsigned long long)err.offset);
    free(bytes);
}

/* ---- META documents -------------------------------------------------------------------- */

typedef struct writer {
    uint8_t bytes[4096];
    size_t length;
} writer;

static void put(writer *w, uint8_t byte) { w->bytes[w->length++] = byte; }

static void put_str(writer *w, const char *text) {
    size_t n = strlen(text);
    put(w, (uint8_t)(0xa0 | n)); /* the test's strings are short */
    memcpy(w->bytes + w->length, text, n);
    w->length += n;
}

typedef struct meta_options {
    const char *leave_out;       /* a top-level field not written                        */
    const char *retype;          /* a top-level field written as the integer 1           */
    const char *policy_of_b;     /* input b's policy; NULL: no `missing` key              */
    bool input_b_not_a_map;      /* inputs[1] is the string "b"                           */
    bool input_b_name_integer;   /* inputs[1].name is 5                                   */
    const char *name_of_b;       /* inputs[1].name; NULL: "b"                             */
    bool output_without_name;
    bool rules_without_task;
    bool inputs_twice_bad_first; /* an `inputs` that is not an array, then the real one */
    bool inputs_twice_bad_last;
    const char *algorithm_raw;   /* algorithm is {"x": these msgpack bytes}               */
    size_t algorithm_raw_length;
} meta_options;

static void put_inputs(writer *w, const meta_options *o) {
    put(w, 0x92);
    put(w, 0x82);
    put_str(w, "missing");
    put_str(w, "as_missing");
    put_str(w, "name");
    put_str(w, "a");
    if (o->input_b_not_a_map) {
        put_str(w, "b");
        return;
    }
    put(w, o->policy_of_b ? 0x83 : 0x82);
    put_str(w, "description");
    put_str(w, "the second input");
    if (o->policy_of_b) {
        put_str(w, "missing");
        put_str(w, o->policy_of_b);
    }
    put_str(w, "name");
    if (o->input_b_name_integer) {
        put(w, 0x05);
    } else {
        put_str(w, o->name_of_b ? o->name_of_b : "b");
    }
}

/* {algorithm: {}, created, inputs: [a, b], name, outputs: [y], score_rules: {task}} */
static void build_meta(writer *w, const meta_options *o) {
    static const char *const fields[] = {"algorithm", "created", "inputs",
                                         "name",      "outputs", "score_rules"};
    w->length = 0;
    size_t n = 6 - (o->leave_out != NULL) + o->inputs_twice_bad_first + o->inputs_twice_bad_last;
    put(w, (uint8_t)(0x80 | n));
    if (o->inputs_twice_bad_first) {
        put_str(w, "inputs");
        put(w, 0xc0);
    }
    for (size_t f = 0; f < 6; f++) {
        const char *field = fields[f];
        if (o->leave_out != NULL && strcmp(field, o->leave_out) == 0) continue;
        put_str(w, field);
        if (o->retype != NULL && strcmp(field, o->retype) == 0) {
            put(w, 0x01);
        } else if (strcmp(field, "algorithm") == 0 && o->algorithm_raw != NULL) {
            put(w, 0x81);
            put_str(w, "x");
            memcpy(w->bytes + w->length, o->algorithm_raw, o->algorithm_raw_length);
            w->length += o->algorithm_raw_length;
        } else if (strcmp(field, "algorithm") == 0) {
            put(w, 0x80);
        } else if (strcmp(field, "inputs") == 0) {
            put_inputs(w, o);
        } else if (strcmp(field, "outputs") == 0) {
            put(w, 0x91);
            put(w, 0x81);
            put_str(w, o->output_without_name ? "title" : "name");
            put_str(w, "y");
        } else if (strcmp(field, "score_rules") == 0) {
            put(w, o->rules_without_task ? 0x80 : 0x81);
            if (!o->rules_without_task) {
                put_str(w, "task");
                put_str(w, "binary");
            }
        } else {
            put_str(w, "text");
        }
    }
    if (o->inputs_twice_bad_last) {
        put_str(w, "inputs");
        put(w, 0x90 | 1);
        put(w, 0xc0);
    }
}

static astore_status parse_exact(const uint8_t *bytes, size_t length, astore_meta *meta,
                                 astore_error *err) {
    uint8_t *copy = malloc(length ? length : 1);
    memcpy(copy, bytes, length);
    astore_error_reset(err);
    astore_status status = astore_meta_parse(copy, length, BASE, meta, err);
    if (status == ASTORE_OK) {
        /* names point into the parsed bytes: check them before the copy goes */
        for (size_t i = 0; i < meta->n_inputs; i++) {
            CHECK(meta->inputs[i].name >= (const char *)copy &&
                      meta->inputs[i].name + meta->inputs[i].name_length <=
                          (const char *)copy + length,
                  "input %zu's name is not inside the META bytes", i);
        }
    }
    free(copy);
    return status;
}

static void expect_refused(const meta_options *o, const char *what, const char *message_part) {
    writer w;
    build_meta(&w, o);
    astore_meta meta;
    astore_error err;
    astore_status status = parse_exact(w.bytes, w.length, &meta, &err);
    CHECK(status == ASTORE_ERR_FORMAT && strstr(err.message, message_part) != NULL &&
              err.offset >= BASE && err.offset < BASE + w.length,
          "%s: status %s, message '%s', offset %llu", what, astore_status_name(status),
          err.message, (unsigned long long)err.offset);
    CHECK(meta.inputs == NULL && meta.n_inputs == 0, "%s: a refused META left inputs", what);
    astore_meta_release(&meta);
}

static void test_meta_fields(void) {
    writer w;
    meta_options o = {0};
    o.policy_of_b = "error";
    build_meta(&w, &o);
    astore_meta meta;
    astore_error err;
    CHECK(parse_exact(w.bytes, w.length, &meta, &err) == ASTORE_OK, "valid META: %s",
          err.message);
    CHECK(meta.n_inputs == 2 && meta.n_outputs == 1 && meta.n_refused == 1 &&
              meta.refused[0] == 1,
          "inputs %zu, outputs %zu, refused %zu", meta.n_inputs, meta.n_outputs,
          meta.n_refused);
    CHECK(meta.inputs[0].name_length == 1 && meta.inputs[0].accepts_missing &&
              meta.inputs[0].missing_policy == ASTORE_MISSING_AS_MISSING &&
              !meta.inputs[1].accepts_missing &&
              meta.inputs[1].missing_policy == ASTORE_MISSING_ERROR,
          "policies");
    astore_meta_release(&meta);
    o.policy_of_b = "impute";
    build_meta(&w, &o);
    CHECK(parse_exact(w.bytes, w.length, &meta, &err) == ASTORE_OK &&
              meta.inputs[1].missing_policy == ASTORE_MISSING_IMPUTE &&
              meta.inputs[1].accepts_missing && meta.n_refused == 0,
          "impute");
    astore_meta_release(&meta);

    /* every truncation fails; every byte mutation parses or fails, in bounds */
    o.policy_of_b = "error";
    build_meta(&w, &o);
    for (size_t cut = 0; cut < w.length; cut++) {
        CHECK(parse_exact(w.bytes, cut, &meta, &err) == ASTORE_ERR_FORMAT,
              "META cut to %zu bytes was accepted", cut);
    }
    int accepted = 0, refused = 0;
    for (size_t i = 0; i < w.length; i++) {
        for (unsigned value = 0; value < 256; value++) {
            writer mutated = w;
            mutated.bytes[i] = (uint8_t)value;
            astore_status status = parse_exact(mutated.bytes, mutated.length, &meta, &err);
            CHECK(status == ASTORE_OK || status == ASTORE_ERR_FORMAT, "byte %zu = %u: %s", i,
                  value, astore_status_name(status));
            if (status == ASTORE_OK) accepted++;
            else refused++;
            astore_meta_release(&meta);
        }
    }
    CHECK(accepted > 0 && refused > 0, "mutations: %d accepted, %d refused", accepted, refused);

    static const char *const required[] = {"name", "created", "algorithm", "inputs",
                                           "outputs", "score_rules"};
    for (size_t f = 0; f < 6; f++) {
        meta_options left_out = o;
        left_out.leave_out = required[f];
        expect_refused(&left_out, required[f], "is missing or not");
        meta_options retyped = o;
        retyped.retype = required[f];
        expect_refused(&retyped, required[f], required[f]);
    }
    static const struct {
        meta_options options;
        const char *what, *message;
    } refusals[] = {
        {{.policy_of_b = NULL}, "no policy", "inputs[1] ('b') has no missing-value policy"},
        {{.policy_of_b = "never"}, "unknown policy", "inputs[1] ('b') has no missing-value"},
        {{.policy_of_b = "Error"}, "policy in another case", "missing-value policy"},
        {{.policy_of_b = "error", .input_b_not_a_map = true}, "input not a map",
         "META inputs[1] has no name"},
        {{.policy_of_b = "error", .input_b_name_integer = true}, "integer name",
         "META inputs[1] has no name"},
        {{.policy_of_b = "error", .name_of_b = "a"}, "two inputs of one name",
         "META inputs[0] and inputs[1] are both named 'a': input names must be unique"},
        {{.policy_of_b = "error", .output_without_name = true}, "output without name",
         "META outputs[0] has no name"},
        {{.policy_of_b = "error", .rules_without_task = true}, "rules without task",
         "score_rules has no task"},
        {{.policy_of_b = "error", .inputs_twice_bad_last = true},
         "a key given twice", "a key given twice"},
        {{.policy_of_b = "error", .inputs_twice_bad_first = true},
         "a key given twice, the valid one last", "a key given twice"},
    };
    for (size_t i = 0; i < sizeof refusals / sizeof refusals[0]; i++) {
        expect_refused(&refusals[i].options, refusals[i].what, refusals[i].message);
    }
    /* one value fills the section: a trailing byte is refused at its offset */
    build_meta(&w, &o);
    put(&w, 0xc0);
    CHECK(parse_exact(w.bytes, w.length, &meta, &err) == ASTORE_ERR_FORMAT &&
              err.offset == BASE + w.length - 1,
          "trailing byte: %s", err.message);
    CHECK(parse_exact((const uint8_t *)"\x91\x80", 2, &meta, &err) == ASTORE_ERR_FORMAT &&
              strcmp(err.message, "META is not a map") == 0,
          "an array is not a map: %s", err.message);
}

/* A META whose `inputs` are named names[0..n-1] (each as_missing); the others as build_meta.
 * *element_offsets gets the offset of each input's map, relative to the document. */
static void build_named_inputs(writer *w, const char *const *names, size_t n,
                               size_t *element_offsets) {
    w->length = 0;
    put(w, 0x86);
    put_str(w, "algorithm");
    put(w, 0x80);
    put_str(w, "created");
    put_str(w, "text");
    put_str(w, "inputs");
    if (n < 16) {
        put(w, (uint8_t)(0x90 | n));
    } else {
        put(w, 0xdc);
        put(w, (uint8_t)(n >> 8));
        put(w, (uint8_t)n);
    }
    for (size_t i = 0; i < n; i++) {
        element_offsets[i] = w->length;
        put(w, 0x82);
        put_str(w, "missing");
        put_str(w, "as_missing");
        put_str(w, "name");
        put_str(w, names[i]);
    }
    put_str(w, "name");
    put_str(w, "text");
    put_str(w, "outputs");
    put(w, 0x91);
    put(w, 0x81);
    put_str(w, "name");
    put_str(w, "y");
    put_str(w, "score_rules");
    put(w, 0x81);
    put_str(w, "task");
    put_str(w, "binary");
}

/* Input names are unique, byte for byte; the first repeat in input order is reported, at
 * the offset of the repeating input, with both positions. */
static void test_unique_names(void) {
    enum { N = 100 };
    static char storage[N][8];
    const char *names[N];
    size_t offsets[N];
    for (size_t i = 0; i < N; i++) {
        snprintf(storage[i], sizeof storage[i], "x%zu", i); /* x1 and x10: prefixes differ */
        names[i] = storage[i];
    }
    writer w;
    astore_meta meta;
    astore_error err;
    build_named_inputs(&w, names, N, offsets);
    CHECK(parse_exact(w.bytes, w.length, &meta, &err) == ASTORE_OK && meta.n_inputs == N,
          "%d distinct names: %s", N, err.message);
    astore_meta_release(&meta);

    static const struct {
        size_t set[4][2]; /* inputs[set[k][0]] takes the name of inputs[set[k][1]] */
        size_t n_set;
        size_t earlier, later;
    } cases[] = {
        {{{1, 0}}, 1, 0, 1},                       /* neighbours                   */
        {{{99, 98}}, 1, 98, 99},                   /* the last two                 */
        {{{80, 17}, {90, 3}}, 2, 17, 80},          /* two repeats: the first one   */
        {{{90, 3}, {80, 17}}, 2, 17, 80},          /* whatever the order set       */
        {{{50, 5}, {70, 5}}, 2, 5, 50},            /* three of one name            */
        {{{60, 40}, {40, 20}}, 2, 20, 40},         /* a chain: 20, 40 and then 60  */
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        const char *renamed[N];
        memcpy(renamed, names, sizeof names);
        for (size_t k = 0; k < cases[c].n_set; k++) {
            renamed[cases[c].set[k][0]] = renamed[cases[c].set[k][1]];
        }
        build_named_inputs(&w, renamed, N, offsets);
        char expected[128];
        snprintf(expected, sizeof expected,
                 "META inputs[%zu] and inputs[%zu] are both named '%s': input names must be "
                 "unique",
                 cases[c].earlier, cases[c].later, renamed[cases[c].later]);
        astore_status status = parse_exact(w.bytes, w.length, &meta, &err);
        CHECK(status == ASTORE_ERR_FORMAT && strcmp(err.message, expected) == 0 &&
                  err.offset == BASE + offsets[cases[c].later],
              "case %zu: %s '%s' at %llu", c, astore_status_name(status), err.message,
              (unsigned long long)err.offset);
        CHECK(meta.inputs == NULL && meta.n_inputs == 0, "case %zu left inputs", c);
        astore_meta_release(&meta);
    }
    /* names are bytes: the empty name twice is a repeat, "x1" and "x1 " are not */
    const char *const empty[] = {"", "a", ""};
    build_named_inputs(&w, empty, 3, offsets);
    CHECK(parse_exact(w.bytes, w.length, &meta, &err) == ASTORE_ERR_FORMAT &&
              strstr(err.message, "inputs[0] and inputs[2] are both named ''") != NULL,
          "empty names: %s", err.message);
    astore_meta_release(&meta);
    const char *const spaced[] = {"x1", "x1 ", " x1", "X1"};
    build_named_inputs(&w, spaced, 4, offsets);
    CHECK(parse_exact(w.bytes, w.length, &meta, &err) == ASTORE_OK && meta.n_inputs == 4,
          "names that differ in a byte: %s", err.message);
    astore_meta_release(&meta);
}

/* algorithm = {"x": value}: each value in its canonical form is accepted, each other
 * encoding of a value is refused at the value's offset. */
static void test_canonical(void) {
    static const sample canonical[] = {
        SAMPLE("fixint 127", "\x7f"), SAMPLE("uint8 128", "\xcc\x80"),
        SAMPLE("uint16 256", "\xcd\x01\x00"), SAMPLE("uint32 65536", "\xce\x00\x01\x00\x00"),
        SAMPLE("uint64 2^32", "\xcf\x00\x00\x00\x01\x00\x00\x00\x00"),
        SAMPLE("negative fixint -32", "\xe0"), SAMPLE("int8 -33", "\xd0\xdf"),
        SAMPLE("int16 -129", "\xd1\xff\x7f"), SAMPLE("int32 -32769", "\xd2\xff\xff\x7f\xff"),
        SAMPLE("int64 -2^31-1", "\xd3\xff\xff\xff\xff\x7f\xff\xff\xff"),
        SAMPLE("float64", "\xcb\x3f\xf0\x00\x00\x00\x00\x00\x00"),
        SAMPLE("bin8", "\xc4\x01\x00"), SAMPLE("fixext 1", "\xd4\x07\x00"),
        SAMPLE("ext8 of 3 bytes", "\xc7\x03\x07\x00\x00\x00"),
        SAMPLE("timestamp 32", "\xd6\xff\x00\x00\x00\x01"),
        SAMPLE("timestamp 64 with nanoseconds", "\xd7\xff\x00\x00\x00\x04\x00\x00\x00\x00"),
        SAMPLE("timestamp 64 past 2^32 s", "\xd7\xff\x00\x00\x00\x01\x00\x00\x00\x00"),
        SAMPLE("timestamp 96 before 1970", "\xc7\x0c\xff\x00\x00\x00\x00\xff\xff\xff\xff\xff\xff\xff\xff"),
        SAMPLE("map with sorted keys", "\x82\xa1\x61\xc0\xa2\x61\x61\xc0"),
        SAMPLE("map keys by code point", "\x82\xa1\x5a\xc0\xa2\xc3\xa9\xc0"),
    };
    static const sample refused[] = {
        SAMPLE("uint8 127", "\xcc\x7f"), SAMPLE("uint16 255", "\xcd\x00\xff"),
        SAMPLE("uint32 65535", "\xce\x00\x00\xff\xff"),
        SAMPLE("uint64 2^32-1", "\xcf\x00\x00\x00\x00\xff\xff\xff\xff"),
        SAMPLE("int8 -32", "\xd0\xe0"), SAMPLE("int8 5", "\xd0\x05"),
        SAMPLE("int16 -128", "\xd1\xff\x80"), SAMPLE("int32 -32768", "\xd2\xff\xff\x80\x00"),
        SAMPLE("int64 -2^31", "\xd3\xff\xff\xff\xff\x80\x00\x00\x00"),
        SAMPLE("int64 0", "\xd3\x00\x00\x00\x00\x00\x00\x00\x00"),
        SAMPLE("float32", "\xca\x3f\x80\x00\x00"),
        SAMPLE("str8 of 1 byte", "\xd9\x01\x61"), SAMPLE("str16 of 1 byte", "\xda\x00\x01\x61"),
        SAMPLE("str32 of 1 byte", "\xdb\x00\x00\x00\x01\x61"),
        SAMPLE("bin16 of 1 byte", "\xc5\x00\x01\x00"),
        SAMPLE("bin32 of 1 byte", "\xc6\x00\x00\x00\x01\x00"),
        SAMPLE("array16 of 1", "\xdc\x00\x01\xc0"), SAMPLE("array32 of 1", "\xdd\x00\x00\x00\x01\xc0"),
        SAMPLE("map16 of 0", "\xde\x00\x00"), SAMPLE("map32 of 0", "\xdf\x00\x00\x00\x00"),
        SAMPLE("ext8 of 1 byte", "\xc7\x01\x07\x00"),
        SAMPLE("ext16 of 3 bytes", "\xc8\x00\x03\x07\x00\x00\x00"),
        SAMPLE("timestamp 64 that fits 32", "\xd7\xff\x00\x00\x00\x00\x00\x00\x00\x01"),
        SAMPLE("timestamp 96 that fits 64", "\xc7\x0c\xff\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01"),
        SAMPLE("unsorted keys", "\x82\xa2\x61\x61\xc0\xa1\x61\xc0"),
        SAMPLE("a key twice", "\x82\xa1\x61\xc0\xa1\x61\xc0"),
        SAMPLE("a binary key", "\x81\xc4\x01\x61\xc0"),
        SAMPLE("a nested non-canonical value", "\x91\x91\xcc\x01"),
    };
    writer w;
    astore_meta meta;
    astore_error err;
    for (size_t i = 0; i < sizeof canonical / sizeof canonical[0]; i++) {
        meta_options o = {.policy_of_b = "error", .algorithm_raw = canonical[i].bytes,
                          .algorithm_raw_length = canonical[i].length};
        build_meta(&w, &o);
        CHECK(parse_exact(w.bytes, w.length, &meta, &err) == ASTORE_OK, "%s refused: %s",
              canonical[i].what, err.message);
        astore_meta_release(&meta);
    }
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        meta_options o = {.policy_of_b = "error", .algorithm_raw = refused[i].bytes,
                          .algorithm_raw_length = refused[i].length};
        build_meta(&w, &o);
        const uint64_t value_offset = BASE + 1 + 10 + 1 + 2; /* {"algorithm": {"x": value */
        astore_status status = parse_exact(w.bytes, w.length, &meta, &err);
        CHECK(status == ASTORE_ERR_FORMAT && strstr(err.message, "not canonical") != NULL &&
                  err.offset >= value_offset && err.offset < value_offset + refused[i].length,
              "%s: %s '%s' at %llu", refused[i].what, astore_status_name(status), err.message,
              (unsigned long long)err.offset);
        astore_meta_release(&meta);
    }
}

static void test_quote_name(void) {
    char quoted[ASTORE_QUOTED_NAME_SIZE];
    astore_quote_name("age", 3, quoted);
    CHECK(strcmp(quoted, "age") == 0, "short name: %s", quoted);
    char name[100];
    for (size_t i = 0; i + 1 < sizeof name; i += 2) memcpy(name + i, "\xc3\xa9", 2); /* é */
    astore_quote_name(name, 98, quoted);
    size_t kept = strlen(quoted) - 3;
    CHECK(kept == ASTORE_QUOTED_NAME_SIZE - 4 && kept % 2 == 0 &&
              strcmp(quoted + kept, "...") == 0,
          "long name cut at %zu bytes", kept);
    astore_quote_name(name + 1, 97, quoted); /* starts mid-character: cut stays on a boundary */
    kept = strlen(quoted) - 3;
    CHECK(((unsigned char)quoted[kept - 1] == 0xc3) == false, "cut inside a character");
}

int main(void) {
    test_types();
    test_depth();
    test_meta_fields();
    test_canonical();
    test_unique_names();
    test_quote_name();
    printf("%d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
