/* websocket.c - see client/api/websocket.h. */
#include "client/api/websocket.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>

/* ---- SHA-1 -------------------------------------------------------------- */

static uint32_t rol(uint32_t v, int n)
{
    return v << n | v >> (32 - n);
}

static void sha1_block(uint32_t h[5], const uint8_t *p)
{
    uint32_t w[80];
    for (int i = 0; i < 16; i++)
        w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 |
               (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
    for (int i = 16; i < 80; i++)
        w[i] = rol(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
    uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4];
    for (int i = 0; i < 80; i++) {
        uint32_t f, k;
        if (i < 20) {
            f = (b & c) | (~b & d);
            k = 0x5a827999;
        } else if (i < 40) {
            f = b ^ c ^ d;
            k = 0x6ed9eba1;
        } else if (i < 60) {
            f = (b & c) | (b & d) | (c & d);
            k = 0x8f1bbcdc;
        } else {
            f = b ^ c ^ d;
            k = 0xca62c1d6;
        }
        uint32_t t = rol(a, 5) + f + e + k + w[i];
        e = d;
        d = c;
        c = rol(b, 30);
        b = a;
        a = t;
    }
    h[0] += a;
    h[1] += b;
    h[2] += c;
    h[3] += d;
    h[4] += e;
}

void ws_sha1(const void *data, size_t len, uint8_t out[20])
{
    uint32_t h[5] = {0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476,
                     0xc3d2e1f0};
    const uint8_t *p = data;
    size_t left = len;
    for (; left >= 64; left -= 64, p += 64)
        sha1_block(h, p);
    uint8_t tail[128] = {0};
    memcpy(tail, p, left);
    tail[left] = 0x80;
    size_t tlen = left + 9 <= 64 ? 64 : 128;
    uint64_t bits = (uint64_t)len * 8;
    for (int i = 0; i < 8; i++)
        tail[tlen - 1 - i] = (uint8_t)(bits >> (8 * i));
    sha1_block(h, tail);
    if (tlen == 128)
        sha1_block(h, tail + 64);
    for (int i = 0; i < 5; i++) {
        out[4 * i] = (uint8_t)(h[i] >> 24);
        out[4 * i + 1] = (uint8_t)(h[i] >> 16);
        out[4 * i + 2] = (uint8_t)(h[i] >> 8);
        out[4 * i + 3] = (uint8_t)h[i];
    }
}

/* ---- the opening handshake ------------------------------------------- */

#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

void ws_accept_key(const char *client_key, char out[29])
{
    char *cat = xasprintf("%s" WS_GUID, client_key);
    uint8_t d[20];
    ws_sha1(cat, strlen(cat), d);
    free(cat);
    char *e = nc_base64_encode(d, sizeof(d), false);
    snprintf(out, 29, "%s", e);
    free(e);
}

static void random_bytes(void *buf, size_t n)
{
    uint8_t *p = buf;
    ssize_t got = getrandom(p, n, GRND_NONBLOCK);
    if (got == (ssize_t)n)
        return;
    /* no entropy yet (early boot): a mask or key only has to be
     * unpredictable to a web page, not secret */
    static unsigned seed;
    if (!seed)
        seed = (unsigned)time(NULL) ^ (unsigned)(uintptr_t)buf;
    for (size_t i = got > 0 ? (size_t)got : 0; i < n; i++)
        p[i] = (uint8_t)(rand_r(&seed) >> 7);
}

void ws_client_key(char out[25])
{
    uint8_t k[16];
    random_bytes(k, sizeof(k));
    char *e = nc_base64_encode(k, sizeof(k), false);
    snprintf(out, 25, "%s", e);
    free(e);
}

/* Whether the comma-separated header value holds `token` (any case). */
static bool header_has_token(const char *v, const char *token)
{
    size_t tl = strlen(token);
    while (v && *v) {
        while (*v == ' ' || *v == '\t' || *v == ',')
            v++;
        size_t n = strcspn(v, ",");
        size_t m = n;
        while (m > 0 && (v[m - 1] == ' ' || v[m - 1] == '\t'))
            m--;
        if (m == tl && strncasecmp(v, token, tl) == 0)
            return true;
        v += n;
    }
    return false;
}

#define BAD_HANDSHAKE                                                          \
    "websocket: the client is not using the websocket protocol: "

int ws_handshake_check(const char *method, const struct kvlist *headers,
                       char *msg, size_t msglen)
{
    if (!header_has_token(kv_get(headers, "connection"), "upgrade")) {
        snprintf(msg, msglen,
                 BAD_HANDSHAKE "'upgrade' token not found in 'Connection' "
                               "header");
        return 400;
    }
    if (!header_has_token(kv_get(headers, "upgrade"), "websocket")) {
        snprintf(msg, msglen,
                 BAD_HANDSHAKE "'websocket' token not found in 'Upgrade' "
                               "header");
        return 400;
    }
    if (strcmp(method, "GET") != 0) {
        snprintf(msg, msglen, BAD_HANDSHAKE "request method is not GET");
        return 405;
    }
    if (!header_has_token(kv_get(headers, "sec-websocket-version"), "13")) {
        snprintf(msg, msglen,
                 "websocket: unsupported version: 13 not found "
                 "in 'Sec-Websocket-Version' header");
        return 426;
    }
    const char *origin = kv_get(headers, "origin");
    if (origin) {
        const char *h = strstr(origin, "://");
        h = h ? h + 3 : origin;
        size_t hl = strcspn(h, "/?#");
        const char *host = kv_get(headers, "host");
        if (!host || strlen(host) != hl || strncasecmp(h, host, hl) != 0) {
            snprintf(msg, msglen,
                     "websocket: request origin not allowed by "
                     "Upgrader.CheckOrigin");
            return 403;
        }
    }
    const char *key = kv_get(headers, "sec-websocket-key");
    if (!key || !*key) {
        snprintf(msg, msglen,
                 "websocket: not a websocket handshake: "
                 "'Sec-WebSocket-Key' header is missing or blank");
        return 400;
    }
    struct nc_buf raw = {0};
    bool ok = nc_base64_decode(key, strlen(key), &raw) == 0 && raw.len == 16;
    nc_buf_free(&raw);
    if (!ok) {
        snprintf(msg, msglen,
                 "websocket: not a websocket handshake: "
                 "'Sec-WebSocket-Key' header must be Base64 "
                 "encoded value of 16-byte length");
        return 400;
    }
    return 0;
}

/* ---- UTF-8 ------------------------------------------------------------- */

bool ws_utf8_valid(const char *s, size_t len)
{
    const uint8_t *p = (const uint8_t *)s, *end = p + len;
    while (p < end) {
        uint8_t c = *p;
        if (c < 0x80) {
            p++;
            continue;
        }
        size_t n;
        uint32_t cp, min;
        if ((c & 0xe0) == 0xc0) {
            n = 2, cp = c & 0x1f, min = 0x80;
        } else if ((c & 0xf0) == 0xe0) {
            n = 3, cp = c & 0x0f, min = 0x800;
        } else if ((c & 0xf8) == 0xf0) {
            n = 4, cp = c & 0x07, min = 0x10000;
        } else {
            return false;
        }
        if ((size_t)(end - p) < n)
            return false;
        for (size_t i = 1; i < n; i++) {
            if ((p[i] & 0xc0) != 0x80)
                return false;
            cp = cp << 6 | (p[i] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        p += n;
    }
    return true;
}

/* ---- reading frames ------------------------------------------------------ */

static long reader_fail(struct ws_reader *r, int err, int code, int *close_code,
                        char *why, size_t whylen, const char *text)
{
    r->failed = true;
    *close_code = code;
    snprintf(why, whylen, "%s", text);
    return err;
}

/* The frame header's size once its first two bytes are in. */
static size_t header_size(const uint8_t *h)
{
    size_t n = 2;
    uint8_t l = h[1] & 0x7f;
    if (l == 126)
        n += 2;
    else if (l == 127)
        n += 8;
    if (h[1] & 0x80)
        n += 4;
    return n;
}

static bool valid_close_code(int code)
{
    return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1011) ||
           (code >= 3000 && code <= 4999);
}

/* Checks the header in r->hdr and starts the frame. Returns 0 or the
 * failure. */
static long start_frame(struct ws_reader *r, int *close_code, char *why,
                        size_t whylen)
{
    const uint8_t *h = r->hdr;
    bool fin = h[0] & 0x80;
    int op = h[0] & 0x0f;
    bool masked = h[1] & 0x80;
    uint64_t plen = h[1] & 0x7f;
    size_t off = 2;
    if (plen == 126) {
        plen = (uint64_t)h[2] << 8 | h[3];
        off = 4;
    } else if (plen == 127) {
        plen = 0;
        for (int i = 0; i < 8; i++)
            plen = plen << 8 | h[2 + i];
        off = 10;
        if (plen >> 63)
            return reader_fail(r, -EPROTO, WS_CLOSE_PROTOCOL_ERROR, close_code,
                               why, whylen,
                               "frame length has the high bit set");
    }
    if (h[0] & 0x70)
        return reader_fail(r, -EPROTO, WS_CLOSE_PROTOCOL_ERROR, close_code, why,
                           whylen,
                           "reserved bits set (no extension "
                           "was negotiated)");
    bool control = op & 0x8;
    if (control) {
        if (op != WS_CLOSE && op != WS_PING && op != WS_PONG)
            return reader_fail(r, -EPROTO, WS_CLOSE_PROTOCOL_ERROR, close_code,
                               why, whylen, "unknown control opcode");
        if (!fin || plen > WS_MAX_CONTROL)
            return reader_fail(r, -EPROTO, WS_CLOSE_PROTOCOL_ERROR, close_code,
                               why, whylen,
                               "control frame fragmented or longer than 125 "
                               "bytes");
    } else if (op == WS_CONTINUATION) {
        if (!r->msg_opcode)
            return reader_fail(r, -EPROTO, WS_CLOSE_PROTOCOL_ERROR, close_code,
                               why, whylen,
                               "continuation frame without a message");
    } else if (op == WS_TEXT || op == WS_BINARY) {
        if (r->msg_opcode)
            return reader_fail(r, -EPROTO, WS_CLOSE_PROTOCOL_ERROR, close_code,
                               why, whylen,
                               "new message before the last one ended");
    } else {
        return reader_fail(r, -EPROTO, WS_CLOSE_PROTOCOL_ERROR, close_code, why,
                           whylen, "unknown data opcode");
    }
    if (masked != r->server)
        return reader_fail(r, -EPROTO, WS_CLOSE_PROTOCOL_ERROR, close_code, why,
                           whylen,
                           r->server ? "client frame is not masked"
                                     : "server frame is masked");
    size_t max = r->max_message ? r->max_message : WS_DEFAULT_MAX_MESSAGE;
    if (!control && plen > max - r->msg.len)
        return reader_fail(r, -EMSGSIZE, WS_CLOSE_TOO_BIG, close_code, why,
                           whylen, "message too big");
    if (masked)
        memcpy(r->mask, h + off, 4);
    r->masked = masked;
    r->mask_off = 0;
    r->remaining = plen;
    r->frame_opcode = op;
    r->fin = fin;
    r->in_frame = true;
    r->ctl_len = 0;
    if (op == WS_TEXT || op == WS_BINARY) {
        r->msg_opcode = op;
        r->msg.len = 0;
    }
    return 0;
}

/* The frame's payload is all in: a message when it completes one. */
static long end_frame(struct ws_reader *r, struct ws_message *msg,
                      int *close_code, char *why, size_t whylen)
{
    r->in_frame = false;
    r->hdr_len = 0;
    int op = r->frame_opcode;
    if (op & 0x8) {
        msg->opcode = op;
        msg->data = r->ctl;
        msg->len = r->ctl_len;
        msg->close_code = 0;
        r->ctl[r->ctl_len] = '\0';
        if (op == WS_CLOSE) {
            msg->close_code = WS_CLOSE_NO_STATUS;
            if (r->ctl_len == 1)
                return reader_fail(r, -EPROTO, WS_CLOSE_PROTOCOL_ERROR,
                                   close_code, why, whylen,
                                   "close frame of one byte");
            if (r->ctl_len >= 2) {
                int code = (uint8_t)r->ctl[0] << 8 | (uint8_t)r->ctl[1];
                if (!valid_close_code(code))
                    return reader_fail(r, -EPROTO, WS_CLOSE_PROTOCOL_ERROR,
                                       close_code, why, whylen,
                                       "invalid close code");
                if (!ws_utf8_valid(r->ctl + 2, r->ctl_len - 2))
                    return reader_fail(r, -EILSEQ, WS_CLOSE_INVALID_DATA,
                                       close_code, why, whylen,
                                       "close reason is not UTF-8");
                msg->close_code = code;
                msg->data = r->ctl + 2;
                msg->len = r->ctl_len - 2;
            }
        }
        return 1;
    }
    if (!r->fin)
        return 0;
    if (r->msg_opcode == WS_TEXT && !ws_utf8_valid(r->msg.data, r->msg.len))
        return reader_fail(r, -EILSEQ, WS_CLOSE_INVALID_DATA, close_code, why,
                           whylen, "text message is not UTF-8");
    msg->opcode = r->msg_opcode;
    nc_buf_puts(&r->msg, ""); /* a NUL after the data, not counted */
    msg->data = r->msg.data ? r->msg.data : "";
    msg->len = r->msg.len;
    msg->close_code = 0;
    r->msg_opcode = 0;
    return 1;
}

long ws_reader_next(struct ws_reader *r, const void *buf, size_t len,
                    struct ws_message *msg, int *close_code, char *why,
                    size_t whylen)
{
    const uint8_t *p = buf;
    size_t used = 0;
    msg->opcode = 0;
    if (r->failed)
        return reader_fail(r, -EPROTO, WS_CLOSE_PROTOCOL_ERROR, close_code, why,
                           whylen, "connection already failed");
    /* a finished message's buffer is reused from here */
    if (!r->msg_opcode && !r->in_frame)
        r->msg.len = 0;
    while (used < len || (r->in_frame && r->remaining == 0)) {
        if (!r->in_frame) {
            size_t need = r->hdr_len < 2 ? 2 : header_size(r->hdr);
            while (r->hdr_len < need && used < len) {
                r->hdr[r->hdr_len++] = p[used++];
                if (r->hdr_len == 2)
                    need = header_size(r->hdr);
            }
            if (r->hdr_len < need)
                return (long)used;
            long e = start_frame(r, close_code, why, whylen);
            if (e < 0)
                return e;
        }
        size_t take = len - used;
        if (take > r->remaining)
            take = (size_t)r->remaining;
        char *dst;
        if (r->frame_opcode & 0x8) {
            dst = r->ctl + r->ctl_len;
            r->ctl_len += take;
        } else {
            nc_grow((void **)&r->msg.data, &r->msg.cap, r->msg.len + take + 1,
                    1);
            dst = r->msg.data + r->msg.len;
            r->msg.len += take;
        }
        for (size_t i = 0; i < take; i++)
            dst[i] = (char)(p[used + i] ^
                            (r->masked ? r->mask[r->mask_off++ & 3] : 0));
        used += take;
        r->remaining -= take;
        if (r->remaining == 0) {
            long e = end_frame(r, msg, close_code, why, whylen);
            if (e < 0)
                return e;
            if (e > 0)
                return (long)used;
        }
    }
    return (long)used;
}

void ws_reader_free(struct ws_reader *r)
{
    nc_buf_free(&r->msg);
    memset(r, 0, sizeof(*r));
}

/* ---- writing frames -------------------------------------------------------
 */

void ws_frame_append(struct nc_buf *out, int opcode, const void *data,
                     size_t len, bool mask)
{
    uint8_t h[14];
    size_t n = 0;
    h[n++] = (uint8_t)(0x80 | (opcode & 0x0f));
    uint8_t m = mask ? 0x80 : 0;
    if (len < 126) {
        h[n++] = (uint8_t)(m | len);
    } else if (len <= 0xffff) {
        h[n++] = m | 126;
        h[n++] = (uint8_t)(len >> 8);
        h[n++] = (uint8_t)len;
    } else {
        h[n++] = m | 127;
        for (int i = 7; i >= 0; i--)
            h[n++] = (uint8_t)((uint64_t)len >> (8 * i));
    }
    uint8_t key[4] = {0};
    if (mask) {
        random_bytes(key, sizeof(key));
        memcpy(h + n, key, 4);
        n += 4;
    }
    nc_buf_append(out, (const char *)h, n);
    size_t at = out->len;
    nc_buf_append(out, data, len);
    if (mask)
        for (size_t i = 0; i < len; i++)
            out->data[at + i] ^= (char)key[i & 3];
}

void ws_close_append(struct nc_buf *out, int code, const char *reason,
                     bool mask)
{
    char p[WS_MAX_CONTROL];
    size_t n = 0;
    if (code > 0) {
        p[n++] = (char)(code >> 8);
        p[n++] = (char)code;
        size_t rl = reason ? strlen(reason) : 0;
        if (rl > sizeof(p) - n) {
            rl = sizeof(p) - n;
            /* do not cut a character in two */
            while (rl > 0 && ((uint8_t)reason[rl] & 0xc0) == 0x80)
                rl--;
        }
        if (rl)
            memcpy(p + n, reason, rl);
        n += rl;
    }
    ws_frame_append(out, WS_CLOSE, p, n, mask);
}

/* ---- the client side ------------------------------------------------------
 */

#include <http_parser.h>
#include <jansson.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "client/tls.h"

#define WS_CLIENT_ANSWER_MAX (64u << 10)

struct ws_client {
    int fd;
    struct tls_conn *tls;
    struct nc_buf out; /* wire bytes to send */
    size_t out_off;
    struct nc_buf in; /* plain bytes received, not yet parsed */
    size_t in_off;
    struct ws_reader rd;
    bool eof;
};

int ws_client_fd(const struct ws_client *c)
{
    return c->fd;
}

void ws_client_free(struct ws_client *c)
{
    if (!c)
        return;
    if (c->fd >= 0)
        close(c->fd);
    tls_conn_free(c->tls);
    nc_buf_free(&c->out);
    nc_buf_free(&c->in);
    ws_reader_free(&c->rd);
    free(c);
}

/* Encrypts (with TLS) and queues bytes for the wire. */
static int client_queue(struct ws_client *c, const char *p, size_t n)
{
    if (!c->tls) {
        nc_buf_append(&c->out, p, n);
        return 0;
    }
    if (tls_conn_write(c->tls, p, n) < 0)
        return -EPROTO;
    tls_conn_take_output(c->tls, &c->out);
    return 0;
}

int ws_client_flush(struct ws_client *c)
{
    while (c->out_off < c->out.len) {
        ssize_t w = send(c->fd, c->out.data + c->out_off,
                         c->out.len - c->out_off, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return errno == EAGAIN ? 0 : -errno;
        c->out_off += (size_t)w;
    }
    c->out.len = c->out_off = 0;
    return 0;
}

size_t ws_client_pending(const struct ws_client *c)
{
    return c->out.len - c->out_off;
}

void ws_client_send(struct ws_client *c, int opcode, const void *data,
                    size_t len)
{
    struct nc_buf f = {0};
    ws_frame_append(&f, opcode, data, len, true);
    client_queue(c, f.data, f.len);
    nc_buf_free(&f);
}

/* Reads what the socket has into c->in (decrypted): > 0 bytes added, 0
 * nothing now, -EPIPE at EOF, -EPROTO a TLS failure. */
static long client_read(struct ws_client *c, struct nc_error *err)
{
    char buf[16384];
    for (;;) {
        if (c->tls) {
            long n = tls_conn_read(c->tls, buf, sizeof(buf));
            tls_conn_take_output(c->tls, &c->out); /* e.g. a key update */
            if (n > 0) {
                nc_buf_append(&c->in, buf, (size_t)n);
                return n;
            }
            if (n == 0)
                return -EPIPE;
            if (n != -EAGAIN)
                return nc_error_set(err, -EPROTO, "TLS: %s",
                                    tls_conn_error(c->tls));
        }
        ssize_t r = recv(c->fd, buf, sizeof(buf), 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 && errno == EAGAIN)
            return 0;
        if (r < 0)
            return nc_error_set(err, -errno, "%s", strerror(errno));
        if (r == 0)
            return -EPIPE;
        if (!c->tls) {
            nc_buf_append(&c->in, buf, (size_t)r);
            return r;
        }
        tls_conn_feed(c->tls, buf, (size_t)r);
    }
}

int ws_client_recv(struct ws_client *c, struct ws_message *msg,
                   struct nc_error *err)
{
    for (;;) {
        while (c->in_off < c->in.len) {
            int code = 0;
            char why[128];
            long used = ws_reader_next(&c->rd, c->in.data + c->in_off,
                                       c->in.len - c->in_off, msg, &code, why,
                                       sizeof(why));
            if (used < 0) {
                struct nc_buf f = {0};
                ws_close_append(&f, code, why, true);
                client_queue(c, f.data, f.len);
                nc_buf_free(&f);
                return nc_error_set(err, -EPROTO, "websocket: %s", why);
            }
            c->in_off += (size_t)used;
            if (msg->opcode == WS_PING) {
                ws_client_send(c, WS_PONG, msg->data, msg->len);
                continue;
            }
            if (msg->opcode)
                return 1;
        }
        c->in.len = c->in_off = 0;
        if (c->eof)
            return -EPIPE;
        long n = client_read(c, err);
        if (n == -EPIPE)
            c->eof = true;
        else if (n < 0)
            return (int)n;
        else if (n == 0)
            return 0;
    }
}

/* ---- the opening handshake, client side ---- */

struct answer {
    bool done;
    bool in_value;
    struct nc_buf field, value;
    char *accept, *upgrade, *connection;
    struct nc_buf body;
};

static void answer_header(struct answer *a)
{
    if (!a->in_value)
        return;
    char **slot = NULL;
    const char *f = a->field.data ? a->field.data : "";
    if (strcasecmp(f, "sec-websocket-accept") == 0)
        slot = &a->accept;
    else if (strcasecmp(f, "upgrade") == 0)
        slot = &a->upgrade;
    else if (strcasecmp(f, "connection") == 0)
        slot = &a->connection;
    if (slot) {
        free(*slot);
        *slot = xstrdup(a->value.data ? a->value.data : "");
    }
    a->field.len = a->value.len = 0;
    nc_buf_puts(&a->field, "");
    nc_buf_puts(&a->value, "");
    a->field.len = a->value.len = 0;
    a->in_value = false;
}

static int on_answer_field(http_parser *p, const char *at, size_t n)
{
    struct answer *a = p->data;
    answer_header(a);
    nc_buf_append(&a->field, at, n);
    return a->field.len > 4096 ? -1 : 0;
}

static int on_answer_value(http_parser *p, const char *at, size_t n)
{
    struct answer *a = p->data;
    a->in_value = true;
    nc_buf_append(&a->value, at, n);
    return a->value.len > 8192 ? -1 : 0;
}

static int on_answer_headers(http_parser *p)
{
    answer_header(p->data);
    return 0;
}

static int on_answer_body(http_parser *p, const char *at, size_t n)
{
    struct answer *a = p->data;
    if (a->body.len + n > WS_CLIENT_ANSWER_MAX)
        return -1;
    nc_buf_append(&a->body, at, n);
    return 0;
}

static int on_answer_complete(http_parser *p)
{
    ((struct answer *)p->data)->done = true;
    return 0;
}

static void answer_free(struct answer *a)
{
    nc_buf_free(&a->field);
    nc_buf_free(&a->value);
    nc_buf_free(&a->body);
    free(a->accept);
    free(a->upgrade);
    free(a->connection);
}

/* "Unexpected response code: 404 (<error>)" from a refusal's body, as
 * Nomad's API client words a failed websocket handshake. */
static int refusal(int status, const struct answer *a, struct nc_error *err)
{
    json_t *doc =
        a->body.len ? json_loadb(a->body.data, a->body.len, 0, NULL) : NULL;
    const char *msg = json_string_value(json_object_get(doc, "error"));
    nc_error_set(err, -EPROTO, "Unexpected response code: %d (%.*s)", status,
                 msg           ? (int)strlen(msg)
                 : a->body.len ? (int)a->body.len
                               : 7,
                 msg           ? msg
                 : a->body.len ? a->body.data
                               : "no body");
    json_decref(doc);
    return -EPROTO;
}

static int wait_io(int fd, short events, int timeout_ms)
{
    struct pollfd p = {.fd = fd, .events = events};
    int r;
    do
        r = poll(&p, 1, timeout_ms);
    while (r < 0 && errno == EINTR);
    return r < 0 ? -errno : r == 0 ? -ETIMEDOUT : 0;
}

int ws_client_open(struct ws_client **out, int fd, struct tls_conn *tls,
                   const char *path, const char *headers, int timeout_ms,
                   struct nc_error *err)
{
    *out = NULL;
    struct ws_client *c = xcalloc(1, sizeof(*c));
    c->fd = fd;
    c->tls = tls;
    char key[25], want[29];
    ws_client_key(key);
    ws_accept_key(key, want);
    char *req = xasprintf("GET %s HTTP/1.1\r\n%sUpgrade: websocket\r\n"
                          "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
                          "Sec-WebSocket-Version: 13\r\n\r\n",
                          path, headers ? headers : "", key);
    int r = client_queue(c, req, strlen(req));
    free(req);
    while (r == 0 && ws_client_pending(c)) {
        if ((r = ws_client_flush(c)) == 0 && ws_client_pending(c))
            r = wait_io(fd, POLLOUT, timeout_ms);
    }
    struct answer a = {0};
    http_parser parser;
    http_parser_settings s = {.on_header_field = on_answer_field,
                              .on_header_value = on_answer_value,
                              .on_headers_complete = on_answer_headers,
                              .on_body = on_answer_body,
                              .on_message_complete = on_answer_complete};
    http_parser_init(&parser, HTTP_RESPONSE);
    parser.data = &a;
    while (r == 0 && !a.done) {
        long n = client_read(c, err);
        if (n == 0) {
            r = wait_io(fd, POLLIN, timeout_ms);
            if (r == -ETIMEDOUT)
                nc_error_set(err, r, "no answer from the agent in %d s",
                             timeout_ms / 1000);
            continue;
        }
        size_t len = n > 0 ? c->in.len : 0;
        size_t used = http_parser_execute(&parser, &s, c->in.data, len);
        if (parser.upgrade) {
            /* what follows the head is the websocket's */
            memmove(c->in.data, c->in.data + used, len - used);
            c->in.len = len - used;
            break;
        }
        if (parser.http_errno != HPE_OK || used != len) {
            r = nc_error_set(err, -EPROTO,
                             "malformed answer to the websocket "
                             "handshake");
            break;
        }
        c->in.len = 0;
        if (n < 0) {
            if (!a.done)
                r = n == -EPIPE ? nc_error_set(err, -EPIPE,
                                               "the agent closed the "
                                               "connection")
                                : (int)n;
            break;
        }
    }
    if (r == 0 && parser.status_code != 101)
        r = refusal(parser.status_code, &a, err);
    else if (r == 0 && (!a.accept || strcmp(a.accept, want) != 0))
        r = nc_error_set(err, -EPROTO, "websocket: bad handshake");
    answer_free(&a);
    if (r < 0) {
        c->fd = -1; /* the caller's still */
        c->tls = NULL;
        ws_client_free(c);
        return r;
    }
    c->rd.server = false;
    *out = c;
    return 0;
}
