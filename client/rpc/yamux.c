/* yamux as hashicorp/yamux v0.1.1 speaks it, as a pure state machine:
 * bytes in, events and bytes out. Data is delivered as it arrives (no
 * buffering here), so a frame's size is bounded only by the receive
 * window we granted, and a peer that overruns it is a protocol error. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/rpc/internal.h"

void yamux_hdr_encode(uint8_t out[YAMUX_HDR_LEN], const struct yamux_hdr *h)
{
    out[0] = h->version;
    out[1] = h->type;
    rpc_put16(out + 2, h->flags);
    rpc_put32(out + 4, h->stream_id);
    rpc_put32(out + 8, h->length);
}

int yamux_hdr_decode(const uint8_t in[YAMUX_HDR_LEN], struct yamux_hdr *h)
{
    h->version = in[0];
    h->type = in[1];
    h->flags = rpc_get16(in + 2);
    h->stream_id = rpc_get32(in + 4);
    h->length = rpc_get32(in + 8);
    if (h->version != 0 || h->type > YAMUX_GO_AWAY)
        return -EPROTO;
    return 0;
}

static void send_hdr(struct yamux_session *s, uint8_t type, uint16_t flags,
                     uint32_t id, uint32_t length)
{
    struct yamux_hdr h = {0, type, flags, id, length};
    uint8_t b[YAMUX_HDR_LEN];
    yamux_hdr_encode(b, &h);
    rpc_enc_bytes(&s->out, b, sizeof(b));
}

void yamux_session_init(struct yamux_session *s, int client, yamux_event_cb cb,
                        void *data)
{
    memset(s, 0, sizeof(*s));
    s->client = client;
    s->next_id = client ? 1 : 2;
    s->max_streams = 256;
    s->cb = cb;
    s->data = data;
}

void yamux_session_free(struct yamux_session *s)
{
    struct yamux_stream *st = s->streams;
    while (st) {
        struct yamux_stream *n = st->next;
        free(st);
        st = n;
    }
    s->streams = NULL;
    rpc_enc_free(&s->out);
}

static __attribute__((format(printf, 2, 3))) int fail(struct yamux_session *s,
                                                      const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->error, sizeof(s->error), fmt, ap);
    va_end(ap);
    if (!s->failed)
        send_hdr(s, YAMUX_GO_AWAY, 0, 0, YAMUX_GOAWAY_PROTO);
    s->failed = 1;
    s->go_away_sent = 1;
    return -EPROTO;
}

struct yamux_stream *yamux_stream_find(struct yamux_session *s, uint32_t id)
{
    for (struct yamux_stream *st = s->streams; st; st = st->next)
        if (st->id == id)
            return st;
    return NULL;
}

static struct yamux_stream *stream_new(struct yamux_session *s, uint32_t id)
{
    struct yamux_stream *st = calloc(1, sizeof(*st));
    if (!st)
        return NULL;
    st->id = id;
    st->send_window = YAMUX_INITIAL_WINDOW;
    st->recv_window = YAMUX_INITIAL_WINDOW;
    st->next = s->streams;
    s->streams = st;
    s->nstreams++;
    return st;
}

static void stream_free(struct yamux_session *s, struct yamux_stream *st)
{
    for (struct yamux_stream **pp = &s->streams; *pp; pp = &(*pp)->next)
        if (*pp == st) {
            *pp = st->next;
            s->nstreams--;
            free(st);
            return;
        }
}

struct yamux_stream *yamux_stream_open(struct yamux_session *s)
{
    if (s->failed || s->go_away_sent || s->go_away_received)
        return NULL;
    if (s->next_id > UINT32_MAX - 2)
        return NULL;
    struct yamux_stream *st = stream_new(s, s->next_id);
    if (!st)
        return NULL;
    s->next_id += 2;
    send_hdr(s, YAMUX_WINDOW_UPDATE, YAMUX_SYN, st->id, 0);
    return st;
}

long yamux_stream_write(struct yamux_session *s, struct yamux_stream *st,
                        const uint8_t *buf, size_t len)
{
    if (s->failed)
        return -EPIPE;
    if (st->local_fin)
        return -EPIPE;
    size_t n = len < st->send_window ? len : st->send_window;
    if (n == 0)
        return 0;
    send_hdr(s, YAMUX_DATA, 0, st->id, (uint32_t)n);
    rpc_enc_bytes(&s->out, buf, n);
    if (s->out.err)
        return s->out.err;
    st->send_window -= (uint32_t)n;
    return (long)n;
}

void yamux_stream_consumed(struct yamux_session *s, struct yamux_stream *st,
                           uint32_t n)
{
    st->recv_consumed += n;
    if (st->recv_consumed < YAMUX_INITIAL_WINDOW / 2 || st->remote_fin)
        return;
    send_hdr(s, YAMUX_WINDOW_UPDATE, 0, st->id, st->recv_consumed);
    st->recv_window += st->recv_consumed;
    st->recv_consumed = 0;
}

void yamux_stream_close(struct yamux_session *s, struct yamux_stream *st)
{
    if (!st->local_fin) {
        send_hdr(s, YAMUX_WINDOW_UPDATE, YAMUX_FIN, st->id, 0);
        st->local_fin = 1;
    }
    if (st->remote_fin)
        stream_free(s, st);
}

void yamux_stream_reset(struct yamux_session *s, struct yamux_stream *st)
{
    send_hdr(s, YAMUX_WINDOW_UPDATE, YAMUX_RST, st->id, 0);
    stream_free(s, st);
}

int yamux_session_ping(struct yamux_session *s)
{
    if (s->ping_outstanding)
        return -ETIMEDOUT;
    s->ping_id++;
    s->ping_outstanding = 1;
    send_hdr(s, YAMUX_PING, YAMUX_SYN, 0, s->ping_id);
    return 0;
}

void yamux_session_go_away(struct yamux_session *s, uint32_t code)
{
    if (s->go_away_sent)
        return;
    s->go_away_sent = 1;
    send_hdr(s, YAMUX_GO_AWAY, 0, 0, code);
}

/* Flags on a stream frame. Returns the stream (NULL if none or gone),
 * or sets *err. SYN creates the inbound stream and ACKs it. */
