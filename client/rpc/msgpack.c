/* msgpack as Nomad 1.6.5's MsgpackHandle (go-msgpack 1.1.5) writes it,
 * and a bounded zero-copy reader for what servers send. Our own rather
 * than msgpack-c: msgpack-c 4.0 can write old-spec raw (msgpack_pack_v4raw)
 * but its unpacker copies into a zone with a fixed stack and no size
 * limits we control; a pull reader lets struct decoders ignore unknown
 * keys and read nil as zero with no tree in between. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "client/rpc/internal.h"

/* Go's time.Time MarshalBinary counts seconds from 0001-01-01 UTC. */
#define GO_UNIX_TO_INTERNAL 62135596800LL

void rpc_enc_init(struct rpc_enc *e)
{
    memset(e, 0, sizeof(*e));
}

void rpc_enc_free(struct rpc_enc *e)
{
    free(e->buf);
    memset(e, 0, sizeof(*e));
}

int rpc_enc_finish(const struct rpc_enc *e)
{
    return e->err;
}

void rpc_enc_bytes(struct rpc_enc *e, const void *p, size_t n)
{
    if (e->err || n == 0)
        return;
    if (n > SIZE_MAX / 2 - e->len) {
        e->err = -ENOMEM;
        return;
    }
    if (e->len + n > e->cap) {
        size_t cap = e->cap ? e->cap : 256;
        while (cap < e->len + n)
            cap *= 2;
        uint8_t *b = realloc(e->buf, cap);
        if (!b) {
            e->err = -ENOMEM;
            return;
        }
        e->buf = b;
        e->cap = cap;
    }
    memcpy(e->buf + e->len, p, n);
    e->len += n;
}

static void put1(struct rpc_enc *e, uint8_t b)
{
    rpc_enc_bytes(e, &b, 1);
}

static void put_tag16(struct rpc_enc *e, uint8_t tag, uint16_t v)
{
    uint8_t b[3] = {tag};
    rpc_put16(b + 1, v);
    rpc_enc_bytes(e, b, 3);
}

static void put_tag32(struct rpc_enc *e, uint8_t tag, uint32_t v)
{
    uint8_t b[5] = {tag};
    rpc_put32(b + 1, v);
    rpc_enc_bytes(e, b, 5);
}

static void put_tag64(struct rpc_enc *e, uint8_t tag, uint64_t v)
{
    uint8_t b[9] = {tag};
    rpc_put64(b + 1, v);
    rpc_enc_bytes(e, b, 9);
}

void rpc_enc_nil(struct rpc_enc *e)
{
    put1(e, 0xc0);
}
void rpc_enc_bool(struct rpc_enc *e, int b)
{
    put1(e, b ? 0xc3 : 0xc2);
}

void rpc_enc_int(struct rpc_enc *e, int64_t v)
{
    if (v > INT8_MAX) {
        if (v <= INT16_MAX)
            put_tag16(e, 0xd1, (uint16_t)v);
        else if (v <= INT32_MAX)
            put_tag32(e, 0xd2, (uint32_t)v);
        else
            put_tag64(e, 0xd3, (uint64_t)v);
    } else if (v >= -32) {
        put1(e, (uint8_t)v);
    } else if (v >= INT8_MIN) {
        uint8_t b[2] = {0xd0, (uint8_t)v};
        rpc_enc_bytes(e, b, 2);
    } else if (v >= INT16_MIN) {
        put_tag16(e, 0xd1, (uint16_t)v);
    } else if (v >= INT32_MIN) {
        put_tag32(e, 0xd2, (uint32_t)v);
    } else {
        put_tag64(e, 0xd3, (uint64_t)v);
    }
}

void rpc_enc_uint(struct rpc_enc *e, uint64_t v)
{
    if (v <= INT8_MAX) {
        put1(e, (uint8_t)v);
    } else if (v <= UINT8_MAX) {
        uint8_t b[2] = {0xcc, (uint8_t)v};
        rpc_enc_bytes(e, b, 2);
    } else if (v <= UINT16_MAX) {
        put_tag16(e, 0xcd, (uint16_t)v);
    } else if (v <= UINT32_MAX) {
        put_tag32(e, 0xce, (uint32_t)v);
    } else {
        put_tag64(e, 0xcf, v);
    }
}

void rpc_enc_float64(struct rpc_enc *e, double v)
{
    uint64_t u;
    memcpy(&u, &v, 8);
    put_tag64(e, 0xcb, u);
}

void rpc_enc_float32(struct rpc_enc *e, float v)
{
    uint32_t u;
    memcpy(&u, &v, 4);
    put_tag32(e, 0xca, u);
}

