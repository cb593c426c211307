/*
 * sha256.h -- SHA-256 (FIPS 180-4), internal to libastore. Streaming interface; the
 * context holds no pointers, so it can live on the stack.
 */
#ifndef ASTORE_SHA256_H
#define ASTORE_SHA256_H

#include <stddef.h>
#include <stdint.h>

typedef struct astore_sha256 {
    uint32_t state[8];
    uint64_t total_bytes;
    uint8_t block[64];
    size_t block_used;
} astore_sha256_ctx;

void astore_sha256_init(astore_sha256_ctx *ctx);
void astore_sha256_update(astore_sha256_ctx *ctx, const uint8_t *data, size_t length);
void astore_sha256_final(astore_sha256_ctx *ctx, uint8_t digest[32]);
void astore_sha256(const uint8_t *data, size_t length, uint8_t digest[32]);

#endif /* ASTORE_SHA256_H */
