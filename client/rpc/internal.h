/* Shared between the rpc layers; not for users of rpc.h. */
#ifndef NC_RPC_INTERNAL_H
#define NC_RPC_INTERNAL_H

#include <stdint.h>

#include "client/rpc/rpc.h"

void rpc_enc_bytes(struct rpc_enc *e, const void *p, size_t n);

static inline void rpc_put16(uint8_t *p, uint16_t v)
{
    p[0] = v >> 8;
    p[1] = v;
}
static inline void rpc_put32(uint8_t *p, uint32_t v)
{
    p[0] = v >> 24;
    p[1] = v >> 16;
    p[2] = v >> 8;
    p[3] = v;
}
static inline void rpc_put64(uint8_t *p, uint64_t v)
{
    rpc_put32(p, v >> 32);
    rpc_put32(p + 4, (uint32_t)v);
}
static inline uint16_t rpc_get16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}
static inline uint32_t rpc_get32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
           p[3];
}
static inline uint64_t rpc_get64(const uint8_t *p)
{
    return (uint64_t)rpc_get32(p) << 32 | rpc_get32(p + 4);
}

#endif