static struct yamux_stream *stream_flags(struct yamux_session *s,
                                         const struct yamux_hdr *h, int *err)
{
    *err = 0;
    if (h->stream_id == 0) {
        *err = fail(s, "yamux: %s frame on stream 0",
                    h->type == YAMUX_DATA ? "data" : "window update");
        return NULL;
    }
    struct yamux_stream *st = yamux_stream_find(s, h->stream_id);
    if (h->flags & YAMUX_SYN) {
        if (st) {
            *err = fail(s, "yamux: duplicate stream %u", h->stream_id);
            return NULL;
        }
        if ((h->stream_id & 1) == (s->client ? 1u : 0u)) {
            *err = fail(s, "yamux: peer opened stream %u of our parity",
                        h->stream_id);
            return NULL;
        }
        if (s->go_away_sent || s->nstreams >= s->max_streams) {
            send_hdr(s, YAMUX_WINDOW_UPDATE, YAMUX_RST, h->stream_id, 0);
            return NULL;
        }
        st = stream_new(s, h->stream_id);
        if (!st) {
            send_hdr(s, YAMUX_WINDOW_UPDATE, YAMUX_RST, h->stream_id, 0);
            return NULL;
        }
        st->acked = 1;
        send_hdr(s, YAMUX_WINDOW_UPDATE, YAMUX_ACK, st->id, 0);
        s->cb(s, YAMUX_EV_STREAM_OPENED, st, NULL, 0);
        st = yamux_stream_find(s, h->stream_id); /* the callback may reset it */
    }
    if (st && (h->flags & YAMUX_ACK) && !st->acked) {
        st->acked = 1;
        s->cb(s, YAMUX_EV_STREAM_ACKED, st, NULL, 0);
        st = yamux_stream_find(s, h->stream_id);
    }
    return st;
}