void rpc_enc_raw(struct rpc_enc *e, const void *p, size_t n)
{
    if (n > UINT32_MAX) {
        if (!e->err)
            e->err = -EMSGSIZE;
        return;
    }
    if (n < 32)
        put1(e, 0xa0 | (uint8_t)n);
    else if (n <= UINT16_MAX)
        put_tag16(e, 0xda, (uint16_t)n);
    else
        put_tag32(e, 0xdb, (uint32_t)n);
    rpc_enc_bytes(e, p, n);
}

void rpc_enc_str(struct rpc_enc *e, const char *s)
{
    rpc_enc_raw(e, s ? s : "", s ? strlen(s) : 0);
}

void rpc_enc_map(struct rpc_enc *e, uint32_t n)
{
    if (n < 16)
        put1(e, 0x80 | (uint8_t)n);
    else if (n <= UINT16_MAX)
        put_tag16(e, 0xde, (uint16_t)n);
    else
        put_tag32(e, 0xdf, n);
}

void rpc_enc_array(struct rpc_enc *e, uint32_t n)
{
    if (n < 16)
        put1(e, 0x90 | (uint8_t)n);
    else if (n <= UINT16_MAX)
        put_tag16(e, 0xdc, (uint16_t)n);
    else
        put_tag32(e, 0xdd, n);
}

void rpc_enc_time(struct rpc_enc *e, int64_t unix_sec, int32_t nsec,
                  int16_t offset_min)
{
    uint8_t b[15];
    b[0] = 1; /* timeBinaryVersion */
    rpc_put64(b + 1, (uint64_t)(unix_sec + GO_UNIX_TO_INTERNAL));
    rpc_put32(b + 9, (uint32_t)nsec);
    rpc_put16(b + 13, (uint16_t)offset_min);
    rpc_enc_raw(e, b, sizeof(b));
}

void rpc_enc_time_zero(struct rpc_enc *e)
{
    rpc_enc_time(e, -GO_UNIX_TO_INTERNAL, 0, -1);
}

/* ---- decoding */

void rpc_dec_init(struct rpc_dec *d, const void *buf, size_t len)
{
    d->p = buf;
    d->end = d->p + len;
}

static int need(const struct rpc_dec *d, size_t n)
{
    return (size_t)(d->end - d->p) >= n ? 0 : -ENODATA;
}

/* A payload of n bytes after an h-byte head. */
static int take_payload(struct rpc_dec *d, struct rpc_val *v, size_t h,
                        uint64_t n)
{
    if (n > (size_t)(d->end - d->p) - h)
        return -ENODATA;
    v->p = d->p + h;
    v->len = (size_t)n;
    d->p += h + n;
    return 0;
}

static int take_count(struct rpc_dec *d, struct rpc_val *v, enum rpc_type t,
                      size_t h, uint32_t n)
{
    if (n > RPC_MAX_ITEMS)
        return -EBADMSG;
    /* every item takes at least one byte: a count the input cannot
     * hold is left to -ENODATA by the reads that follow, but a count
     * beyond the limit is refused here. */
    v->type = t;
    v->v.n = n;
    d->p += h;
    return 0;
}

