// deps: client/rpc/
/* client/rpc yamux: the 12-byte header as hashicorp/yamux v0.1.1 writes
 * it (spec.md, const.go), and the session fed bytes as a server would
 * send them, whole and one byte at a time. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "client/rpc/rpc.h"

struct rec {
    int ev[32];
    uint32_t id[32];
    int n;
    uint8_t data[1024];
    size_t dlen;
    uint32_t last_len;
    int reset_on_open;
};

static void on_event(struct yamux_session *s, enum yamux_event ev,
                     struct yamux_stream *st, const uint8_t *data, uint32_t len)
{
    struct rec *r = s->data;
    if (r->n < 32) {
        r->ev[r->n] = ev;
        r->id[r->n] = st ? st->id : 0;
        r->n++;
    }
    r->last_len = len;
    if (ev == YAMUX_EV_DATA && r->dlen + len <= sizeof(r->data)) {
        memcpy(r->data + r->dlen, data, len);
        r->dlen += len;
    }
    if (ev == YAMUX_EV_STREAM_OPENED && r->reset_on_open)
        yamux_stream_reset(s, st);
}

#define H(type, flags, id, len)                                                \
    0, type, 0, flags, (uint8_t)((id) >> 24), (uint8_t)((id) >> 16),           \
        (uint8_t)((id) >> 8), (uint8_t)(id), (uint8_t)((len) >> 24),           \
        (uint8_t)((len) >> 16), (uint8_t)((len) >> 8), (uint8_t)(len)

static void assert_out(struct yamux_session *s, const uint8_t *want, size_t n)
{
    assert_int_equal(s->out.len, n);
    if (n)
        assert_memory_equal(s->out.buf, want, n);
    s->out.len = 0;
}

/* Feeds whole, and also byte by byte into a twin session when given. */
static int feed(struct yamux_session *s, const uint8_t *b, size_t n)
{
    return yamux_session_input(s, b, n);
}

static int feed_bytewise(struct yamux_session *s, const uint8_t *b, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        int r = yamux_session_input(s, b + i, 1);
        if (r < 0)
            return r;
    }
    return 0;
}

static void test_header(void **state)
{
    (void)state;
    struct yamux_hdr h = {0, YAMUX_WINDOW_UPDATE, YAMUX_SYN, 1, 0}, g;
    uint8_t b[YAMUX_HDR_LEN];
    static const uint8_t open1[] = {0, 1, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0};
    yamux_hdr_encode(b, &h);
    assert_memory_equal(b, open1, 12);
    static const uint8_t data[] = {0, 0, 0, 0x04, 0, 0, 0, 3, 0, 0x04, 0, 0};
    assert_int_equal(yamux_hdr_decode(data, &g), 0);
    assert_int_equal(g.type, YAMUX_DATA);
    assert_int_equal(g.flags, YAMUX_FIN);
    assert_int_equal(g.stream_id, 3);
    assert_int_equal(g.length, 262144);
    static const uint8_t v1[] = {1, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0};
    static const uint8_t t4[] = {0, 4, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0};
    assert_int_equal(yamux_hdr_decode(v1, &g), -EPROTO);
    assert_int_equal(yamux_hdr_decode(t4, &g), -EPROTO);
}

static void client_exchange(int bytewise)
{
    struct rec r = {0};
    struct yamux_session s;
    yamux_session_init(&s, 1, on_event, &r);
    int (*in)(struct yamux_session *, const uint8_t *, size_t) =
        bytewise ? feed_bytewise : feed;

    struct yamux_stream *st = yamux_stream_open(&s);
    assert_non_null(st);
    assert_int_equal(st->id, 1);
    static const uint8_t syn[] = {H(1, 1, 1, 0)};
    assert_out(&s, syn, sizeof(syn));
    assert_int_equal(yamux_stream_open(&s)->id, 3);
    s.out.len = 0;

    /* the server ACKs and answers "ok" with FIN in the same frame */
    static const uint8_t srv[] = {H(1, 2, 1, 0), H(0, 4, 1, 2), 'o', 'k'};
    assert_int_equal(in(&s, srv, sizeof(srv)), 0);
    assert_int_equal(r.ev[0], YAMUX_EV_STREAM_ACKED);
    assert_int_equal(r.ev[1], YAMUX_EV_DATA);
    assert_int_equal(r.ev[r.n - 1], YAMUX_EV_STREAM_FIN);
    assert_int_equal(r.dlen, 2);
    assert_memory_equal(r.data, "ok", 2);
    st = yamux_stream_find(&s, 1);
    assert_non_null(st);
    assert_true(st->remote_fin);
    assert_int_equal(st->recv_window, YAMUX_INITIAL_WINDOW - 2);

    /* 0x01 then a request, within the window */
    static const uint8_t want[] = {H(0, 0, 1, 3), 0x01, 0x82, 0xc0};
    assert_int_equal(
        yamux_stream_write(&s, st, (const uint8_t *)"\x01\x82\xc0", 3), 3);
    assert_out(&s, want, sizeof(want));
    /* closing after the peer's FIN frees the stream */
    static const uint8_t fin[] = {H(1, 4, 1, 0)};
    yamux_stream_close(&s, st);
    assert_out(&s, fin, sizeof(fin));
    assert_null(yamux_stream_find(&s, 1));
    assert_int_equal(s.nstreams, 1);

    /* a ping from the server is answered with the same opaque value */
    static const uint8_t ping[] = {H(2, 1, 0, 0x1234)},
                         pong[] = {H(2, 2, 0, 0x1234)};
    assert_int_equal(in(&s, ping, sizeof(ping)), 0);
    assert_out(&s, pong, sizeof(pong));
    yamux_session_free(&s);
}

