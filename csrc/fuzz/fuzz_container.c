/*
 * fuzz_container.c -- libFuzzer target: the input is a whole file, opened as a container
 * as it is (integrity check included); every section of an open container is then read
 * through the public API, and the signed message is built.
 */
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t length);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t length) {
    astore_container *container = NULL;
    astore_error err;
    astore_status status = astore_container_open(data, length, &container, &err);
    if (status != ASTORE_OK) {
        fuzz_check_error(status, &err);
        return 0;
    }
    size_t count = astore_container_section_count(container);
    FUZZ_REQUIRE(count >= 2 && count <= 256, "%zu sections", count);
    for (size_t i = 0; i < count; i++) {
        astore_section_info info;
        status = astore_container_section(container, i, &info, &err);
        FUZZ_REQUIRE(status == ASTORE_OK, "section %zu of %zu not readable", i, count);
        FUZZ_REQUIRE(info.offset <= length && info.length <= length - info.offset,
                     "section %zu [%llu, +%llu) outside the %zu-byte file", i,
                     (unsigned long long)info.offset, (unsigned long long)info.length, length);
        volatile uint8_t sum = 0;
        for (uint64_t k = 0; k < info.length; k++) sum ^= info.data[k];
        (void)sum;
        astore_section_info found;
        status = astore_container_find(container, info.type, &found, &err);
        FUZZ_REQUIRE(status == ASTORE_OK && found.offset == info.offset,
                     "section %s not found by its type", info.type);
    }
    uint8_t message[256];
    size_t message_length = astore_container_signed_message(container, message, sizeof message);
    FUZZ_REQUIRE(message_length > 0 && message_length < sizeof message, "signed message of %zu",
                 message_length);
    astore_container_close(container);
    return 0;
}