int rpc_dec_next(struct rpc_dec *d, struct rpc_val *v)
{
    int r;
    memset(v, 0, sizeof(*v));
    if ((r = need(d, 1)) < 0)
        return r;
    const uint8_t *p = d->p;
    uint8_t b = p[0];
    if (b <= 0x7f || b >= 0xe0) {
        if (b <= 0x7f) {
            v->type = RPC_UINT;
            v->v.u = b;
        } else {
            v->type = RPC_INT;
            v->v.i = (int8_t)b;
        }
        d->p++;
        return 0;
    }
    if (b >= 0x80 && b <= 0x8f)
        return take_count(d, v, RPC_MAP, 1, b & 0x0f);
    if (b >= 0x90 && b <= 0x9f)
        return take_count(d, v, RPC_ARRAY, 1, b & 0x0f);
    if (b >= 0xa0 && b <= 0xbf) {
        v->type = RPC_RAW;
        return take_payload(d, v, 1, b & 0x1f);
    }
    static const uint8_t head_len[32] = {
        /* c0 */ 1, 0, 1, 1, 2, 3, 5, 3,  4,  6, 5, 9, 2, 3, 5, 9,
        /* d0 */ 2, 3, 5, 9, 3, 4, 6, 10, 18, 2, 3, 5, 3, 5, 3, 5,
    };
    /* fixext sizes include type + data; ext8/16/32 the type byte */
    size_t h = head_len[b - 0xc0];
    if (h == 0)
        return -EBADMSG; /* 0xc1 is never used */
    if ((r = need(d, b >= 0xd4 && b <= 0xd8 ? 2 : h)) < 0)
        return r;
    switch (b) {
    case 0xc0:
        v->type = RPC_NIL;
        break;
    case 0xc2:
    case 0xc3:
        v->type = RPC_BOOL;
        v->v.b = b == 0xc3;
        break;
    case 0xc4:
        v->type = RPC_RAW;
        return take_payload(d, v, 2, p[1]);
    case 0xc5:
        v->type = RPC_RAW;
        return take_payload(d, v, 3, rpc_get16(p + 1));
    case 0xc6:
        v->type = RPC_RAW;
        return take_payload(d, v, 5, rpc_get32(p + 1));
    case 0xc7:
        v->type = RPC_EXT;
        v->ext_type = (int8_t)p[2];
        return take_payload(d, v, 3, p[1]);
    case 0xc8:
        v->type = RPC_EXT;
        v->ext_type = (int8_t)p[3];
        return take_payload(d, v, 4, rpc_get16(p + 1));
    case 0xc9:
        v->type = RPC_EXT;
        v->ext_type = (int8_t)p[5];
        return take_payload(d, v, 6, rpc_get32(p + 1));
    case 0xca: {
        uint32_t u = rpc_get32(p + 1);
        float f;
        memcpy(&f, &u, 4);
        v->type = RPC_FLOAT;
        v->v.f = f;
        break;
    }
    case 0xcb: {
        uint64_t u = rpc_get64(p + 1);
        memcpy(&v->v.f, &u, 8);
        v->type = RPC_FLOAT;
        break;
    }
    case 0xcc:
        v->type = RPC_UINT;
        v->v.u = p[1];
        break;
    case 0xcd:
        v->type = RPC_UINT;
        v->v.u = rpc_get16(p + 1);
        break;
    case 0xce:
        v->type = RPC_UINT;
        v->v.u = rpc_get32(p + 1);
        break;
    case 0xcf:
        v->type = RPC_UINT;
        v->v.u = rpc_get64(p + 1);
        break;
    case 0xd0:
        v->type = RPC_INT;
        v->v.i = (int8_t)p[1];
        break;
    case 0xd1:
        v->type = RPC_INT;
        v->v.i = (int16_t)rpc_get16(p + 1);
        break;
    case 0xd2:
        v->type = RPC_INT;
        v->v.i = (int32_t)rpc_get32(p + 1);
        break;
    case 0xd3:
        v->type = RPC_INT;
        v->v.i = (int64_t)rpc_get64(p + 1);
        break;
    case 0xd4:
    case 0xd5:
    case 0xd6:
    case 0xd7:
    case 0xd8:
        v->type = RPC_EXT;
        v->ext_type = (int8_t)p[1];
        return take_payload(d, v, 2, (size_t)1 << (b - 0xd4));
    case 0xd9:
        v->type = RPC_RAW;
        return take_payload(d, v, 2, p[1]);
    case 0xda:
        v->type = RPC_RAW;
        return take_payload(d, v, 3, rpc_get16(p + 1));
    case 0xdb:
        v->type = RPC_RAW;
        return take_payload(d, v, 5, rpc_get32(p + 1));
    case 0xdc:
        return take_count(d, v, RPC_ARRAY, 3, rpc_get16(p + 1));
    case 0xdd:
        return take_count(d, v, RPC_ARRAY, 5, rpc_get32(p + 1));
    case 0xde:
        return take_count(d, v, RPC_MAP, 3, rpc_get16(p + 1));
    case 0xdf:
        return take_count(d, v, RPC_MAP, 5, rpc_get32(p + 1));
    default:
        return -EBADMSG;
    }
    d->p += h;
    return 0;
}

int rpc_dec_skip(struct rpc_dec *d)
{
    /* Iterative: pending[i] = items still to skip at depth i. */
    uint64_t pending[RPC_MAX_DEPTH];
    int depth = 0;
    pending[0] = 1;
    while (depth >= 0) {
        if (pending[depth] == 0) {
            depth--;
            continue;
        }
        pending[depth]--;
        struct rpc_val v;
        int r = rpc_dec_next(d, &v);
        if (r < 0)
            return r;
        if ((v.type == RPC_MAP || v.type == RPC_ARRAY) && v.v.n > 0) {
            if (depth + 1 >= RPC_MAX_DEPTH)
                return -E2BIG;
            pending[++depth] = v.type == RPC_MAP ? 2ull * v.v.n : v.v.n;
        }
    }
    return 0;
}