static void test_client_exchange(void **state)
{
    (void)state;
    client_exchange(0);
    client_exchange(1);
}

static void test_keepalive(void **state)
{
    (void)state;
    struct rec r = {0};
    struct yamux_session s;
    yamux_session_init(&s, 1, on_event, &r);
    assert_int_equal(yamux_session_ping(&s), 0);
    static const uint8_t p1[] = {H(2, 1, 0, 1)}, a1[] = {H(2, 2, 0, 1)};
    assert_out(&s, p1, sizeof(p1));
    assert_int_equal(yamux_session_ping(&s), -ETIMEDOUT); /* unanswered */
    assert_int_equal(feed(&s, a1, sizeof(a1)), 0);
    assert_int_equal(r.ev[0], YAMUX_EV_PONG);
    assert_int_equal(r.last_len, 1);
    assert_int_equal(yamux_session_ping(&s), 0);
    static const uint8_t p2[] = {H(2, 1, 0, 2)};
    assert_out(&s, p2, sizeof(p2));
    /* a stale ACK does not count */
    assert_int_equal(feed(&s, a1, sizeof(a1)), 0);
    assert_int_equal(r.n, 1);
    assert_int_equal(yamux_session_ping(&s), -ETIMEDOUT);
    yamux_session_free(&s);
}

static void test_inbound_streams(void **state)
{
    (void)state;
    struct rec r = {0};
    struct yamux_session s;
    yamux_session_init(&s, 1, on_event, &r);
    /* the server opens stream 2: ACKed at once */
    static const uint8_t syn2[] = {H(1, 1, 2, 0)}, ack2[] = {H(1, 2, 2, 0)};
    assert_int_equal(feed_bytewise(&s, syn2, sizeof(syn2)), 0);
    assert_int_equal(r.ev[0], YAMUX_EV_STREAM_OPENED);
    assert_int_equal(r.id[0], 2);
    assert_out(&s, ack2, sizeof(ack2));
    /* a reset from the peer ends it */
    static const uint8_t rst2[] = {H(1, 8, 2, 0)};
    assert_int_equal(feed(&s, rst2, sizeof(rst2)), 0);
    assert_int_equal(r.ev[1], YAMUX_EV_STREAM_RESET);
    assert_null(yamux_stream_find(&s, 2));
    /* one refused from the callback: ACK then RST */
    r.reset_on_open = 1;
    static const uint8_t syn4[] = {H(0, 1, 4, 0)},
                         out4[] = {H(1, 2, 4, 0), H(1, 8, 4, 0)};
    assert_int_equal(feed(&s, syn4, sizeof(syn4)), 0);
    assert_out(&s, out4, sizeof(out4));
    assert_int_equal(s.nstreams, 0);
    /* over max_streams: RST without an event */
    r.reset_on_open = 0;
    s.max_streams = 0;
    int before = r.n;
    static const uint8_t syn6[] = {H(1, 1, 6, 0)}, rst6[] = {H(1, 8, 6, 0)};
    assert_int_equal(feed(&s, syn6, sizeof(syn6)), 0);
    assert_out(&s, rst6, sizeof(rst6));
    assert_int_equal(r.n, before);
    /* frames for unknown streams are dropped, their data skipped */
    static const uint8_t stray[] = {H(0, 0, 8, 3), 'a', 'b', 'c',
                                    H(2, 1, 0, 9)};
    static const uint8_t pong9[] = {H(2, 2, 0, 9)};
    assert_int_equal(feed(&s, stray, sizeof(stray)), 0);
    assert_out(&s, pong9, sizeof(pong9));
    assert_int_equal(r.dlen, 0);
    yamux_session_free(&s);
}

