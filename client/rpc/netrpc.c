/* net/rpc headers as net-rpc-msgpackrpc writes them: a msgpack map of Go's
 * rpc.Request / rpc.Response, fields sorted by name as go-msgpack 1.1.5
 * writes any struct (tests/rpc/gen_vectors.go shows it). */
#include <errno.h>
#include <string.h>

#include "client/rpc/internal.h"

void rpc_enc_request_header(struct rpc_enc *e, const char *method, uint64_t seq)
{
    rpc_enc_map(e, 2);
    rpc_enc_str(e, "Seq");
    rpc_enc_uint(e, seq);
    rpc_enc_str(e, "ServiceMethod");
    rpc_enc_str(e, method);
}

void rpc_enc_response_header(struct rpc_enc *e, const char *method,
                             uint64_t seq, const char *error)
{
    rpc_enc_map(e, 3);
    rpc_enc_str(e, "Error");
    rpc_enc_str(e, error);
    rpc_enc_str(e, "Seq");
    rpc_enc_uint(e, seq);
    rpc_enc_str(e, "ServiceMethod");
    rpc_enc_str(e, method);
}

static int key_is(const uint8_t *k, size_t n, const char *s)
{
    return n == strlen(s) && memcmp(k, s, n) == 0;
}

int rpc_dec_header(struct rpc_dec *d, struct rpc_header *h)
{
    struct rpc_dec save = *d;
    uint32_t n;
    int r;
    memset(h, 0, sizeof(*h));
    if ((r = rpc_dec_map(d, &n)) < 0)
        goto out;
    for (uint32_t i = 0; i < n; i++) {
        const uint8_t *k;
        size_t kn;
        if ((r = rpc_dec_raw(d, &k, &kn)) < 0)
            goto out;
        if (key_is(k, kn, "ServiceMethod"))
            r = rpc_dec_raw(d, &h->method, &h->method_len);
        else if (key_is(k, kn, "Seq"))
            r = rpc_dec_uint(d, &h->seq);
        else if (key_is(k, kn, "Error"))
            r = rpc_dec_raw(d, &h->error, &h->error_len);
        else
            r = rpc_dec_skip(d);
        if (r < 0)
            goto out;
    }
    if (h->error_len == 0)
        h->error = NULL;
    return 0;
out:
    *d = save;
    return r;
}