/* FIN/RST after a frame's data; may free the stream. */
static void stream_end_flags(struct yamux_session *s, uint32_t id,
                             uint16_t flags)
{
    struct yamux_stream *st = yamux_stream_find(s, id);
    if (!st)
        return;
    if (flags & YAMUX_RST) {
        s->cb(s, YAMUX_EV_STREAM_RESET, st, NULL, 0);
        if ((st = yamux_stream_find(s, id)))
            stream_free(s, st);
        return;
    }
    if ((flags & YAMUX_FIN) && !st->remote_fin) {
        st->remote_fin = 1;
        s->cb(s, YAMUX_EV_STREAM_FIN, st, NULL, 0);
        if ((st = yamux_stream_find(s, id)) && st->local_fin)
            stream_free(s, st);
    }
}

static int on_header(struct yamux_session *s, const struct yamux_hdr *h)
{
    int err;
    struct yamux_stream *st;
    switch (h->type) {
    case YAMUX_DATA:
        st = stream_flags(s, h, &err);
        if (err)
            return err;
        if (st) {
            if (st->remote_fin && h->length)
                return fail(s, "yamux: data after FIN on stream %u",
                            h->stream_id);
            if (h->length > st->recv_window)
                return fail(
                    s, "yamux: stream %u sent %u bytes over a window of %u",
                    h->stream_id, h->length, st->recv_window);
            st->recv_window -= h->length;
        }
        s->cur = *h;
        s->body_left = h->length;
        if (s->body_left == 0)
            stream_end_flags(s, h->stream_id, h->flags);
        return 0;
    case YAMUX_WINDOW_UPDATE:
        st = stream_flags(s, h, &err);
        if (err)
            return err;
        if (st && h->length) {
            if (h->length > UINT32_MAX - st->send_window)
                return fail(s, "yamux: window overflow on stream %u",
                            h->stream_id);
            st->send_window += h->length;
            s->cb(s, YAMUX_EV_WINDOW, st, NULL, 0);
        }
        stream_end_flags(s, h->stream_id, h->flags);
        return 0;
    case YAMUX_PING:
        if (h->flags & YAMUX_SYN) {
            send_hdr(s, YAMUX_PING, YAMUX_ACK, 0, h->length);
        } else if ((h->flags & YAMUX_ACK) && s->ping_outstanding &&
                   h->length == s->ping_id) {
            s->ping_outstanding = 0;
            s->cb(s, YAMUX_EV_PONG, NULL, NULL, h->length);
        }
        return 0;
    default: /* YAMUX_GO_AWAY */
        s->go_away_received = 1;
        s->cb(s, YAMUX_EV_GO_AWAY, NULL, NULL, h->length);
        return 0;
    }
}

int yamux_session_input(struct yamux_session *s, const uint8_t *buf, size_t len)
{
    if (s->failed)
        return -EPROTO;
    while (len > 0) {
        if (s->body_left > 0) {
            uint32_t n = len < s->body_left ? (uint32_t)len : s->body_left;
            struct yamux_stream *st = yamux_stream_find(s, s->cur.stream_id);
            if (st)
                s->cb(s, YAMUX_EV_DATA, st, buf, n);
            buf += n;
            len -= n;
            s->body_left -= n;
            if (s->body_left == 0)
                stream_end_flags(s, s->cur.stream_id, s->cur.flags);
            continue;
        }
        size_t n = YAMUX_HDR_LEN - s->hdr_have;
        if (n > len)
            n = len;
        memcpy(s->hdr + s->hdr_have, buf, n);
        s->hdr_have += n;
        buf += n;
        len -= n;
        if (s->hdr_have < YAMUX_HDR_LEN)
            break;
        s->hdr_have = 0;
        struct yamux_hdr h;
        if (yamux_hdr_decode(s->hdr, &h) < 0)
            return fail(s, "yamux: bad header (version %u, type %u)", s->hdr[0],
                        s->hdr[1]);
        int r = on_header(s, &h);
        if (r < 0)
            return r;
    }
    return s->out.err;
}