static void test_protocol_errors(void **state)
{
    (void)state;
    static const uint8_t goaway_proto[] = {H(3, 0, 0, 1)};
    static const struct {
        uint8_t b[12];
    } bad[] = {
        {{H(1, 1, 3, 0)}}, /* a server opening an odd (client) id */
        {{H(0, 0, 0, 1)}}, /* data on stream 0 */
        {{1, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0}}, /* version 1 */
        {{0, 9, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0}}, /* type 9 */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct rec r = {0};
        struct yamux_session s;
        yamux_session_init(&s, 1, on_event, &r);
        assert_int_equal(feed(&s, bad[i].b, 12), -EPROTO);
        assert_true(s.error[0] != 0);
        assert_out(&s, goaway_proto, sizeof(goaway_proto));
        assert_int_equal(feed(&s, bad[i].b, 1), -EPROTO); /* stays failed */
        assert_null(yamux_stream_open(&s));
        yamux_session_free(&s);
    }
    /* duplicate SYN */
    struct rec r = {0};
    struct yamux_session s;
    yamux_session_init(&s, 1, on_event, &r);
    static const uint8_t syn2[] = {H(1, 1, 2, 0), H(1, 1, 2, 0)};
    assert_int_equal(feed(&s, syn2, sizeof(syn2)), -EPROTO);
    yamux_session_free(&s);
}

static void test_windows(void **state)
{
    (void)state;
    struct rec r = {0};
    struct yamux_session s;
    yamux_session_init(&s, 1, on_event, &r);
    struct yamux_stream *st = yamux_stream_open(&s);
    s.out.len = 0;
    /* sending: at most the 256 KiB window, then nothing until an update */
    size_t big = 300 * 1024;
    uint8_t *buf = calloc(1, big);
    assert_int_equal(yamux_stream_write(&s, st, buf, big),
                     YAMUX_INITIAL_WINDOW);
    assert_int_equal(s.out.len, 12 + YAMUX_INITIAL_WINDOW);
    static const uint8_t h256[] = {H(0, 0, 1, 262144)};
    assert_memory_equal(s.out.buf, h256, 12);
    s.out.len = 0;
    assert_int_equal(yamux_stream_write(&s, st, buf, big), 0);
    static const uint8_t upd[] = {H(1, 2, 1, 1000)};
    assert_int_equal(feed(&s, upd, sizeof(upd)), 0);
    assert_int_equal(r.ev[0], YAMUX_EV_STREAM_ACKED);
    assert_int_equal(r.ev[1], YAMUX_EV_WINDOW);
    assert_int_equal(yamux_stream_write(&s, st, buf, big), 1000);
    s.out.len = 0;

    /* receiving: consumed bytes are credited back once half is used */
    uint8_t hdr[12] = {H(0, 0, 1, 131072)};
    assert_int_equal(feed(&s, hdr, 12), 0);
    assert_int_equal(feed(&s, buf, 131072), 0);
    assert_int_equal(st->recv_window, YAMUX_INITIAL_WINDOW - 131072);
    yamux_stream_consumed(&s, st, 131071);
    assert_int_equal(s.out.len, 0);
    yamux_stream_consumed(&s, st, 1);
    static const uint8_t credit[] = {H(1, 0, 1, 131072)};
    assert_out(&s, credit, sizeof(credit));
    assert_int_equal(st->recv_window, YAMUX_INITIAL_WINDOW);
    /* a frame over the granted window is a protocol error */
    uint8_t over[12] = {H(0, 0, 1, 262145)};
    assert_int_equal(feed(&s, over, 12), -EPROTO);
    free(buf);
    yamux_session_free(&s);
}

static void test_go_away(void **state)
{
    (void)state;
    struct rec r = {0};
    struct yamux_session s;
    yamux_session_init(&s, 1, on_event, &r);
    static const uint8_t ga[] = {H(3, 0, 0, 0)};
    assert_int_equal(feed(&s, ga, sizeof(ga)), 0);
    assert_int_equal(r.ev[0], YAMUX_EV_GO_AWAY);
    assert_int_equal(r.last_len, YAMUX_GOAWAY_NORMAL);
    assert_null(yamux_stream_open(&s));
    yamux_session_go_away(&s, YAMUX_GOAWAY_NORMAL);
    yamux_session_go_away(&s, YAMUX_GOAWAY_NORMAL); /* once */
    assert_out(&s, ga, sizeof(ga));
    /* a server session opens even ids */
    struct yamux_session srv;
    yamux_session_init(&srv, 0, on_event, &r);
    assert_int_equal(yamux_stream_open(&srv)->id, 2);
    yamux_session_free(&srv);
    yamux_session_free(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_header),
        cmocka_unit_test(test_client_exchange),
        cmocka_unit_test(test_keepalive),
        cmocka_unit_test(test_inbound_streams),
        cmocka_unit_test(test_protocol_errors),
        cmocka_unit_test(test_windows),
        cmocka_unit_test(test_go_away),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
