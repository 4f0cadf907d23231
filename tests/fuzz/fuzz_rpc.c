// deps: client/rpc/
/* libFuzzer target for every client/rpc decoder that reads a server's
 * bytes. The input is read as a sequence of msgpack values (skip, the
 * typed readers, the net/rpc header, time), which must never read past
 * the input and must agree on how far a value goes; then fed to a yamux
 * client session whole and in pieces whose sizes the first byte seeds:
 * both runs must give the same events, the same data, the same output
 * and the same result (the parser must not depend on where reads were
 * cut). */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "client/rpc/rpc.h"

static void check_values(const uint8_t *data, size_t size)
{
    struct rpc_dec d;
    rpc_dec_init(&d, data, size);
    while (d.p < d.end) {
        struct rpc_dec a = d, b = d, c = d;
        if (rpc_dec_skip(&a) < 0)
            break;
        if (a.p <= d.p || a.p > d.end)
            abort();
        /* typed reads stop at the same place when they succeed on a scalar */
        int64_t i;
        uint64_t u;
        const uint8_t *p;
        size_t n;
        struct rpc_val v;
        if (rpc_dec_next(&b, &v) == 0 && v.type != RPC_MAP &&
            v.type != RPC_ARRAY && b.p != a.p)
            abort();
        if (rpc_dec_int(&c, &i) == 0 && c.p != a.p)
            abort();
        c = d;
        if (rpc_dec_uint(&c, &u) == 0 && c.p != a.p)
            abort();
        c = d;
        if (rpc_dec_raw(&c, &p, &n) == 0 &&
            (c.p != a.p || (n && (p < data || p + n > d.end))))
            abort();
        c = d;
        struct rpc_time t;
        (void)rpc_dec_time(&c, &t);
        c = d;
        char *s = NULL;
        if (rpc_dec_strdup(&c, &s) == 0) {
            if (strlen(s) != n)
                abort();
            free(s);
        }
        c = d;
        struct rpc_header h;
        if (rpc_dec_header(&c, &h) == 0 && c.p != a.p)
            abort();
        else if (c.p != d.p && c.p != a.p)
            abort();
        d = a;
    }
}

struct log {
    uint8_t buf[1 << 16];
    size_t len;
};

static void log_put(struct log *l, const void *p, size_t n)
{
    if (n > sizeof(l->buf) - l->len)
        n = sizeof(l->buf) - l->len;
    memcpy(l->buf + l->len, p, n);
    l->len += n;
}

static void on_event(struct yamux_session *s, enum yamux_event ev,
                     struct yamux_stream *st, const uint8_t *data, uint32_t len)
{
    struct log *l = s->data;
    if (ev == YAMUX_EV_DATA) {
        log_put(l, data, len); /* split differently by the two runs */
        return;
    }
    uint8_t rec[9] = {0xff, (uint8_t)ev};
    uint32_t id = st ? st->id : 0;
    memcpy(rec + 1, &id, 4);
    memcpy(rec + 5, &len, 4);
    log_put(l, rec, sizeof(rec));
    if (ev == YAMUX_EV_STREAM_OPENED)
        (void)yamux_stream_write(s, st, (const uint8_t *)"\x01", 1);
    else if (ev == YAMUX_EV_STREAM_FIN)
        yamux_stream_close(s, st);
}

static int run_session(const uint8_t *data, size_t size, unsigned seed,
                       struct log *l, struct rpc_enc *out)
{
    struct yamux_session s;
    yamux_session_init(&s, 1, on_event, l);
    (void)yamux_stream_open(&s);
    int r = 0;
    size_t off = 0;
    while (off < size) {
        size_t n =
            seed ? 1 + (seed = seed * 1103515245u + 12345u) % 23 : size - off;
        if (n > size - off)
            n = size - off;
        r = yamux_session_input(&s, data + off, n);
        off += n;
        if (r < 0)
            break;
    }
    if (s.streams && s.streams->send_window != 0)
        (void)yamux_session_ping(&s);
    *out = s.out;
    s.out.buf = NULL;
    yamux_session_free(&s);
    return r;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    check_values(data + 1, size - 1);

    static struct log l1, l2;
    l1.len = l2.len = 0;
    struct rpc_enc o1, o2;
    int r1 = run_session(data + 1, size - 1, 0, &l1, &o1);
    int r2 = run_session(data + 1, size - 1, data[0] | 1u, &l2, &o2);
    if (r1 != r2 || l1.len != l2.len || memcmp(l1.buf, l2.buf, l1.len) != 0 ||
        o1.len != o2.len || (o1.len && memcmp(o1.buf, o2.buf, o1.len) != 0))
        abort();
    rpc_enc_free(&o1);
    rpc_enc_free(&o2);
    return 0;
}