int rpc_dec_int(struct rpc_dec *d, int64_t *out)
{
    struct rpc_val v;
    int r = rpc_dec_next(d, &v);
    if (r < 0)
        return r;
    switch (v.type) {
    case RPC_NIL:
        *out = 0;
        return 0;
    case RPC_INT:
        *out = v.v.i;
        return 0;
    case RPC_UINT:
        if (v.v.u > INT64_MAX)
            return -ERANGE;
        *out = (int64_t)v.v.u;
        return 0;
    default:
        return -EPROTO;
    }
}

int rpc_dec_uint(struct rpc_dec *d, uint64_t *out)
{
    struct rpc_val v;
    int r = rpc_dec_next(d, &v);
    if (r < 0)
        return r;
    switch (v.type) {
    case RPC_NIL:
        *out = 0;
        return 0;
    case RPC_UINT:
        *out = v.v.u;
        return 0;
    case RPC_INT:
        if (v.v.i < 0)
            return -ERANGE;
        *out = (uint64_t)v.v.i;
        return 0;
    default:
        return -EPROTO;
    }
}

int rpc_dec_bool(struct rpc_dec *d, int *out)
{
    struct rpc_val v;
    int r = rpc_dec_next(d, &v);
    if (r < 0)
        return r;
    if (v.type == RPC_NIL)
        *out = 0;
    else if (v.type == RPC_BOOL)
        *out = v.v.b;
    else
        return -EPROTO;
    return 0;
}

int rpc_dec_float(struct rpc_dec *d, double *out)
{
    struct rpc_val v;
    int r = rpc_dec_next(d, &v);
    if (r < 0)
        return r;
    switch (v.type) {
    case RPC_NIL:
        *out = 0;
        return 0;
    case RPC_FLOAT:
        *out = v.v.f;
        return 0;
    case RPC_INT:
        *out = (double)v.v.i;
        return 0;
    case RPC_UINT:
        *out = (double)v.v.u;
        return 0;
    default:
        return -EPROTO;
    }
}

int rpc_dec_raw(struct rpc_dec *d, const uint8_t **p, size_t *len)
{
    struct rpc_val v;
    int r = rpc_dec_next(d, &v);
    if (r < 0)
        return r;
    if (v.type == RPC_NIL) {
        *p = NULL;
        *len = 0;
        return 0;
    }
    if (v.type != RPC_RAW)
        return -EPROTO;
    *p = v.p;
    *len = v.len;
    return 0;
}

int rpc_dec_strdup(struct rpc_dec *d, char **out)
{
    const uint8_t *p;
    size_t n;
    int r = rpc_dec_raw(d, &p, &n);
    if (r < 0)
        return r;
    if (n && memchr(p, 0, n))
        return -EBADMSG;
    char *s = malloc(n + 1);
    if (!s)
        return -ENOMEM;
    if (n)
        memcpy(s, p, n);
    s[n] = 0;
    *out = s;
    return 0;
}

static int dec_container(struct rpc_dec *d, enum rpc_type t, uint32_t *n)
{
    struct rpc_val v;
    int r = rpc_dec_next(d, &v);
    if (r < 0)
        return r;
    if (v.type == RPC_NIL) {
        *n = 0;
        return 0;
    }
    if (v.type != t)
        return -EPROTO;
    *n = v.v.n;
    return 0;
}

int rpc_dec_map(struct rpc_dec *d, uint32_t *n)
{
    return dec_container(d, RPC_MAP, n);
}
int rpc_dec_array(struct rpc_dec *d, uint32_t *n)
{
    return dec_container(d, RPC_ARRAY, n);
}

int rpc_dec_time(struct rpc_dec *d, struct rpc_time *t)
{
    const uint8_t *p;
    size_t n;
    int r = rpc_dec_raw(d, &p, &n);
    if (r < 0)
        return r;
    memset(t, 0, sizeof(*t));
    if (n == 0) {
        t->unix_sec = -GO_UNIX_TO_INTERNAL;
        t->offset_min = -1;
        t->zero = 1;
        return 0;
    }
    /* version 1 is 15 bytes; version 2 (Go 1.21+) adds seconds of zone offset
     */
    if (!((n == 15 && p[0] == 1) || (n == 16 && p[0] == 2)))
        return -EBADMSG;
    uint64_t sec = rpc_get64(p + 1);
    uint32_t ns = rpc_get32(p + 9);
    if (ns >= 1000000000u)
        return -EBADMSG;
    t->nsec = (int32_t)ns;
    t->offset_min = (int16_t)rpc_get16(p + 13);
    t->zero = sec == 0 && ns == 0;
    t->unix_sec = (int64_t)(sec - (uint64_t)GO_UNIX_TO_INTERNAL);
    return 0;
}
